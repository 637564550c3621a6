"""Open the database: WAL, a busy timeout, foreign keys, and the schema brought up to date.

Two ways in. ``open_database`` is for writers: it imports sqlite-utils and applies migrations.
``connect_read_only`` is for the quick read commands (``threads``, ``show``): plain sqlite3 and a
``PRAGMA user_version`` check, so they start fast; it falls back to ``open_database`` when the
schema needs work.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 30_000


class DatabaseError(Exception):
    """The database cannot be opened or is not a mailthreads database."""


def _prepare(conn: sqlite3.Connection, *, durable: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise DatabaseError(f"cannot switch the database to WAL mode (got {mode})")
    # FULL syncs the WAL on every commit: a committed message survives a power cut, which the
    # SMTP listener promises before it answers 250. NORMAL is enough for bulk imports, which can
    # simply be run again.
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")


def open_database(path: Path | str, *, durable: bool = True) -> Database:
    from sqlite_utils import Database

    from . import migrations

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        _prepare(conn, durable=durable)
        db = Database(conn, execute_plugins=False)
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            migrations.apply(db)
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path}: {error}") from None
    except OSError as error:
        raise DatabaseError(f"{path}: {error}") from None
    return db


def connect_read_only(path: Path | str) -> sqlite3.Connection:
    """A plain sqlite3 connection for the read path; rows come back as ``sqlite3.Row``."""
    path = Path(path)
    if not path.exists():
        # A first run: create it properly, so the user sees an empty listing, not an error.
        open_database(path).conn.close()
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path}: {error}") from None
    if version != SCHEMA_VERSION:
        conn.close()
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{path}: schema version {version} is newer than this mailthreads "
                f"understands ({SCHEMA_VERSION}); upgrade mailthreads"
            )
        open_database(path).conn.close()
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn
