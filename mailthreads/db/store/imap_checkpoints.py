"""IMAP checkpoints: how far each account's folder has been read."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from ...timestamps import now


class Checkpoint(NamedTuple):
    uidvalidity: int
    last_uid: int
    routing_settings: str | None  # JSON; None when saved by a mailthreads that kept none


def imap_checkpoint(conn: sqlite3.Connection, account: str, folder: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT uidvalidity, last_uid, routing_settings FROM imap_checkpoints "
        "WHERE account = ? AND folder = ?",
        (account, folder),
    ).fetchone()
    return Checkpoint(*row) if row else None


def save_imap_checkpoint(conn: sqlite3.Connection, account: str, folder: str,
                         uidvalidity: int, last_uid: int, routing_settings: str | None) -> None:
    conn.execute(
        """INSERT INTO imap_checkpoints (account, folder, uidvalidity, last_uid,
                                         routing_settings, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (account, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               last_uid = excluded.last_uid, routing_settings = excluded.routing_settings,
               updated_at = excluded.updated_at""",
        (account, folder, uidvalidity, last_uid, routing_settings, now()),
    )

