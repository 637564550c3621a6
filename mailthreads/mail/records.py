"""Value types ``mail/`` works on, built from stored messages by the store or the caller.

Small on purpose (no imports beyond typing): the store builds them on the quick read path.
"""

from __future__ import annotations

from typing import NamedTuple


class ThreadMessage(NamedTuple):
    """One message of a thread, as choosing and addressing an answer to it needs it."""

    id: int  # the row id, which ``reply --to-message`` may name
    message_id: str
    direction: str  # in: from a correspondent; out: from the author
    kind: str  # reply, or the kind of machine mail (classify.MACHINE_KINDS)
    from_name: str
    from_address: str
    kind_reasons: tuple[str, ...] = ()
    subject: str = ""
    date: str | None = None  # ISO 8601, UTC
    visible_text: str = ""
    synthetic_message_id: bool = False  # made up by us: no client knows it
    references: tuple[str, ...] = ()
