"""What every store module shares: the NotFound error and the row helpers."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


class NotFound(Exception):
    """A thread, post or quarantine entry named by the user does not exist."""


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _dict(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    rows = _dicts(cursor)
    return rows[0] if rows else None


def _found(cursor: sqlite3.Cursor, missing: str) -> dict[str, Any]:
    """The one row the user named, or ``NotFound(missing)`` ("no outbox entry 7")."""
    row = _dict(cursor)
    if row is None:
        raise NotFound(missing)
    return row

