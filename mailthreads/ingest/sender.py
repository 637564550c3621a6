"""The facts about a message's sender that ``mail.trust.decide`` weighs, read from the store.

Kept apart from the planning code so that the one hook in ``plan`` stays one call.
"""

from __future__ import annotations

import sqlite3

from ..db import store
from ..mail.analysis import Analysis
from ..mail.trust import TrustDecision, TrustFacts, block_candidates, decide, matching_block


def sender_facts(conn: sqlite3.Connection, analysis: Analysis,
                 envelope_sender: str | None) -> TrustFacts:
    """Blocked (by the From address or the envelope sender)? A trusted correspondent?

    The DMARC result and the spam level come from the spam checks (issue 12's other half, on
    the ``spam`` branch: ``mail.verdicts``); until they are wired in here they are unknown
    (None), and the decision rests on the rest. Wiring them: ``dmarc="fail"`` when
    ``Authentication.forged``, and ``spam`` = ``SpamVerdict.label`` ("unscanned" as None).
    """
    senders = (analysis.from_address, envelope_sender)
    return TrustFacts(
        blocked_by=matching_block(senders, store.blocks_among(conn, block_candidates(senders))),
        trusted=bool(analysis.from_address)
        and store.is_trusted_address(conn, analysis.from_address or ""),
    )


def sender_decision(conn: sqlite3.Connection, analysis: Analysis,
                    envelope_sender: str | None) -> TrustDecision:
    return decide(sender_facts(conn, analysis, envelope_sender))
