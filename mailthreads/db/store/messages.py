"""Messages and their attachments: the filed record, and the reads of a thread's messages."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ._rows import _dict, _dicts, _one

MESSAGE_COLUMNS = (
    "id", "message_id", "parent_message_id", "direction", "kind", "from_name", "from_address",
    "to_addresses", "subject", "date", "visible_text", "quoted_text", "signature", "source",
    "is_read", "message_id_reused", "kind_reasons",
)


def thread_messages(conn: sqlite3.Connection, thread_id: int) -> list[dict[str, Any]]:
    rows = _dicts(conn.execute(
        f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages WHERE thread_id = ? "
        "ORDER BY date, id",
        (thread_id,),
    ))
    for row in rows:
        row["to_addresses"] = json.loads(row["to_addresses"] or "[]")
        row["kind_reasons"] = json.loads(row["kind_reasons"] or "[]")
    return rows


def reply_candidates(conn: sqlite3.Connection, thread_id: int) -> list[dict[str, Any]]:
    """A thread's messages, oldest first, with what an answer to each one needs."""
    rows = _dicts(conn.execute(
        f"""SELECT {', '.join(MESSAGE_COLUMNS)}, synthetic_message_id, "references"
            FROM messages WHERE thread_id = ? ORDER BY date, id""",
        (thread_id,),
    ))
    for row in rows:
        row["to_addresses"] = json.loads(row["to_addresses"] or "[]")
        row["kind_reasons"] = json.loads(row["kind_reasons"] or "[]")
        row["references"] = json.loads(row["references"] or "[]")
    return rows


def search_messages(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        """SELECT messages.id, messages.thread_id AS thread, posts.slug AS post,
                  messages.from_name, messages.from_address, messages.subject, messages.date,
                  snippet(messages_fts, 1, '[', ']', '…', 12) AS snippet
           FROM messages_fts
           JOIN messages ON messages.id = messages_fts.rowid
           LEFT JOIN posts ON posts.id = messages.post_id
           WHERE messages_fts MATCH ?
           ORDER BY messages_fts.rank LIMIT ?""",
        (query, limit),
    ))


def message_by_identity(conn: sqlite3.Connection, identity_sha256: str) -> dict[str, Any] | None:
    return _dict(conn.execute(
        "SELECT id, message_id, thread_id, post_id, kind FROM messages WHERE identity_sha256 = ?",
        (identity_sha256,),
    ))


def message_id_known(conn: sqlite3.Connection, message_id: str) -> bool:
    return _one(conn, "SELECT 1 FROM messages WHERE message_id = ? LIMIT 1", (message_id,)) == 1


def known_message_ids(conn: sqlite3.Connection, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` name stored messages (for mail the parser could not read)."""
    return {message_id for message_id in message_ids if message_id_known(conn, message_id)}


def first_known_message(conn: sqlite3.Connection,
                        message_ids: Iterable[str]) -> dict[str, Any] | None:
    """The first of ``message_ids`` (in the order given) that names a stored message."""
    for message_id in message_ids:
        row = _dict(conn.execute(
            """SELECT id, message_id, thread_id, post_id, direction, kind, from_address
               FROM messages WHERE message_id = ? ORDER BY id LIMIT 1""",
            (message_id,),
        ))
        if row:
            return row
    return None


class NewMessage(NamedTuple):
    message_id: str
    synthetic_message_id: bool
    message_id_reused: bool
    thread_id: int | None
    post_id: int | None
    parent_message_id: str | None
    direction: str
    kind: str
    kind_reasons: Sequence[str]
    from_name: str
    from_address: str
    to_addresses: Sequence[str]
    cc_addresses: Sequence[str]
    subject: str
    date: str
    in_reply_to: str | None
    references: Sequence[str]
    visible_text: str
    quoted_text: str
    signature: str
    body_text: str
    body_html: str
    source: str
    raw_sha256: str
    identity_sha256: str
    is_read: bool


def insert_message(conn: sqlite3.Connection, message: NewMessage, received_at: str) -> int:
    cursor = conn.execute(
        """INSERT INTO messages (
               message_id, synthetic_message_id, message_id_reused, thread_id, post_id,
               parent_message_id, direction, kind, kind_reasons, from_name, from_address,
               to_addresses, cc_addresses, subject, date, in_reply_to, "references",
               visible_text, quoted_text, signature, body_text, body_html, source, raw_sha256,
               identity_sha256, is_read, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   ?)""",
        (
            message.message_id, int(message.synthetic_message_id),
            int(message.message_id_reused), message.thread_id, message.post_id,
            message.parent_message_id, message.direction, message.kind,
            json.dumps(list(message.kind_reasons)), message.from_name, message.from_address,
            json.dumps(list(message.to_addresses)), json.dumps(list(message.cc_addresses)),
            message.subject, message.date, message.in_reply_to,
            json.dumps(list(message.references)), message.visible_text, message.quoted_text,
            message.signature, message.body_text, message.body_html, message.source,
            message.raw_sha256, message.identity_sha256, int(message.is_read), received_at,
        ),
    )
    return int(cursor.lastrowid or 0)


def add_attachment(conn: sqlite3.Connection, message_row_id: int, filename: str,
                   content_type: str, content: bytes, sha256: str) -> None:
    conn.execute(
        """INSERT INTO attachments (message_id, filename, content_type, size, sha256, content)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (message_row_id, filename, content_type, len(content), sha256, content),
    )

