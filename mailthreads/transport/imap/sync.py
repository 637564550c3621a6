"""Bring one folder up to date: fetch new mail by UID, file it, then move the checkpoint.

The checkpoint is ``(UIDVALIDITY, last UID)`` per account and folder, in the same database as
the messages. Each batch of messages and the checkpoint that covers it are committed in ONE
transaction, so a poller killed at any point either kept a batch and its checkpoint, or neither
(and fetches the batch again). What happens to mail on the server afterwards (``\\Seen``, a
move) happens only after that commit, by UID. A new UIDVALIDITY means the old UIDs mean nothing:
the folder is read again from the start and the pipeline's de-duplication keeps every message
once.

Mail left alone is not recorded anywhere, so mail that would be filed under better settings
would never be seen again. Each checkpoint therefore keeps the settings that decided "is this
for mailthreads?" (``routing_settings``); when they change, the folder's older mail is read
again (a *rescan*), as it is on ``poll --rescan [--since DATE]``. A rescan skips the UIDs
already filed from the folder (their deliveries name them) and never flags or moves mail that
was in the folder at the last poll. De-duplication keeps every message once, and tombstones
keep what the author deleted out.

A polled folder may be the author's everyday inbox, so a message is filed only when it is for
mailthreads (routing finds a post for it; see ``ingest.plan`` with ``unrouted="ignore"``).
Everything else is left alone: not stored (not even its raw bytes), not quarantined, not
flagged. In the Sent folder only the author's own messages that join a discussion are filed.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date

from imapclient import IMAPClient
from imapclient import exceptions as imap_exceptions

from ... import db
from ...config import Config, ImapAccount
from ...db import store
from ...ingest import (
    Analysed,
    Context,
    Envelope,
    Outcome,
    Pipeline,
    Plan,
    Unparsed,
    analyse_or_unparsed,
    plan,
)
from ...ingest.values import Tally, held_and_blocked
from ...mail.analysis import Analysis
from ...mail.routing import parse_reply_address
from ...spam import Judgement
from .analyse import Analyser
from .connection import (
    NETWORK_ERRORS,
    ConnectionLost,
    FolderPlan,
    FolderProblem,
    ServerRefused,
    describe,
)

SOURCE = "imap"
_CONTEXT = Context(SOURCE, Envelope(), None)
# A batch is one FETCH and one commit: big enough that a commit (an fsync) is rare, small
# enough that a kill costs little work and memory stays bounded.
BATCH_MESSAGES = 200
BATCH_BYTES = 32 * 1024 * 1024
SIZE_QUERY_CHUNK = 2000
SEEN = b"\\Seen"

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_ADDRESS = re.compile(rb"[A-Za-z0-9._%+=~-]+@[A-Za-z0-9.-]+")
_BRACKETED_ID = re.compile(rb"<([^<>\s]{3,250})>")
# RFC 5530's code, and the words of servers that do not send it.
_NO_SUCH_FOLDER = re.compile(r"\[NONEXISTENT\]|does ?n[o']t exist|no such|unknown mailbox",
                             re.IGNORECASE)


@dataclass(frozen=True)
class Rescan:
    """Read the mail a folder had at the last poll again (``poll --rescan``); ``since`` keeps
    to mail that arrived on or after that day (IMAP SEARCH SINCE, the server's arrival date)."""

    since: date | None = None

    def why(self) -> str:
        since = f" --since {self.since.isoformat()}" if self.since else ""
        return f"read again as asked (--rescan{since})"


@dataclass
class FolderReport(Tally):
    account: str
    folder: str
    role: str
    new: int = 0
    gone: int = 0
    handled_on_server: int = 0
    rescan: str = ""  # why older mail was read again; "" when it was not
    read_again: int | None = None  # older messages fetched again, when the folder was rescanned
    filed_before: int = 0  # older messages a rescan did not fetch: filed from this UID already

    @property
    def rescanned(self) -> bool:
        return bool(self.rescan)

    def count(self, outcome: Outcome | None) -> None:
        if outcome is None:
            self.ignored += 1
        else:
            self.add(outcome)

    def line(self, after: str = "leave") -> str:
        if not self.new and not self.rescanned:
            return f"{self.account} {self.folder}: nothing new"
        parts = [f"{self.stored} stored", f"{self.duplicate} duplicate",
                 f"{self.quarantined} quarantined", f"{self.ignored} left alone"]
        parts.extend(held_and_blocked(self.held, self.blocked))
        if self.deleted:
            parts.append(f"{self.deleted} deleted by you before, not filed again")
        if self.spam:
            parts.append(f"{self.spam} spam, kept apart")
        if self.gone:
            parts.append(f"{self.gone} deleted on the server before they could be fetched")
        head = f"{self.new} new"
        if self.read_again is not None:
            head += f", {self.read_again} read again"
        text = f"{self.account} {self.folder}: {head}: " + ", ".join(parts)
        if self.handled_on_server:
            action = "marked seen" if after == "seen" else f"moved to {after[5:]}"
            text += f"; {self.handled_on_server} {action}"
        if self.rescanned:
            filed = (f"; {self.filed_before} filed before, not fetched again"
                     if self.filed_before else "")
            text += f" ({self.rescan}{filed})"
        return text


# The settings that decide whether a message is for mailthreads, by their names in the config.
# Not among them: the token secret and [posts] (they choose the thread, or quarantine, but
# such mail is kept either way), [limits] (mail over them is quarantined, kept), the folders
# (a new folder has no checkpoint and is read from its start anyway), author.name.
ROUTING_SETTINGS = ("[addresses] domain", "[addresses] local_part", "[addresses] separator",
                    "[addresses] catch_all_domain", "[author] addresses")


def routing_settings(config: Config) -> str:
    """Those settings as JSON, kept with each checkpoint: readable in the database, and it
    lets a rescan say which setting changed."""
    addresses = config.addresses
    values = (addresses.domain, addresses.local_part, addresses.separator,
              addresses.catch_all_domain,
              sorted({address.lower() for address in config.author.addresses}))
    return json.dumps(dict(zip(ROUTING_SETTINGS, values, strict=True)), sort_keys=True)


def _changed_settings(before: str, now: str) -> list[str]:
    try:
        old = json.loads(before)
    except ValueError:
        old = {}
    new = json.loads(now)
    return [name for name in ROUTING_SETTINGS if old.get(name) != new.get(name)]


Progress = Callable[[int], None]


class FolderSync:
    """Sync folders of one logged-in connection into one database connection."""

    def __init__(self, client: IMAPClient, conn: sqlite3.Connection, config: Config,
                 account: ImapAccount, *, should_stop: Callable[[], bool] = lambda: False,
                 before_fetch: Callable[[Sequence[int]], None] | None = None,
                 analyser: Analyser | None = None):
        self.client = client
        self.conn = conn
        self.config = config
        self.account = account
        self.pipeline = Pipeline(conn, config, unrouted="ignore")
        self.should_stop = should_stop
        # A hook between choosing UIDs and fetching them, for tests where another client
        # changes the folder at exactly that moment.
        self.before_fetch = before_fetch
        self.analyser = analyser or Analyser(config, workers=1)
        self._move_target_ready = False

    def sync(self, folder: FolderPlan, *, on_total: Progress | None = None,
             on_message: Progress | None = None, rescan: Rescan | None = None) -> FolderReport:
        """Fetch and file everything new in ``folder`` (and, with ``rescan`` or changed
        routing settings, the older mail not filed yet). Network trouble raises
        ``ConnectionLost``; work already committed stays committed."""
        try:
            return self._sync(folder, on_total, on_message, rescan)
        except NETWORK_ERRORS as error:  # before IMAPClientError: abort is a subclass of it
            self.conn.rollback()
            raise ConnectionLost(self.account.name, f"connection lost in {folder.folder}: "
                                 f"{describe(error)}") from None
        except imap_exceptions.IMAPClientError as error:
            self.conn.rollback()
            raise ServerRefused(self.account.name, f"the server refused a command in "
                                f"{folder.folder}: {_server_text(error)}") from None
        except BaseException:
            self.conn.rollback()
            raise

    def _sync(self, folder: FolderPlan, on_total: Progress | None,
              on_message: Progress | None, rescan: Rescan | None) -> FolderReport:
        account = self.account
        report = FolderReport(account.name, folder.folder, folder.role)
        acts = folder.role == "inbox" and account.after != "leave"
        uidvalidity, uid_next = self._select(folder, acts)
        settings = routing_settings(self.config)
        checkpoint = store.imap_checkpoint(self.conn, account.name, folder.folder)
        last_uid = 0
        kept_settings = settings  # saved with each batch's checkpoint
        reread: Rescan | None = None
        if checkpoint is not None:
            if checkpoint.uidvalidity == uidvalidity:
                last_uid = checkpoint.last_uid
                reread = self._rescan_needed(checkpoint, settings, rescan, report)
                if reread is not None:
                    # Until the rescan is through, the checkpoint keeps the old settings: a
                    # poll killed halfway rescans again.
                    kept_settings = checkpoint.routing_settings
            else:
                report.rescan = "UIDVALIDITY changed: folder read again, nothing stored twice"
        origin_prefix = self._origin_prefix(folder, uidvalidity)
        older = self._older_uids(last_uid, reread, origin_prefix, report) if reread else []
        if uid_next is not None and uid_next <= last_uid + 1:
            uids: list[int] = []  # nothing new: spare the SEARCH
        else:
            # "N:*" always matches the highest UID, even one below N: filter it out.
            uids = sorted(uid for uid in self.client.search(["UID", f"{last_uid + 1}:*"])
                          if uid > last_uid)
        report.new = len(uids)
        uids = older + uids
        report.read_again = len(older) if reread else None
        if on_total:
            on_total(len(uids))

        sizes = self._sizes(uids) if uids else {}
        newest = last_uid
        saved = checkpoint
        # One batch is analysed (in the background) while the next is fetched and the last
        # one filed: fetching, analysing and filing overlap.
        analysed: tuple[list[int], list[_Fetched], Future[list[Analysed]]] | None = None
        stopped = False
        started: list[Future[list[Analysed]]] = []
        try:
            for batch in _batches(uids, sizes, self.config.limits.max_message_size):
                stopped = self.should_stop()
                if stopped:
                    break  # after filing the batch fetched already, as below
                if self.before_fetch:
                    self.before_fetch(batch)
                fetched = list(self._fetch(batch, sizes))
                analysing = self.analyser.analyse_later([raw for _, raw in fetched
                                                         if isinstance(raw, bytes)])
                started.append(analysing)
                if analysed is not None:
                    newest = self._file_analysed(*analysed, newest, last_uid, folder,
                                                 uidvalidity, kept_settings, acts, report,
                                                 on_message)
                    saved = (uidvalidity, newest, kept_settings)
                analysed = (batch, fetched, analysing)
            if analysed is not None:
                newest = self._file_analysed(*analysed, newest, last_uid, folder, uidvalidity,
                                             kept_settings, acts, report, on_message)
                saved = (uidvalidity, newest, kept_settings)
        finally:
            # On a failure, analyses still running are waited for (their batches are fetched
            # again by the next poll), so that the analyser is free for the next folder.
            for analysing in started:
                analysing.cancel()
            futures.wait(started)
        if stopped:
            return report
        if saved != (uidvalidity, newest, settings):
            with db.transaction(self.conn, immediate=True):
                store.save_imap_checkpoint(self.conn, account.name, folder.folder,
                                           uidvalidity, newest, settings)
        return report

    def _select(self, folder: FolderPlan, acts: bool) -> tuple[int, int | None]:
        """Open the folder; its UIDVALIDITY and UIDNEXT (None when the server gave none)."""
        account = self.account
        try:
            # EXAMINE (read-only) unless mail is to be changed: then the server itself
            # guarantees that polling touches nothing, not even \Recent.
            selected = self.client.select_folder(folder.folder, readonly=not acts)
        except NETWORK_ERRORS:
            raise
        except imap_exceptions.IMAPClientError as error:
            text = _server_text(error)
            if _NO_SUCH_FOLDER.search(text):
                raise FolderProblem(account.name, f"cannot open folder {folder.folder!r}: "
                                    f"{text}") from None
            # Anything else (Dovecot says ALREADYEXISTS while another session creates a new
            # user's folders) is the server's passing trouble.
            raise ServerRefused(account.name, f"cannot open folder {folder.folder!r} now: "
                                f"{text}") from None
        if b"UIDVALIDITY" not in selected:
            # Without it UIDs cannot be trusted from one session to the next (RFC 3501 makes
            # it mandatory); polling anyway could skip or repeat mail.
            raise ServerRefused(account.name, f"the server gave no UIDVALIDITY for "
                                f"{folder.folder!r}")
        uid_next = selected.get(b"UIDNEXT")
        return int(selected[b"UIDVALIDITY"]), None if uid_next is None else int(uid_next)

    def _rescan_needed(self, checkpoint: store.Checkpoint, settings: str,
                       asked: Rescan | None, report: FolderReport) -> Rescan | None:
        """The rescan to do, if any, with its reason in ``report``. Changed routing settings
        make it a full one whatever was asked: any older mail may be for mailthreads now."""
        if checkpoint.routing_settings is None:
            report.rescan = ("read again once: the last poll was made by an older mailthreads "
                             "that did not record the routing settings")
        elif checkpoint.routing_settings != settings:
            changed = _changed_settings(checkpoint.routing_settings, settings)
            report.rescan = (f"read again: {' and '.join(changed) or 'the routing settings'} "
                             f"changed since the last poll")
        elif asked is not None:
            report.rescan = asked.why()
            return asked
        else:
            return None
        return Rescan()

    def _older_uids(self, last_uid: int, rescan: Rescan, origin_prefix: str,
                    report: FolderReport) -> list[int]:
        """UIDs up to ``last_uid`` to read again: those not filed from this folder already
        (a delivery names each filed UID, so they need no fetch to be recognised)."""
        if last_uid == 0:
            return []
        criteria: list = ["UID", f"1:{last_uid}"]
        if rescan.since is not None:
            criteria += ["SINCE", rescan.since]
        found = {uid for uid in self.client.search(criteria) if uid <= last_uid}
        filed = store.imap_uids_delivered(self.conn, origin_prefix)
        report.filed_before = len(found & filed)
        return sorted(found - filed)

    def _file_analysed(self, batch: list[int], fetched: list[_Fetched],
                       analysing: Future[list[Analysed]], newest: int, last_uid: int,
                       folder: FolderPlan, uidvalidity: int, kept_settings: str, acts: bool,
                       report: FolderReport, on_message: Progress | None) -> int:
        """File one batch with its checkpoint, in one write transaction, then handle its mail
        on the server (``after``); the new checkpoint UID."""
        analyses = analysing.result()
        newest = max(newest, batch[-1])
        # Fetched and analysed first, outside of the write transaction: the lock is held
        # for filing only. Every plan is made under it, so no other writer (serve's filer,
        # an ingest) can change what a plan read before the message is filed by it.
        origin_prefix = self._origin_prefix(folder, uidvalidity)
        # Spam scans too (Pipeline.judge): the author's own answers in Sent are never scanned.
        raws = [raw for _, raw in fetched if isinstance(raw, bytes)]
        judgements = [None if folder.role == "sent" else self.pipeline.judge(raw, analysis)
                      for raw, analysis in zip(raws, analyses, strict=True)]
        with db.transaction(self.conn, immediate=True):
            taken = self._file_batch(fetched, zip(analyses, judgements, strict=True),
                                     origin_prefix, folder.role, report, on_message)
            store.save_imap_checkpoint(self.conn, self.account.name, folder.folder,
                                       uidvalidity, newest, kept_settings)
        # Mail that was in the folder at the last poll is never flagged or moved: a
        # rescan must not surprise a mailbox the author has kept as it is since.
        taken = [uid for uid in taken if uid > last_uid]
        if acts and taken:
            report.handled_on_server += self._after(taken)
        return newest

    def _origin_prefix(self, folder: FolderPlan, uidvalidity: int) -> str:
        return f"{self.account.name}/{folder.folder}/{uidvalidity}"

    def _file_batch(self, fetched: list[_Fetched],
                    analyses: Iterator[tuple[Analysed, Judgement | None]], origin_prefix: str,
                    role: str, report: FolderReport, on_message: Progress | None) -> list[int]:
        """File one fetched batch (in the caller's write transaction); the UIDs filed, for
        ``after``."""
        taken: list[int] = []
        for uid, raw in fetched:
            if raw is None:
                report.gone += 1
            elif isinstance(raw, _HeaderOnly):
                report.ignored += 1
            else:
                outcome = self._file(raw, *next(analyses), f"{origin_prefix}/{uid}", role)
                report.count(outcome)
                if outcome is not None and outcome.status != "deleted":
                    taken.append(uid)
            if on_message:
                on_message(1)
        return taken

    # Fetching ---------------------------------------------------------------------------

    def _sizes(self, uids: list[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), SIZE_QUERY_CHUNK):
            chunk = uids[start:start + SIZE_QUERY_CHUNK]
            for uid, item in self.client.fetch(chunk, ["RFC822.SIZE"]).items():
                sizes[uid] = int(item.get(b"RFC822.SIZE", 0))
        return sizes

    def _fetch(self, batch: list[int],
               sizes: dict[int, int]) -> Iterator[tuple[int, bytes | _HeaderOnly | None]]:
        """``(uid, raw)`` in UID order; ``raw`` is None for a message that no longer exists
        and ``_HeaderOnly`` for one too big to fetch that is not for mailthreads."""
        limit = self.config.limits.max_message_size
        if len(batch) == 1 and sizes.get(batch[0], 0) > limit:
            yield batch[0], self._fetch_oversized(batch[0])
            return
        bodies = self._bodies(batch)
        missing = [uid for uid in batch if bodies.get(uid) is None]
        if missing:
            # No content can mean "expunged by another client since we searched" (Dovecot
            # answers BODY[] NIL until it tells us) or a hiccup. Only the first may be skipped,
            # so ask the server which of them still exist and fetch those again.
            self.client.noop()
            still_there = [uid for uid in self.client.search(["UID", _uid_set(missing)])
                           if uid in missing]
            if still_there:
                bodies.update(self._bodies(still_there))
                empty = [uid for uid in still_there if bodies.get(uid) is None]
                if empty:
                    raise ServerRefused(self.account.name, f"the server sent no content for "
                                        f"UID {empty[0]}, which still exists; trying later")
        for uid in batch:
            yield uid, bodies.get(uid)

    def _bodies(self, uids: list[int]) -> dict[int, bytes | None]:
        data = self.client.fetch(uids, ["BODY.PEEK[]"])
        return {uid: item.get(b"BODY[]") for uid, item in data.items()}

    def _fetch_oversized(self, uid: int) -> bytes | _HeaderOnly | None:
        """A message over the size limit is fetched in full only when its header says it is
        for mailthreads (then the pipeline quarantines it, raw bytes kept for a replay after
        raising the limit). A 200 MB holiday video in the inbox is never downloaded."""
        header = self.client.fetch([uid], ["BODY.PEEK[HEADER]"]).get(uid)
        if not header:
            return None
        if not self._header_for_us(header.get(b"BODY[HEADER]") or b""):
            return _HeaderOnly()
        full = self.client.fetch([uid], ["BODY.PEEK[]"]).get(uid)
        return full.get(b"BODY[]") if full else None

    # Filing -----------------------------------------------------------------------------

    def _file(self, raw: bytes, analysis: Analysed, judgement: Judgement | None, origin: str,
              role: str) -> Outcome | None:
        """File one message in the pipeline, or return None when it is not for mailthreads."""
        decided = None
        if isinstance(analysis, Unparsed):
            if not self._for_us(raw, analysis, role):
                return None
        else:
            # The plan that says the message is for us is the one it is filed by: it is made
            # under the batch's write lock, so nothing changes what it read in between.
            decided = self._plan_if_for_us(analysis, role)
            if decided is None:
                return None
        delivery_id, sha256 = self.pipeline.receive(raw, SOURCE, origin=origin, commit=False)
        return self.pipeline.process(delivery_id, sha256, raw, _CONTEXT, analysis,
                                     origin=origin, decided=decided, judgement=judgement)

    def _for_us(self, raw: bytes, analysis: Analysed, role: str) -> bool:
        if isinstance(analysis, Unparsed):
            # The parser gave up (or the message is over the size limit): route it by its
            # header alone, and keep it (quarantined, with the reason) when that says it is
            # for mailthreads.
            return role == "inbox" and self._header_for_us(raw)
        return self._plan_if_for_us(analysis, role) is not None

    def _plan_if_for_us(self, analysis: Analysis, role: str) -> Plan | None:
        decided = plan(self.conn, self.config, analysis, _CONTEXT, unrouted="ignore")
        if role == "sent":
            # The author's Sent folder: their answers that join a discussion, nothing else.
            wanted = decided.direction == "out" and decided.status in {"store", "duplicate"}
        else:
            wanted = decided.status != "ignore"
        return decided if wanted else None

    def _header_for_us(self, raw: bytes) -> bool:
        match = _HEADER_END.search(raw, 0, self.config.limits.max_header_size + 4)
        header = raw[:match.start()] if match else raw[:self.config.limits.max_header_size]
        analysis = analyse_or_unparsed(header + b"\r\n\r\n", self.config, None)
        if not isinstance(analysis, Unparsed):
            return self._for_us(header, analysis, "inbox")
        # Not even the header parses: look for a reply address or a stored message's id.
        for address in _ADDRESS.findall(header):
            if parse_reply_address(address.decode("ascii", "replace"), self.config.addresses):
                return True
        ids = [m.decode("ascii", "replace") for m in _BRACKETED_ID.findall(header)]
        return bool(store.known_message_ids(self.conn, ids))

    # After the commit -------------------------------------------------------------------

    def _after(self, uids: list[int]) -> int:
        """Flag or move filed mail, by UID. Returns how many messages were handled."""
        after = self.account.after
        if after == "seen":
            self.client.add_flags(uids, [SEEN], silent=True)
            return len(uids)
        target = after[5:]
        if not self._move_target_ready:
            if not self.client.folder_exists(target):
                self.client.create_folder(target)
            self._move_target_ready = True
        if self.client.has_capability("MOVE"):
            self.client.move(uids, target)
        else:
            self.client.copy(uids, target)
            self.client.delete_messages(uids, silent=True)
            if self.client.has_capability("UIDPLUS"):
                # Only our UIDs: a plain EXPUNGE would also remove what the user marked deleted.
                self.client.uid_expunge(uids)
        return len(uids)


class _HeaderOnly:
    """An oversized message whose header says it is not for mailthreads: never fetched."""


# A fetched UID with its message, None when it was gone, _HeaderOnly when it was not fetched.
_Fetched = tuple[int, bytes | _HeaderOnly | None]


def _batches(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[list[int]]:
    """UIDs in order, grouped by count and bytes; a message over ``limit`` goes alone."""
    batch: list[int] = []
    batch_bytes = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if size > limit or (batch and (len(batch) >= BATCH_MESSAGES
                                       or batch_bytes + size > BATCH_BYTES)):
            if batch:
                yield batch
            batch, batch_bytes = [], 0
            if size > limit:
                yield [uid]
                continue
        batch.append(uid)
        batch_bytes += size
    if batch:
        yield batch


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(uid) for uid in uids)


def _server_text(error: BaseException) -> str:
    text = str(error).removeprefix("select failed: ").removeprefix("examine failed: ")
    # Dovecot appends timings, "(0.001 + 0.000 secs).": noise in a message for people.
    return re.sub(r"\s*\(\d+\.\d+(?: \+ \d+\.\d+)* secs\)\.?$", "", text).strip()
