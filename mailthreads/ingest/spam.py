"""The ``mailthreads spam`` and ``rescan`` operations on mail kept apart as spam (filing by
the verdict is ``screening.screen``, the pipeline's hook)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from .. import db
from ..config import Config, Spam
from ..db import store
from ..mail.classify import MACHINE_KINDS
from ..mail.verdicts import UNSCANNED, SpamVerdict
from ..spam import scan, spamd_down
from . import Envelope, Outcome, Pipeline, Unparsed, analyse_or_unparsed

DELETE_REASON = "spam delete"
RESCAN_BATCH = 50


def release(conn: sqlite3.Connection, config: Config, entry_id: int,
            post_hint: str | None = None) -> Outcome:
    """File a spam entry as a normal message (no scan this time). Released again after a
    crash between the two commits, it is found stored and only leaves the spam list."""
    entry = store.get_spam(conn, entry_id)
    envelope = Envelope(entry["envelope_from"], tuple(json.loads(entry["envelope_to"] or "[]")))
    unscreened = config._replace(spam=Spam())  # the author's decision overrides the scanner
    outcome = Pipeline(conn, unscreened).accept(
        entry["raw"], entry["source"] or "file", envelope, origin=f"spam {entry_id}",
        post_hint=post_hint or entry["post_hint"])
    if outcome.status in ("stored", "duplicate"):
        store.forget_spam(conn, entry["raw_sha256"])
        store.set_message_verdict(conn, entry["raw_sha256"], "released", entry["score"],
                                  f"released by the author ({entry['verdict_source']})")
    conn.commit()
    return outcome


def delete(conn: sqlite3.Connection, config: Config, entry_id: int) -> None:
    """Delete a spam entry and its raw bytes, leaving a tombstone (hashes only)."""
    entry = store.get_spam(conn, entry_id)
    analysis = analyse_or_unparsed(entry["raw"], config, entry["envelope_from"])
    identity = None if isinstance(analysis, Unparsed) else analysis.identity_sha256
    store.delete_spam(conn, entry_id, DELETE_REASON, identity)


@dataclass(frozen=True)
class Rescanned:
    message_id: str
    subject: str
    verdict: SpamVerdict
    stopped: bool = False  # spamd is down: the rescan stops here, the rest waits


def rescan(conn: sqlite3.Connection, config: Config, *,
           missed_only: bool = False) -> Iterator[Rescanned]:
    """Scan the stored messages still marked ``unscanned``; spam leaves its thread for the
    ``spam`` table (machine mail about a discussion stays, as when filed). Commits after each
    message; stops early when the scanner is still down (a message it refuses stays
    ``unscanned``, and the rescan goes on). ``missed_only``: only the messages filed while a
    scanner was configured but did not answer, not those filed with none."""
    after = 0
    not_from = UNSCANNED.source if missed_only else None
    while batch := store.unscanned_messages(conn, after, RESCAN_BATCH, not_from):
        for row in batch:
            after = row["id"]
            verdict = scan(row["raw"], config.spam)
            if verdict.label == "unscanned":
                down = spamd_down(config.spam) is not None
                yield Rescanned(row["message_id"], row["subject"] or "", verdict, stopped=down)
                if down:
                    return
                continue
            # One message's rows change together or not at all (a lock, a full disk).
            with db.transaction(conn):
                if verdict.is_spam and not (row["kind"] in MACHINE_KINDS and row["thread_id"]):
                    store.unfile_message(conn, row["id"])
                    store.add_spam(conn, row["raw_sha256"], None, row["source"] or "file",
                                   message_id=row["message_id"], subject=row["subject"],
                                   from_address=row["from_address"], score=verdict.score,
                                   threshold=verdict.threshold, verdict_source=verdict.source,
                                   reasons=list(verdict.reasons))
                else:
                    store.set_message_verdict(conn, row["raw_sha256"], verdict.label,
                                              verdict.score, verdict.source)
            yield Rescanned(row["message_id"], row["subject"] or "", verdict)
