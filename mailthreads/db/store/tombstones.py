"""Tombstones: the hashes of messages the author deleted, so none is filed again."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...timestamps import now
from ._rows import _dict


def add_tombstone(conn: sqlite3.Connection, reason: str, *, raw_sha256: str | None = None,
                  identity_sha256: str | None = None) -> None:
    """Remember that the author deleted a message, by its hashes only (no content), so that
    no transport files it again. Every command that deletes or forgets mail calls this."""
    if raw_sha256 is None and identity_sha256 is None:
        raise ValueError("a tombstone needs the raw or the identity SHA-256")
    conn.execute(
        "INSERT INTO tombstones (raw_sha256, identity_sha256, reason, created_at) "
        "VALUES (?, ?, ?, ?)",
        (raw_sha256, identity_sha256, reason, now()),
    )


def tombstone_for(conn: sqlite3.Connection, raw_sha256: str,
                  identity_sha256: str | None) -> dict[str, Any] | None:
    """The tombstone of a message with these bytes or this identity, if it was deleted."""
    return _dict(conn.execute(
        "SELECT reason, created_at FROM tombstones WHERE raw_sha256 = ? "
        "OR identity_sha256 = ? ORDER BY id LIMIT 1",
        (raw_sha256, identity_sha256),
    ))

