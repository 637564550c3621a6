"""Filing by the spam verdict: the one hook of sender trust in the pipeline.

``screen`` runs when a message's plan is made (``Pipeline.process``), never before the
listener's ``250``: spam goes to the ``spam`` table instead of a post, correspondent or
thread; a DMARC failure of a domain that publishes p=reject/quarantine is quarantined or kept
as spam (``[spam] dmarc_failure``); a correspondent the author has answered is never sent to
spam by a score alone (``mail.trust``); anything else is filed as planned, with its verdict
(``ham`` or ``unscanned``) recorded on the message.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from ..config import Config
from ..db import store
from ..mail.analysis import Analysis
from ..mail.classify import MACHINE_KINDS
from ..mail.trust import TrustFacts, decide
from ..mail.verdicts import UNSCANNED, SpamVerdict
from ..spam import Judgement, judge
from .values import Context, Outcome, Plan


@dataclass
class Screening:
    """What ``screen`` decided: ``outcome`` when the message was kept as spam (nothing else
    to do), else the ``plan`` to carry out (the one given, or a copy quarantining a forged
    message, or with the verdict among its reasons) and the verdict to record once stored."""

    plan: Plan
    judgement: Judgement | None = None
    outcome: Outcome | None = None

    @property
    def verdict(self) -> SpamVerdict | None:
        """The verdict the stored message carries, written with its row (an UPDATE after the
        INSERT re-indexed the message's text in full-text search, twice the work); None for
        the author's messages."""
        if self.outcome is None and self.judgement is not None:
            return self.judgement.verdict
        return None


def screen(conn: sqlite3.Connection, config: Config, delivery_id: int, sha256: str, raw: bytes,
           context: Context, analysis: Analysis, decided: Plan,
           origin: str | None = None, judgement: Judgement | None = None) -> Screening:
    """Judge an incoming message about to be stored or quarantined, and keep spam apart.
    ``judgement``: the one ``Pipeline.judge`` made before the write transaction (else it is
    made here, under the lock)."""
    if decided.direction != "in" or decided.status not in ("store", "quarantine"):
        return Screening(decided)
    if judgement is None:
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
    elif verdict.is_spam and _trusted(conn, analysis):
        # Precedence (mail.trust): a correspondent you have answered is never sent to spam by
        # a score alone; the mail is filed with the score as a flag.
        decision = decide(TrustFacts(trusted=True, spam="spam"))
        return Screening(_with_reason(decided, f"{reasons[0]}; {decision.reason}"), judgement)
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


def _trusted(conn: sqlite3.Connection, analysis: Analysis) -> bool:
    return bool(analysis.from_address) and store.is_trusted_address(conn, analysis.from_address)


def _with_reason(decided: Plan, reason: str, **changes: str) -> Plan:
    """A copy of the plan with one more reason (plans are not changed once made)."""
    return replace(decided, reasons=type(decided.reasons)([*decided.reasons, reason]),
                   **changes)


