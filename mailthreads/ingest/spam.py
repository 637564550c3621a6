"""Filing by the spam verdict: the one hook of sender trust in the pipeline, and the
``mailthreads spam`` / ``rescan`` operations.

``screen`` runs when a message's plan is made (``Pipeline.process``), never before the
listener's ``250``: spam goes to the ``spam`` table instead of a post, correspondent or
thread; a DMARC failure of a domain that publishes p=reject/quarantine is quarantined or kept
as spam (``[spam] dmarc_failure``); anything else is filed as planned, with its verdict
(``ham`` or ``unscanned``) recorded on the message.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..config import Config, Spam
from ..db import store
from ..mail.analysis import Analysis
from ..mail.classify import MACHINE_KINDS
from ..mail.verdicts import UNSCANNED, SpamVerdict
from ..spam import Judgement, judge, scan
from . import Context, Envelope, Outcome, Pipeline, Plan, analyze_or_reason

DELETE_REASON = "spam delete"
RESCAN_BATCH = 50


@dataclass
class Screening:
    """What ``screen`` decided: ``outcome`` when the message was kept as spam (nothing else
    to do), else the ``plan`` to carry out (the one given, or a copy quarantining a forged
    message, or with the verdict among its reasons) and the verdict to record once stored."""

    plan: Plan
    judgement: Judgement | None = None
    outcome: Outcome | None = None

    def record(self, conn: sqlite3.Connection, sha256: str) -> None:
        if self.outcome is None and self.judgement is not None:
            verdict = self.judgement.verdict
            store.set_message_verdict(conn, sha256, verdict.label, verdict.score,
                                      verdict.source)


def screen(conn: sqlite3.Connection, config: Config, delivery_id: int, sha256: str, raw: bytes,
           context: Context, analysis: Analysis, decided: Plan,
           origin: str | None = None) -> Screening:
    """Judge an incoming message about to be stored or quarantined, and keep spam apart."""
    if decided.direction != "in" or decided.status not in ("store", "quarantine"):
        return Screening(decided)
    judgement = judge(raw, config.spam)
    verdict = judgement.verdict
    reasons = [f"spam verdict: {verdict.describe()}"]
    if judgement.forged:
        assert judgement.authentication is not None
        forged = (f"forged: DMARC failed ({judgement.authentication.describe()})")
        if config.spam.dmarc_failure == "quarantine":
            if decided.status == "store":
                decided = _with_reason(decided, forged, status="quarantine")
            return Screening(decided, judgement)
        reasons.append(forged)
    elif verdict.is_spam and analysis.kind in MACHINE_KINDS and decided.thread_id is not None:
        # A bounce or auto-reply about one of your discussions (say, your answer did not
        # arrive) stays where you will see it, whatever its score: it never needs a reply.
        return Screening(_with_reason(decided, f"{reasons[0]}: filed anyway, it reports on "
                                      f"thread {decided.thread_id}"), judgement)
    elif not verdict.is_spam:
        # Said only when something judged it; a quarantine keeps its reason last.
        if decided.status == "store" and verdict is not UNSCANNED:
            decided = _with_reason(decided, reasons[0])
        return Screening(decided, judgement)
    store.add_spam(conn, sha256, delivery_id, context.source, message_id=analysis.message_id,
                   subject=analysis.subject, from_address=analysis.from_address,
                   score=verdict.score, threshold=verdict.threshold,
                   verdict_source=verdict.source,
                   reasons=list(verdict.reasons) + reasons[1:])
    store.finish_delivery(conn, delivery_id, "spam", analysis.message_id)
    return Screening(decided, judgement, Outcome("spam", message_id=analysis.message_id,
                                        kind=analysis.kind, direction="in",
                                        reasons=tuple(reasons), origin=origin))


def _with_reason(decided: Plan, reason: str, **changes: str) -> Plan:
    """A copy of the plan with one more reason (plans are not changed once made)."""
    return replace(decided, reasons=type(decided.reasons)([*decided.reasons, reason]),
                   **changes)


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
    analysis = analyze_or_reason(entry["raw"], config, entry["envelope_from"])
    identity = None if isinstance(analysis, str) else analysis.identity_sha256
    store.delete_spam(conn, entry_id, DELETE_REASON, identity)


@dataclass(frozen=True)
class Rescanned:
    message_id: str
    subject: str
    verdict: SpamVerdict


def rescan(conn: sqlite3.Connection, config: Config) -> Iterator[Rescanned]:
    """Scan the stored messages still marked ``unscanned``; spam leaves its thread for the
    ``spam`` table (machine mail about a discussion stays, as when filed). Commits after each
    message; stops early when the scanner is still down."""
    after = 0
    while batch := store.unscanned_messages(conn, after, RESCAN_BATCH):
        for row in batch:
            after = row["id"]
            verdict = scan(row["raw"], config.spam)
            if verdict.label == "unscanned":
                yield Rescanned(row["message_id"], row["subject"] or "", verdict)
                return
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
            conn.commit()
            yield Rescanned(row["message_id"], row["subject"] or "", verdict)
