"""What ``threads`` and ``show`` say beside a discussion: answers that were not delivered (or
were delayed), and the attachments of each message."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .output import styled

if TYPE_CHECKING:
    from ..db.store import MessageRow


def undelivered_notes(conn: sqlite3.Connection,
                      thread_ids: list[int] | None = None) -> dict[int, str]:
    """{thread: "your answer of <date> was not delivered: <reason>"} for threads where a
    permanent bounce reports one of the author's answers undelivered."""
    from ..db import store

    bounced = store.bounced_threads(conn, thread_ids)
    if not bounced:  # the usual case: no need to load the classifier for its constant
        return {}
    from ..mail.classify import TEMPORARY_FAILURE
    from ..mail.dsn import failure_in_words

    notes = {}
    for thread_id, row in store.undelivered_answers(conn, TEMPORARY_FAILURE,
                                                    sorted(bounced)).items():
        raw = store.raw_message(conn, row["bounce_raw_sha256"]) or b""
        notes[thread_id] = (f"your answer of {_day(row['answer_date'])} was not delivered: "
                            f"{failure_in_words(raw)}")
    return notes


def thread_notes(conn: sqlite3.Connection, thread_id: int) -> list[str]:
    """What ``show`` says about a thread's answers above the conversation."""
    from ..db import store

    if not store.bounced_threads(conn, [thread_id]):
        return []
    from ..mail.classify import TEMPORARY_FAILURE

    notes = list(undelivered_notes(conn, [thread_id]).values())
    delays = store.delayed_answers(conn, thread_id, TEMPORARY_FAILURE)
    if delays and not notes:
        notes.append(f"note: delivery of your answer was delayed ({_day(delays[-1]['received_at'])}"
                     "); the sending server keeps trying, nothing to do yet")
    return notes


def _day(iso: str | None) -> str:
    return (iso or "?")[:10]


def attachments_by_message(conn: sqlite3.Connection,
                           messages: Sequence[MessageRow]) -> dict[int, list[dict[str, Any]]]:
    """{message row id: its attachments (id, filename, content_type, size)}."""
    from ..db import store

    found: dict[int, list[dict[str, Any]]] = {}
    for row in store.attachments_of(conn, [message.id for message in messages]):
        found.setdefault(row.pop("message_id"), []).append(row)
    return found


def attachment_lines(attachments: Sequence[dict[str, Any]]) -> list[str]:
    return [styled(f"[attachment: {item['filename'] or '(no name)'}, {human_size(item['size'])}]",
                   multiline=False, dim=True)
            for item in attachments]


def human_size(size: int | None) -> str:
    size = size or 0
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"
