"""Blocked senders (``mailthreads block``): addresses and ``@domain`` patterns."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...timestamps import now
from ._rows import _dicts


def add_block(conn: sqlite3.Connection, pattern: str) -> bool:
    """Block ``pattern`` (already normalised); False when it was blocked before."""
    cursor = conn.execute("INSERT OR IGNORE INTO blocks (pattern, created_at) VALUES (?, ?)",
                          (pattern, now()))
    return cursor.rowcount > 0


def remove_block(conn: sqlite3.Connection, pattern: str) -> bool:
    """Unblock ``pattern``; False when it was not blocked."""
    return conn.execute("DELETE FROM blocks WHERE pattern = ?", (pattern,)).rowcount > 0


def list_blocks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return _dicts(conn.execute("SELECT pattern, created_at FROM blocks ORDER BY pattern"))


def blocks_among(conn: sqlite3.Connection, patterns: list[str]) -> set[str]:
    """Which of ``patterns`` are blocked (one indexed look-up each, however many blocks)."""
    if not patterns:
        return set()
    marks = ", ".join("?" * len(patterns))
    return {row[0] for row in conn.execute(
        f"SELECT pattern FROM blocks WHERE pattern IN ({marks})", patterns)}
