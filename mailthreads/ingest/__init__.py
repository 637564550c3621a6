"""The one way in: every transport hands raw bytes to ``Pipeline``.

1. ``receive`` commits the raw bytes and a delivery record first, so nothing that follows can
   lose the message (the SMTP listener answers 250 right after it; the IMAP checkpoint commits
   with it).
2. The bytes are analysed (pure, see ``mail.analysis``), under a budget and outside any write
   transaction (``budget``): an ``Analysis``, or ``Unparsed`` with the reason.
3. ``process`` files it, under the write lock: tombstones first, then the ``Plan`` (``plan``:
   reads only, shared with ``explain``; an immutable decision), carried out in the same
   transaction as the delivery's new status.
Who calls what: serve's filer process files pending deliveries with ``filer.Filer``; ``poll``
and bulk ``ingest`` receive and process each analysed batch in one transaction; ``accept`` is
receive and process in one (``quarantine release``, a sent answer). A message that cannot be
parsed or routed is quarantined with its raw bytes and the reason.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import MISSING, fields
from datetime import datetime, timedelta
from typing import Any

from .. import db
from ..config import SLUG_PATTERN, Config
from ..db import store
from ..mail.analysis import Analysis
from ..mail.classify import MACHINE_KINDS
from ..mail.compose import bare_subject
from ..mail.routing import AddressRoute, parse_reply_address, reply_address, route_by_address
from ..mail.verdicts import SpamVerdict
from ..spam import Judgement, judge
from ..timestamps import now
from ..tokens import make_token, token_key, token_matches
from .analysed import Analysed, Unparsed
from .analysed import analyse_or_unparsed as analyse_or_unparsed  # for transports and tools
from .budget import Analyser
from .screening import screen
from .sender import sender_decision
from .values import Context, Envelope, Outcome, Plan, Unrouted


class _Draft:
    """A plan while ``plan`` works it out, step by step (``Plan``'s fields, with a list of
    reasons to add to); ``decided()`` is the plan once it is made."""

    def __init__(self, status: str, **values: Any):
        self.__dict__.update({name: value.default for name, value in _PLAN_FIELDS.items()},
                             status=status, reasons=[], **values)

    def decided(self) -> Plan:
        return Plan(**{**vars(self), "reasons": tuple(self.reasons)})


_PLAN_FIELDS = {f.name: f for f in fields(Plan) if f.default is not MISSING}


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def plan(conn: sqlite3.Connection, config: Config, analysis: Analysis, context: Context,
         unrouted: Unrouted = "quarantine") -> Plan:
    """Decide where ``analysis`` goes, reading the store but never writing it."""
    direction = "out" if config.is_author(analysis.from_address) else "in"
    duplicate = store.message_by_identity(conn, analysis.identity_sha256)
    if duplicate:
        post = store.post_by_id(conn, duplicate["post_id"]) if duplicate["post_id"] else None
        return Plan("duplicate", (f"already stored as message {duplicate['id']}",),
                    direction=direction, post_slug=post["slug"] if post else None,
                    thread_id=duplicate["thread_id"])

    result = _Draft("store", direction=direction, parent=analysis.parent)
    if direction == "in":  # who is trusted: block, DMARC, trusted correspondent, spam score
        result.trust = sender_decision(conn, analysis, context.envelope.mail_from)
        if result.trust.review_class:
            _hold(result, result.trust.review_class, result.trust.reason)
            return result.decided()
        if result.trust.flag:
            result.reasons.append(result.trust.reason)
    if direction == "out":
        result.reasons.append(f"from the author's address {analysis.from_address}")
    if analysis.kind != "reply":
        result.reasons.extend(analysis.kind_reasons)
    else:
        result.reasons.append("a human reply: no auto-reply or bounce signs")

    route = route_by_address(recipient_groups(analysis, context.envelope), config.addresses)
    related = store.first_known_message(conn, _related_ids(analysis))

    if not _choose_post(conn, config, analysis, context, route, related, result, unrouted):
        return result.decided()
    _choose_thread(conn, config, analysis, route, related, result)
    if result.status != "store":
        return result.decided()

    if result.parent and store.is_ancestor(conn, analysis.message_id, result.parent):
        result.reasons.append(f"parent <{result.parent}> would close a loop: left out")
        result.parent = None
    if store.message_id_known(conn, analysis.message_id):
        result.message_id_reused = True
        result.reasons.append(f"Message-ID <{analysis.message_id}> was already used by a "
                              "different message: kept both, flagged")
    return result.decided()


def recipient_groups(analysis: Analysis, envelope: Envelope) -> list[tuple[str, Iterable[str]]]:
    return [
        ("envelope recipient", envelope.rcpt_to),
        ("Delivered-To", analysis.delivered_to),
        ("X-Original-To", analysis.x_original_to),
        ("To", analysis.to),
        ("Cc", analysis.cc),
    ]


def _related_ids(analysis: Analysis) -> list[str]:
    """Known messages this one is about, nearest first."""
    ids = [analysis.about_message_id] if analysis.about_message_id else []
    ids.extend(reversed(analysis.chain))
    return ids


def _choose_post(conn: sqlite3.Connection, config: Config, analysis: Analysis, context: Context,
                 route: AddressRoute | None, related: dict[str, Any] | None, result: _Draft,
                 unrouted: Unrouted) -> bool:
    machine_about_known = analysis.kind in MACHINE_KINDS and related is not None
    if route and not machine_about_known:
        slug = route.reply_address.slug
        result.reasons.append(f"{route.found_in} {route.reply_address.address} names post {slug}")
        post = store.post_by_slug(conn, slug)
        if post is None:
            if not config.posts.create_on_first_reply:
                return _hold(result, "unknown_post", f"unknown post {slug!r}: held until you "
                             f"add it ('mailthreads posts add {slug}', or 'posts sync' from "
                             "your feed)", held_for=slug)
            result.create_post = True
            result.post_slug = slug
            result.reasons.append(f"post {slug} is new: created on first reply")
            return True
        result.post_id, result.post_slug = post["id"], post["slug"]
        return True
    if related is not None and related["post_id"] is not None:
        post = store.post_by_id(conn, related["post_id"])
        result.post_id, result.post_slug = post["id"], post["slug"]
        result.reasons.append(f"refers to known message <{related['message_id']}> "
                              f"of post {post['slug']}")
        return True
    if context.post_hint:
        if not SLUG_PATTERN.match(context.post_hint):
            return _quarantine(result, f"--post {context.post_hint!r} is not a valid post slug")
        post = store.post_by_slug(conn, context.post_hint)
        if post is None:
            result.create_post = True
            result.post_slug = context.post_hint
        else:
            result.post_id, result.post_slug = post["id"], post["slug"]
        result.reasons.append(f"no reply address: filed under post {context.post_hint} "
                              "as asked (--post)")
        return True
    known = _post_of_correspondent(conn, config, analysis, result.direction)
    if known is not None:
        result.post_id, result.post_slug = known[0], known[1]
        result.reasons.append(known[2])
        return True
    if unrouted == "ignore":
        result.status = "ignore"
        result.reasons.append("not for mailthreads: no reply address, no known reference")
        return False
    return _quarantine(result, "no reply address among the recipients and no reference to a "
                       "known message")


def _choose_thread(conn: sqlite3.Connection, config: Config, analysis: Analysis,
                   route: AddressRoute | None, related: dict[str, Any] | None,
                   result: _Draft) -> None:
    # The correspondent whose thread this message says it belongs to (by a signed address, or
    # by answering the author's message there) although its sender is not one of theirs.
    claimed: int | None = None
    token = route.reply_address.token if route else None
    if token and result.post_id is not None and result.direction == "in":
        thread = _signed_thread(conn, config, result.post_id, result.post_slug or "", token)
        if thread is None:
            _quarantine(result, f"reply token in {route.reply_address.address} does not verify")
            return
        if analysis.kind in MACHINE_KINDS or _sender_is(conn, analysis,
                                                        thread["correspondent_id"]):
            result.thread_id = thread["id"]
            result.correspondent_id = thread["correspondent_id"]
            result.reasons.append(f"signed address: thread {thread['id']}")
            return
        claimed = thread["correspondent_id"]
        result.reasons.append(f"signed address of thread {thread['id']}, but the sender "
                              f"{analysis.from_address or '(none)'} is not an address of its "
                              "correspondent: kept apart until you confirm")

    if claimed is None and related is not None and related["thread_id"] is not None:
        if analysis.kind in MACHINE_KINDS or result.direction == "out" or (
                related["post_id"] == result.post_id and _same_person(conn, related, analysis)):
            result.thread_id = related["thread_id"]
            result.reasons.append(f"answers <{related['message_id']}> in thread "
                                  f"{related['thread_id']}")
            return
        if related["direction"] == "out" and related["post_id"] == result.post_id:
            claimed = store.get_thread(conn, related["thread_id"]).correspondent_id
            result.reasons.append(f"answers <{related['message_id']}> in thread "
                                  f"{related['thread_id']}, but the sender {analysis.from_address} "
                                  "is not an address of its correspondent: kept apart until you "
                                  "confirm")

    if result.direction == "out":
        counterpart = _first_counterpart(config, analysis)
        if counterpart is None:
            _quarantine(result, "an author's message with no correspondent among its recipients")
            return
        address, name = counterpart
        result.correspondent_address, result.correspondent_name = address, name
        result.correspondent_id = store.correspondent_by_address(conn, address)
        result.wants_thread = True
        result.reasons.append(f"to correspondent {address}")
    else:
        if not analysis.from_address:
            if analysis.kind in MACHINE_KINDS:
                return  # machine mail with no sender: kept under the post, in no thread
            _quarantine(result, "no sender address")
            return
        result.correspondent_address = analysis.from_address
        result.correspondent_name = analysis.from_name
        result.correspondent_id = store.correspondent_by_address(conn, analysis.from_address)
        if analysis.kind in MACHINE_KINDS:
            # Machine mail never starts a discussion; it joins one only if one exists.
            if result.correspondent_id is not None and result.post_id is not None:
                result.thread_id = store.existing_thread(conn, result.post_id,
                                                         result.correspondent_id)
            return
        result.wants_thread = True

    if result.correspondent_id is not None and result.post_id is not None:
        result.thread_id = store.existing_thread(conn, result.post_id, result.correspondent_id)
    if result.thread_id is None:
        post = store.post_by_id(conn, result.post_id) if result.post_id is not None else None
        # A closed post still takes a continuation of its discussions, confirmed or not.
        if post and post["closed"] and result.direction == "in" and claimed is None:
            _quarantine(result, f"post {post['slug']} is closed to new discussions")
            return
        result.reasons.append("starts a new thread")
        if claimed is not None and claimed != result.correspondent_id:
            result.possibly_same_as = claimed
            result.reasons.append(f"marked: same person as {_who(conn, claimed)}?")
    else:
        result.reasons.append(f"thread {result.thread_id}")


def _post_of_correspondent(conn: sqlite3.Connection, config: Config, analysis: Analysis,
                           direction: str) -> tuple[int, str, str] | None:
    """Mail with no reply address and no known reference that still belongs to a discussion.

    A polled folder can be the author's everyday mailbox, where readers also write to the
    author's own address. In: a human reply from a known correspondent to one of the author's
    addresses joins that correspondent's most recently active discussion. Out: the author's
    message to a known correspondent joins the discussion about the post it names (by the
    discussion's subject, the post's title in the subject, or its URL or slug in the text).
    """
    if analysis.kind != "reply":
        return None
    if direction == "in":
        recipients = (*analysis.to, *analysis.cc, *analysis.delivered_to,
                      *analysis.x_original_to)
        correspondent = store.correspondent_by_address(conn, analysis.from_address or "")
        if correspondent is None or not any(config.is_author(a) for a in recipients):
            return None
        threads = store.correspondent_threads(conn, correspondent)
        if not threads:
            return None
        return (threads[0]["post_id"], threads[0]["slug"],
                f"from known correspondent {analysis.from_address} to the author's address: "
                f"their latest discussion, post {threads[0]['slug']}")
    counterpart = _first_counterpart(config, analysis)
    correspondent = store.correspondent_by_address(conn, counterpart[0]) if counterpart else None
    if correspondent is None:
        return None
    subject = bare_subject(analysis.subject)
    for thread in store.correspondent_threads(conn, correspondent):
        if subject and subject == bare_subject(thread["subject"] or ""):
            return (thread["post_id"], thread["slug"],
                    f"to known correspondent {counterpart[0]} with the subject of thread "
                    f"{thread['id']}")
    text = analysis.body_text.lower()
    for post in store.posts_for_mentions(conn):
        title = (post["title"] or "").strip().lower()
        url = (post["url"] or "").strip().lower()
        if (title and title in analysis.subject.lower()) or (url and url in text) \
                or reply_address(post["slug"], config.addresses) in text:
            return (post["id"], post["slug"],
                    f"to known correspondent {counterpart[0]} about post {post['slug']}")
    return None


def _same_person(conn: sqlite3.Connection, related: dict[str, Any], analysis: Analysis) -> bool:
    """A reply to a known message joins its thread when the sender belongs in that thread.

    Only an address already known as the thread's correspondent's: anyone who saw the author's
    answer (a forward, a leak) can quote its Message-ID, and an address is merged into a
    correspondent only when the author confirms (``correspondents merge``).
    """
    if related["direction"] == "out":
        thread = store.get_thread(conn, related["thread_id"])
        return _sender_is(conn, analysis, thread.correspondent_id)
    return related["from_address"] == analysis.from_address


def _who(conn: sqlite3.Connection, correspondent_id: int) -> str:
    person = store.correspondent(conn, correspondent_id)
    return f"{person['name']} <{person['address']}>" if person["name"] else person["address"]


def _sender_is(conn: sqlite3.Connection, analysis: Analysis, correspondent_id: int) -> bool:
    return bool(analysis.from_address) and store.correspondent_by_address(
        conn, analysis.from_address) == correspondent_id


def _first_counterpart(config: Config, analysis: Analysis) -> tuple[str, str] | None:
    names = dict(zip(analysis.to, analysis.to_names, strict=False))
    for address in (*analysis.to, *analysis.cc):
        if config.is_author(address) or parse_reply_address(address, config.addresses):
            continue
        return address, names.get(address, "")
    return None


def _thread_for_token(conn: sqlite3.Connection, config: Config, post_id: int, slug: str,
                      token: str) -> dict[str, Any] | None:
    secret = config.secret
    if not secret:
        return None
    keyed = store.thread_by_token_key(conn, post_id, token_key(token))
    # Threads not keyed yet (filed without the secret, or moved since): rare, and checked
    # one by one until the next indexing keys them.
    for thread in ([keyed] if keyed else []) + store.unkeyed_threads_of_post(conn, post_id):
        if token_matches(secret, slug, thread["correspondent_id"], token):
            return thread
    return None


def index_thread_tokens(conn: sqlite3.Connection, config: Config, *,
                        check_secret: bool = False, batch: int = 1000) -> int:
    """Key every thread that has no token key yet; how many were keyed. Commits nothing.

    The migration that added the keys cannot fill them: only the config knows the secret. So
    the listener calls this at start (``check_secret``: when the secret changed, every key is
    recomputed, and addresses signed with the old one stop verifying), and the pipeline as it
    files (new threads). A thread without a key still verifies, at the cost of an HMAC.
    """
    secret = config.secret
    if not secret:
        return 0
    if check_secret:
        newest = store.newest_keyed_thread(conn)
        if newest is not None and newest["reply_token_sha256"] != token_key(
                make_token(secret, newest["slug"], newest["correspondent_id"])):
            store.clear_thread_token_keys(conn)
    keyed = 0
    while threads := store.unkeyed_threads(conn, batch):
        store.set_thread_token_keys(conn, [
            (token_key(make_token(secret, thread["slug"], thread["correspondent_id"])),
             thread["id"]) for thread in threads])
        keyed += len(threads)
    return keyed


def thread_for_token(conn: sqlite3.Connection, config: Config, post_slug: str,
                     token: str) -> dict[str, Any] | None:
    """The thread a signed reply address names; None when its token does not verify.

    The SMTP listener asks this at RCPT, so that a forged address is refused before any data.
    """
    post = store.post_by_slug(conn, post_slug)
    if post is None:
        return None
    return _signed_thread(conn, config, post["id"], post["slug"], token)


def _signed_thread(conn: sqlite3.Connection, config: Config, post_id: int, slug: str,
                   token: str) -> dict[str, Any] | None:
    return _thread_for_token(conn, config, post_id, slug, token) \
        or _thread_for_merged_token(conn, config, post_id, slug, token)


def _thread_for_merged_token(conn: sqlite3.Connection, config: Config, post_id: int, slug: str,
                             token: str) -> dict[str, Any] | None:
    """A token signed for a correspondent since merged into another (``correspondents merge``)
    names that person's thread about the post: answers sent before the merge keep working."""
    secret = config.secret
    if not secret:
        return None
    for merged, into in store.merged_correspondents(conn):
        if token_matches(secret, slug, merged, token):
            thread_id = store.existing_thread(conn, post_id, into)
            return None if thread_id is None else {"id": thread_id, "correspondent_id": into}
    return None


def _quarantine(result: _Draft, reason: str) -> bool:
    result.status = "quarantine"
    result.reasons.append(reason)
    return False


def _hold(result: _Draft, review_class: str, reason: str, held_for: str | None = None) -> bool:
    """Quarantined to wait for the author in the review queue's ``review_class``."""
    result.review_class, result.held_for = review_class, held_for
    return _quarantine(result, reason)


class Pipeline:
    """Receive raw messages into one database. Not thread-safe: one per connection."""

    def __init__(self, conn: sqlite3.Connection, config: Config, *,
                 unrouted: Unrouted = "quarantine"):
        self.conn = conn
        self.config = config
        self.unrouted = unrouted
        self._analyser: Analyser | None = None  # started on first use

    def accept(self, raw: bytes, source: str, envelope: Envelope | None = None, *,
               origin: str | None = None, post_hint: str | None = None) -> Outcome:
        """Receive and process one message in one transaction (``quarantine release``, a
        sent answer): nothing to make durable before filing, the caller waits for both."""
        context = Context(source, envelope or Envelope(), post_hint)
        # Before the write transaction: an analysis may take up to its budget, a spam scan
        # up to [spam] timeout.
        analysis = self.analyse(raw, context)
        judgement = self.judge(raw, analysis)
        with db.transaction(self.conn, immediate=True):
            delivery_id, sha256 = self.receive(raw, source, envelope, origin=origin,
                                               post_hint=post_hint, commit=False)
            return self.process(delivery_id, sha256, raw, context, analysis,
                                judgement=judgement)

    def receive(self, raw: bytes, source: str, envelope: Envelope | None = None, *,
                origin: str | None = None, post_hint: str | None = None,
                commit: bool = True, sha256: str | None = None) -> tuple[int, str]:
        """Keep the raw bytes and a pending delivery; durable once committed."""
        envelope = envelope or Envelope()
        sha256 = sha256 or sha256_of(raw)
        store.save_raw(self.conn, sha256, raw)
        delivery_id = store.add_delivery(self.conn, sha256, source, envelope.mail_from,
                                         envelope.rcpt_to, origin, post_hint)
        if commit:
            self.conn.commit()
        return delivery_id, sha256

    def analyse(self, raw: bytes, context: Context) -> Analysed:
        """The analysis, under the time and memory budget of ``[limits]`` (see ``budget``)."""
        if self._analyser is None:
            self._analyser = Analyser(self.config)
        return self._analyser.analyse(raw, context.envelope.mail_from)

    def judge(self, raw: bytes, analysis: Analysed) -> Judgement | None:
        """The spam verdict of a message about to be filed (``spam.judge``), for ``process``.
        Callers ask for it before their write transaction: a scan waits on spamd for up to
        ``[spam] timeout``, and the SMTP listener's commits must not wait behind it.

        None for unparsed mail, and, when spamd would be asked, for what will not be
        screened: the author's own, a message stored or deleted before (a re-import scans
        nothing). Should that change before the write transaction, ``screen`` scans under it.
        Without spamd, judging reads headers only, and the look-ups would cost more."""
        if isinstance(analysis, Unparsed):
            return None
        if self.config.spam.enabled and (
                self.config.is_author(analysis.from_address)
                or store.message_by_identity(self.conn, analysis.identity_sha256) is not None
                or deleted_before(self.conn, sha256_of(raw), analysis) is not None):
            return None
        return judge(raw, self.config.spam)

    def process(self, delivery_id: int, sha256: str, raw: bytes, context: Context,
                analysis: Analysed, *, origin: str | None = None,
                decided: Plan | None = None, judgement: Judgement | None = None) -> Outcome:
        """File one received message. ``analysis`` is the reason text when parsing failed;
        ``decided`` a plan the caller already made for it in this transaction; ``judgement``
        its spam verdict from ``judge`` (else the scan happens here, under the lock)."""
        deleted = self._deleted_before(delivery_id, sha256, analysis, origin)
        if deleted is not None:
            return deleted
        if isinstance(analysis, Unparsed):
            store.add_quarantine(self.conn, sha256, delivery_id, analysis.reason,
                                 context.source, None, None)
            store.finish_delivery(self.conn, delivery_id, "quarantined", None)
            return Outcome("quarantined", reasons=(analysis.reason,), origin=origin)
        if decided is None:
            decided = plan(self.conn, self.config, analysis, context, self.unrouted)
        # Sender trust (issue 12): spam is kept apart, never in a post, thread or correspondent.
        screening = screen(self.conn, self.config, delivery_id, sha256, raw, context, analysis,
                           decided, origin, judgement)
        if screening.outcome is not None:
            return screening.outcome
        decided = screening.plan
        thread_id = decided.thread_id
        if decided.status == "store":
            thread_id = _write(self.conn, analysis, decided, context, sha256, screening.verdict)
            index_thread_tokens(self.conn, self.config)  # a new thread's address verifies fast
        if decided.status in ("store", "duplicate"):
            store.resolve_quarantine(self.conn, sha256)
        elif decided.status == "quarantine":
            store.add_quarantine(self.conn, sha256, delivery_id, decided.reasons[-1],
                                 context.source, analysis.subject, analysis.from_address,
                                 reason_class=decided.review_class,
                                 post_slug=decided.held_for)
        store.finish_delivery(self.conn, delivery_id, decided.outcome_status,
                              analysis.message_id)
        return Outcome(
            status=decided.outcome_status,
            message_id=analysis.message_id,
            thread=thread_id,
            post=decided.post_slug,
            kind=analysis.kind,
            direction=decided.direction,
            reasons=tuple(decided.reasons),
            origin=origin,
            review_class=decided.review_class if decided.status == "quarantine" else None,
        )

    def _deleted_before(self, delivery_id: int, sha256: str, analysis: Analysed,
                        origin: str | None) -> Outcome | None:
        """A message the author deleted (a tombstone matches its bytes or its identity) is
        dropped again, raw bytes and delivery too: a rescan or a resent copy never brings
        it back, whichever transport fetched it."""
        reason = deleted_before(self.conn, sha256, analysis)
        if reason is None:
            return None
        store.drop_delivery(self.conn, delivery_id, sha256)
        return Outcome("deleted", message_id=None if isinstance(analysis, Unparsed)
                       else analysis.message_id, reasons=(reason,), origin=origin)


def deleted_before(conn: sqlite3.Connection, sha256: str, analysis: Analysed) -> str | None:
    """Why a message is not filed again when the author deleted it before; None otherwise."""
    identity = None if isinstance(analysis, Unparsed) else analysis.identity_sha256
    tombstone = store.tombstone_for(conn, sha256, identity)
    if tombstone is None:
        return None
    return f"deleted with {tombstone['reason']} on {tombstone['created_at'][:10]}: not filed again"


# A reply written longer ago than this is old mail found late (a first poll of a full
# mailbox, a rescan), not news: it is filed without a notification.
NEWS_MAX_AGE = timedelta(days=2)


def _news_for_the_author(context: Context, decided: Plan, analysis: Analysis,
                         received_at: str) -> bool:
    """A new human reply that came in live (SMTP or IMAP; never a bulk ``ingest``)."""
    written = datetime.fromisoformat(analysis.date or received_at)
    return (context.source in ("smtp", "imap") and decided.direction == "in"
            and analysis.kind == "reply"
            and written >= datetime.fromisoformat(received_at) - NEWS_MAX_AGE)


def _write(conn: sqlite3.Connection, analysis: Analysis, decided: Plan, context: Context,
           sha256: str, verdict: SpamVerdict | None) -> int | None:
    """Carry out ``decided``: make the post, correspondent and thread it asks for, then store
    the message with its spam ``verdict``. Returns its thread's id."""
    post_id, correspondent_id, thread_id = (decided.post_id, decided.correspondent_id,
                                            decided.thread_id)
    if decided.create_post:
        post_id = store.create_post(conn, decided.post_slug or "")
    if correspondent_id is None and decided.correspondent_address:
        correspondent_id = store.correspondent_for(
            conn, decided.correspondent_name, decided.correspondent_address)
    if thread_id is None and decided.wants_thread and post_id is not None \
            and correspondent_id is not None:
        thread_id = store.thread_for(conn, post_id, correspondent_id, analysis.subject)
        if decided.possibly_same_as is not None:
            store.mark_possibly_same(conn, thread_id, decided.possibly_same_as)
    received_at = now()
    date = analysis.date or received_at
    # The author's own messages and machine mail need no reading.
    is_read = decided.direction == "out" or analysis.kind != "reply"
    row_id = store.insert_message(conn, store.NewMessage(
        message_id=analysis.message_id,
        synthetic_message_id=analysis.synthetic_message_id,
        message_id_reused=decided.message_id_reused,
        thread_id=thread_id,
        post_id=post_id,
        parent_message_id=decided.parent,
        direction=decided.direction,
        kind=analysis.kind,
        kind_reasons=analysis.kind_reasons,
        from_name=analysis.from_name,
        from_address=analysis.from_address,
        to_addresses=analysis.to,
        cc_addresses=analysis.cc,
        subject=analysis.subject,
        date=date,
        in_reply_to=analysis.parent,
        references=analysis.chain,
        visible_text=analysis.visible_text,
        quoted_text=analysis.quoted_text,
        signature=analysis.signature,
        body_text=analysis.body_text,
        body_html=analysis.body_html,
        source=context.source,
        raw_sha256=sha256,
        identity_sha256=analysis.identity_sha256,
        is_read=is_read,
        spam_verdict=verdict.label if verdict else None,
        spam_score=verdict.score if verdict else None,
        verdict_source=verdict.source if verdict else None,
    ), received_at)
    if _news_for_the_author(context, decided, analysis, received_at):
        store.queue_notification(conn, row_id)  # [notify] and digest: outgoing/notify.py
    for attachment in analysis.attachments:
        store.add_attachment(conn, row_id, attachment.filename, attachment.content_type,
                             attachment.content, sha256_of(attachment.content))
    store.record_ancestry(conn, analysis.message_id, analysis.chain)
    if thread_id is not None:
        store.file_in_thread(conn, thread_id, kind=analysis.kind,
                             direction=decided.direction, is_read=is_read, date=date,
                             received_at=received_at)
    return thread_id
