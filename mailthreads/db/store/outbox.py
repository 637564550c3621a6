"""The outbox: answers written by the author, on their way to the relay and the Sent folder."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...timestamps import now
from ._rows import _dicts, _found

# outbox.status: pending (never tried), sending (an attempt is running, or the connection broke
# while the relay had the whole message: maybe sent, so never retried without --force), sent,
# failed (the relay did not take it: `outbox send` retries it), draft (written for the author,
# e.g. by `consent ask`: only `outbox send ID` sends it, never `outbox send` alone).
# outbox.saved_to_sent: 1 copied to the IMAP Sent folder, 0 not yet (retried), NULL not wanted.
OUTBOX_RETRYABLE = ("pending", "failed")
_OUTBOX_COLUMNS = """outbox.id, outbox.thread_id, outbox.message_id, outbox.in_reply_to,
    outbox.to_address, outbox.subject, outbox.body, outbox.status, outbox.attempts,
    outbox.last_error, outbox.created_at, outbox.sent_at, outbox.saved_to_sent,
    posts.slug AS post"""


def add_outbox(conn: sqlite3.Connection, *, thread_id: int, message_id: str,
               in_reply_to: str | None, to_address: str, subject: str, body: str,
               raw: bytes, status: str = "pending") -> int:
    cursor = conn.execute(
        """INSERT INTO outbox (thread_id, message_id, in_reply_to, to_address, subject, body,
                               raw, status, attempts, created_at, saved_to_sent)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0)""",
        (thread_id, message_id, in_reply_to, to_address, subject, body, raw, status, now()),
    )
    return int(cursor.lastrowid or 0)


def outbox_entries(conn: sqlite3.Connection, *, include_sent: bool = False,
                   ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    where, params = [], []
    if not include_sent:
        where.append("outbox.status != 'sent'")
    if ids is not None:
        where.append(f"outbox.id IN ({', '.join('?' * len(ids))})")
        params.extend(ids)
    sql = f"""SELECT {_OUTBOX_COLUMNS} FROM outbox
              LEFT JOIN threads ON threads.id = outbox.thread_id
              LEFT JOIN posts ON posts.id = threads.post_id"""
    if where:
        sql += " WHERE " + " AND ".join(where)
    return _dicts(conn.execute(sql + " ORDER BY outbox.id", params))


def outbox_entry(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    return _found(conn.execute(
        f"""SELECT {_OUTBOX_COLUMNS}, outbox.raw FROM outbox
            LEFT JOIN threads ON threads.id = outbox.thread_id
            LEFT JOIN posts ON posts.id = threads.post_id
            WHERE outbox.id = ?""",
        (entry_id,),
    ), f"no outbox entry {entry_id}")


def claim_outbox(conn: sqlite3.Connection, entry_id: int,
                 from_states: Sequence[str] = OUTBOX_RETRYABLE) -> bool:
    """Mark an entry as being sent, if it is in one of ``from_states``; False if it was not.

    One UPDATE with the state in its WHERE: of two processes sending at once, one wins.
    """
    cursor = conn.execute(
        f"""UPDATE outbox SET status = 'sending', attempts = attempts + 1
            WHERE id = ? AND status IN ({', '.join('?' * len(from_states))})""",
        (entry_id, *from_states),
    )
    return cursor.rowcount == 1


def finish_outbox(conn: sqlite3.Connection, entry_id: int, status: str,
                  error: str | None = None) -> None:
    conn.execute(
        """UPDATE outbox SET status = ?, last_error = ?,
                  sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
           WHERE id = ?""",
        (status, error, status, now(), entry_id),
    )


def set_saved_to_sent(conn: sqlite3.Connection, entry_id: int, saved: bool | None) -> None:
    conn.execute("UPDATE outbox SET saved_to_sent = ? WHERE id = ?",
                 (None if saved is None else int(saved), entry_id))


def unsaved_sent_copies(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Sent answers whose copy to the Sent folder is still owed."""
    return _dicts(conn.execute(
        "SELECT id, raw FROM outbox WHERE status = 'sent' AND saved_to_sent = 0 ORDER BY id"))


def delete_outbox_entry(conn: sqlite3.Connection, entry_id: int) -> None:
    conn.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))


def replace_outbox_answer(conn: sqlite3.Connection, entry_id: int, body: str,
                          raw: bytes) -> None:
    """An edited answer: new text and bytes, waiting to be sent as if never tried (a draft
    stays a draft: editing it sends nothing)."""
    conn.execute("UPDATE outbox SET body = ?, raw = ?, last_error = NULL, "
                 "status = CASE WHEN status = 'draft' THEN 'draft' ELSE 'pending' END "
                 "WHERE id = ?", (body, raw, entry_id))
