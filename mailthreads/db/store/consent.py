"""Consent to publish: the author's record of whether a correspondent agreed to be quoted."""

from __future__ import annotations

import sqlite3

from ...timestamps import now
from ._rows import NotFound

# threads.consent: NULL (never asked), 'asked' (a question was drafted), 'granted', 'revoked'.
CONSENT_STATES = ("asked", "granted", "revoked")


def set_thread_consent(conn: sqlite3.Connection, thread_id: int, consent: str) -> str:
    """Record ``consent`` for a thread, dated now; returns the date recorded."""
    if consent not in CONSENT_STATES:
        raise ValueError(f"consent must be one of {', '.join(CONSENT_STATES)}")
    when = now()
    cursor = conn.execute("UPDATE threads SET consent = ?, consent_at = ? WHERE id = ?",
                          (consent, when, thread_id))
    if cursor.rowcount != 1:
        raise NotFound(f"no thread {thread_id}")
    return when
