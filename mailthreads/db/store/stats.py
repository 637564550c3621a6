"""Counts over every table, for ``mailthreads stats``."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._rows import _one


def stats(conn: sqlite3.Connection) -> dict[str, Any]:
    counts = {
        "posts": _one(conn, "SELECT COUNT(*) FROM posts"),
        "correspondents": _one(conn, "SELECT COUNT(*) FROM correspondents "
                               "WHERE merged_into IS NULL"),
        "threads": _one(conn, "SELECT COUNT(*) FROM threads WHERE message_count > 0"),
        "messages": _one(conn, "SELECT COUNT(*) FROM messages"),
        "raw_messages": _one(conn, "SELECT COUNT(*) FROM raw_messages"),
        "raw_bytes": _one(conn, "SELECT COALESCE(SUM(size), 0) FROM raw_messages"),
        "quarantined": _one(conn, "SELECT COUNT(*) FROM quarantine"),
        "ghosts": _one(conn, "SELECT COUNT(*) FROM ghosts"),
        "outbox_pending": _one(conn, "SELECT COUNT(*) FROM outbox WHERE status != 'sent'"),
    }
    counts["threads_by_state"] = dict(conn.execute(
        "SELECT state, COUNT(*) FROM threads WHERE message_count > 0 GROUP BY state").fetchall())
    counts["messages_by_kind"] = dict(conn.execute(
        "SELECT kind, COUNT(*) FROM messages GROUP BY kind").fetchall())
    counts["messages_by_direction"] = dict(conn.execute(
        "SELECT direction, COUNT(*) FROM messages GROUP BY direction").fetchall())
    return counts

