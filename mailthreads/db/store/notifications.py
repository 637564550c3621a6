"""The notifications queue: new human replies that came by SMTP or IMAP, for the [notify]
command (run after the filing commit) and for 'mailthreads digest'; and the digests sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...timestamps import now
from ._rows import _dicts

# What the [notify] command and the digest are told about a reply.
_REPLY_COLUMNS = """notifications.id, messages.thread_id AS thread, posts.slug AS post,
       messages.from_name, messages.from_address, messages.subject, messages.visible_text,
       messages.received_at, notifications.attempts"""
_REPLY_JOINS = """JOIN messages ON messages.id = notifications.message_id
       LEFT JOIN posts ON posts.id = messages.post_id"""


def queue_notification(conn: sqlite3.Connection, message_row_id: int) -> None:
    """Queue a stored reply (``messages.id``), in the transaction that stored it."""
    conn.execute("INSERT OR IGNORE INTO notifications (message_id, created_at) VALUES (?, ?)",
                 (message_row_id, now()))


def due_notifications(conn: sqlite3.Connection, moment: str,
                      limit: int = 20) -> list[dict[str, Any]]:
    """Replies whose [notify] command is still to run (or to retry) at ``moment``."""
    return _dicts(conn.execute(
        f"""SELECT {_REPLY_COLUMNS} FROM notifications {_REPLY_JOINS}
            WHERE notifications.command_status = 'pending'
              AND (notifications.next_attempt_at IS NULL OR notifications.next_attempt_at <= ?)
            ORDER BY notifications.id LIMIT ?""", (moment, limit)))


def next_notification_attempt(conn: sqlite3.Connection) -> str | None:
    """When the earliest pending notification is due (None: none pending)."""
    row = conn.execute("SELECT MIN(COALESCE(next_attempt_at, '')) FROM notifications "
                       "WHERE command_status = 'pending'").fetchone()
    return row[0]


def claim_notification(conn: sqlite3.Connection, notification_id: int, moment: str,
                       lease_until: str) -> bool:
    """Take a due notification for one run: nobody else runs it before ``lease_until`` (and
    if this process dies mid-run, it is due again then). False if another process has it."""
    return conn.execute(
        """UPDATE notifications SET next_attempt_at = ?
           WHERE id = ? AND command_status = 'pending'
             AND (next_attempt_at IS NULL OR next_attempt_at <= ?)""",
        (lease_until, notification_id, moment)).rowcount == 1


def finish_notification(conn: sqlite3.Connection, notification_id: int, *,
                        error: str | None = None, retry_at: str | None = None) -> None:
    """Record one run of the command: done (no ``error``), to retry at ``retry_at``, or
    given up (an ``error`` and no ``retry_at``)."""
    status = "done" if error is None else "pending" if retry_at else "failed"
    conn.execute(
        """UPDATE notifications SET command_status = ?, attempts = attempts + 1,
                  last_error = ?, next_attempt_at = ?,
                  notified_at = CASE WHEN ? = 'done' THEN ? ELSE notified_at END
           WHERE id = ?""",
        (status, error, retry_at, status, now(), notification_id))


def expire_notifications(conn: sqlite3.Connection, before: str) -> int:
    """Pending notifications queued before ``before`` are settled unrun: a [notify] command
    configured (or fixed) today must not fire for the replies of last month."""
    return conn.execute("UPDATE notifications SET command_status = 'expired' "
                        "WHERE command_status = 'pending' AND created_at < ?",
                        (before,)).rowcount


def undigested_replies(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Replies no digest has listed yet, oldest thread first, in arrival order inside it."""
    return _dicts(conn.execute(
        f"""SELECT {_REPLY_COLUMNS} FROM notifications {_REPLY_JOINS}
            WHERE notifications.digest_id IS NULL
            ORDER BY messages.thread_id, messages.received_at, messages.id"""))


def record_digest(conn: sqlite3.Connection, recipient: str, notification_ids: Sequence[int],
                  relay_response: str) -> int:
    """A digest was sent: it listed these replies, which no later digest lists again."""
    cursor = conn.execute(
        "INSERT INTO digests (sent_at, recipient, replies, relay_response) VALUES (?, ?, ?, ?)",
        (now(), recipient, len(notification_ids), relay_response))
    digest_id = int(cursor.lastrowid or 0)
    conn.executemany("UPDATE notifications SET digest_id = ? WHERE id = ?",
                     [(digest_id, i) for i in notification_ids])
    return digest_id
