"""Spam kept apart from the discussions, and the spam verdict of stored messages (issue 12)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ...timestamps import now
from ._rows import _dicts, _found, _one
from .raw_deliveries import _forget_raw_if_unused
from .threads import refresh_thread
from .tombstones import add_tombstone


def add_spam(conn: sqlite3.Connection, sha256: str, delivery_id: int | None, source: str, *,
             message_id: str | None, subject: str | None, from_address: str | None,
             score: float | None, threshold: float | None, verdict_source: str,
             reasons: list[str]) -> int:
    """Keep a message as spam: one entry per raw bytes (a second copy updates the verdict)."""
    existing = _one(conn, "SELECT MIN(id) FROM spam WHERE raw_sha256 = ?", (sha256,))
    values = (score, threshold, verdict_source, json.dumps(reasons))
    if existing is not None:
        conn.execute("UPDATE spam SET score = ?, threshold = ?, verdict_source = ?, reasons = ? "
                     "WHERE id = ?", (*values, existing))
        return int(existing)
    cursor = conn.execute(
        """INSERT INTO spam (raw_sha256, delivery_id, source, message_id, subject, from_address,
                             score, threshold, verdict_source, reasons, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (sha256, delivery_id, source, message_id, subject, from_address, *values, now()),
    )
    return int(cursor.lastrowid or 0)


def list_spam(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        """SELECT spam.id, spam.score, spam.threshold, spam.verdict_source, spam.source,
                  spam.from_address, spam.subject, spam.created_at, raw_messages.size,
                  spam.raw_sha256
           FROM spam JOIN raw_messages ON raw_messages.sha256 = spam.raw_sha256
           ORDER BY spam.id"""
    ))


def get_spam(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    entry = _found(conn.execute(
        """SELECT spam.*, raw_messages.raw, deliveries.envelope_from, deliveries.envelope_to,
                  deliveries.post_hint, deliveries.origin
           FROM spam JOIN raw_messages ON raw_messages.sha256 = spam.raw_sha256
           LEFT JOIN deliveries ON deliveries.id = spam.delivery_id
           WHERE spam.id = ?""",
        (entry_id,),
    ), f"no spam entry {entry_id}")
    entry["reasons"] = json.loads(entry["reasons"] or "[]")
    return entry


def forget_spam(conn: sqlite3.Connection, sha256: str) -> None:
    """The message in these bytes was released (filed normally): it is no longer spam."""
    conn.execute("DELETE FROM spam WHERE raw_sha256 = ?", (sha256,))


def delete_spam(conn: sqlite3.Connection, entry_id: int, reason: str,
                identity_sha256: str | None) -> None:
    """Delete a spam entry and its raw bytes, leaving a tombstone so that no poll or rescan
    files the same message again."""
    entry = get_spam(conn, entry_id)
    add_tombstone(conn, reason, raw_sha256=entry["raw_sha256"], identity_sha256=identity_sha256)
    conn.execute("DELETE FROM spam WHERE id = ?", (entry_id,))
    _forget_raw_if_unused(conn, entry["raw_sha256"])


def set_message_verdict(conn: sqlite3.Connection, sha256: str, verdict: str,
                        score: float | None, verdict_source: str) -> None:
    """Record the spam verdict of the incoming message(s) stored from these raw bytes."""
    conn.execute("UPDATE messages SET spam_verdict = ?, spam_score = ?, verdict_source = ? "
                 "WHERE raw_sha256 = ? AND direction = 'in'",
                 (verdict, score, verdict_source, sha256))


def unscanned_messages(conn: sqlite3.Connection, after_id: int, limit: int,
                       not_from: str | None = None) -> list[dict[str, Any]]:
    """Stored messages the scanner has not judged yet, in id order after ``after_id``; not
    those whose ``verdict_source`` is ``not_from``."""
    return _dicts(conn.execute(
        """SELECT messages.id, messages.raw_sha256, messages.message_id, messages.subject,
                  messages.from_address, messages.source, messages.kind, messages.thread_id,
                  raw_messages.raw
           FROM messages JOIN raw_messages ON raw_messages.sha256 = messages.raw_sha256
           WHERE messages.spam_verdict = 'unscanned' AND messages.id > ?
             AND messages.verdict_source IS NOT ?
           ORDER BY messages.id LIMIT ?""",
        (after_id, not_from, limit),
    ))


def unfile_message(conn: sqlite3.Connection, message_row_id: int) -> None:
    """Take a stored message out of the discussions (found to be spam after it was filed):
    its row and attachments go, its thread is recounted, and a thread left with no message
    goes too. Its raw bytes stay (the caller keeps them in ``spam``); no tombstone."""
    thread_id = _one(conn, "SELECT thread_id FROM messages WHERE id = ?", (message_row_id,))
    conn.execute("DELETE FROM attachments WHERE message_id = ?", (message_row_id,))
    conn.execute("DELETE FROM messages WHERE id = ?", (message_row_id,))
    if thread_id is None:
        return
    if _one(conn, "SELECT 1 FROM messages WHERE thread_id = ? LIMIT 1", (thread_id,)):
        refresh_thread(conn, thread_id, new_reply=False)
    elif not _one(conn, "SELECT 1 FROM outbox WHERE thread_id = ? LIMIT 1", (thread_id,)):
        conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
