"""Open the database: WAL, a busy timeout, foreign keys, and the schema brought up to date.

Two ways in. ``open_database`` is for writers: it imports sqlite-utils and applies migrations.
``connect`` is for the quick read commands (``threads``, ``show``): plain sqlite3 and a
``PRAGMA user_version`` check, so they start fast; it falls back to ``open_database`` when the
schema needs work.

Only commands that store something create a database (``create=True``); the others say that it
is missing. A new database appears whole: it is made under a temporary name beside the target
and linked into place, so no process ever sees a half-made one, and several processes creating
it at once all end up using the same file. That is also why an empty (0-byte) file is refused:
mailthreads never leaves one, so it is a mistake (``touch``, a failed copy) or a truncated
database, and quietly making a new database there would hide that. sqlite3 errors are not
translated here: the CLI's top-level handler turns them into one-line messages.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from sqlite_utils import Database

SCHEMA_VERSION = 11
BUSY_TIMEOUT_SECONDS = 30.0
# Seconds to wait for another process's write lock before giving up (exit 75 in the CLI).
BUSY_TIMEOUT_ENV = "MAILTHREADS_BUSY_TIMEOUT"
CREATED_BY = "'mailthreads init' creates it (so do serve, poll, ingest and posts add)"


class DatabaseError(Exception):
    """The database cannot be opened or is not a mailthreads database."""


class DatabaseMissing(DatabaseError):
    """There is no database where one is expected, and this command does not create one."""


def busy_timeout() -> float:
    """How long to wait for another process's lock: ``$MAILTHREADS_BUSY_TIMEOUT`` or 30 s."""
    value = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not value:
        return BUSY_TIMEOUT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 1e6:
        raise DatabaseError(f"{BUSY_TIMEOUT_ENV} must be a number of seconds, not {value!r}")
    return seconds


def make_data_directory(directory: Path) -> None:
    """Create ``directory`` (and its parents) if missing; the directory itself 0700.

    Only a directory we create gets that mode: an existing one is the user's choice.
    """
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _prepare(conn: sqlite3.Connection, *, durable: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise DatabaseError(f"cannot switch the database to WAL mode (got {mode})")
    # FULL syncs the WAL on every commit: a committed message survives a power cut, which the
    # SMTP listener promises before it answers 250. NORMAL is enough for bulk imports, which can
    # simply be run again.
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")


def _connect(path: Path, **options: object) -> sqlite3.Connection:
    # mode=rw: never create the file, even if it vanished since it was checked.
    return sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True,
                           timeout=busy_timeout(), **options)


def _check_file(path: Path) -> None:
    """A missing or empty database file is an error (see the module's docstring)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DatabaseMissing(f"{path}: no such database; {CREATED_BY}") from None
    if size == 0:
        raise DatabaseError(
            f"{path} is an empty file (0 bytes), not a database: if it is a truncated copy, "
            "restore a backup; to start afresh, delete it and run 'mailthreads init'")


def _create(path: Path) -> None:
    """Make a complete new database at ``path`` (mode 0600, WAL) unless one appeared there."""
    import tempfile

    from sqlite_utils import Database

    from . import migrations

    make_data_directory(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)  # mkstemp makes it 0600; SQLite gives the -wal and -shm files the same mode
    temporary = Path(name)
    try:
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            migrations.apply(Database(conn, execute_plugins=False), SCHEMA_VERSION)
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temporary, path)
    finally:
        for leftover in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{leftover}").unlink(missing_ok=True)


def _user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _newer_schema(path: Path, version: int) -> DatabaseError:
    return DatabaseError(f"{path}: schema version {version} is newer than this mailthreads "
                         f"understands ({SCHEMA_VERSION}); upgrade mailthreads")


def _bring_schema_up_to_date(db: Database, path: Path) -> None:
    """Apply pending migrations in one immediate transaction.

    BEGIN IMMEDIATE waits (up to the busy timeout) while another process migrates, and the
    version is read again under the lock, so concurrent openers migrate once, in turn.
    """
    from . import migrations

    conn = db.conn
    if _user_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
        if version > SCHEMA_VERSION:
            raise _newer_schema(path, version)
        if version < SCHEMA_VERSION:
            if version == 0 and _holds_other_tables(conn):
                raise DatabaseError(
                    f"{path} is a SQLite database, but not a mailthreads one: check -d, "
                    "MAILTHREADS_DB or [database] path")
            migrations.apply(db, SCHEMA_VERSION)
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise


def _holds_other_tables(conn: sqlite3.Connection) -> bool:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return bool(names) and "_sqlite_migrations" not in names


def open_database(path: Path | str, *, durable: bool = True, create: bool = True) -> Database:
    """A writer's connection; with ``create``, a new database is made if there is none."""
    from sqlite_utils import Database

    path = Path(path)
    try:
        if create and not path.exists():
            _create(path)
    except OSError as error:
        raise DatabaseError(f"cannot create the database {path}: {error}") from None
    _check_file(path)
    conn = _connect(path, check_same_thread=False)
    try:
        _prepare(conn, durable=durable)
        db = Database(conn, execute_plugins=False)
        _bring_schema_up_to_date(db, path)
    except BaseException:
        conn.close()
        raise
    return db


def connect(path: Path | str) -> sqlite3.Connection:
    """The quick connection: plain sqlite3 (no sqlite-utils import), rows as ``sqlite3.Row``,
    for the commands people run all day: their reads, and their small writes (archive, mark
    read), each in a ``transaction``. Migrations, when due, go through ``open_database``.

    It never creates a database: a missing one raises ``DatabaseMissing``.
    """
    path = Path(path)
    _check_file(path)
    conn = _connect(path)
    version = _user_version(conn)
    if version != SCHEMA_VERSION:
        conn.close()
        if version > SCHEMA_VERSION:
            raise _newer_schema(path, version)
        open_database(path, create=False).conn.close()
        conn = _connect(path)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


# Transactions ---------------------------------------------------------------------------------
# Every write path of mailthreads starts its transactions here, so that a reader can see where
# a write lock is taken (``immediate``) and for how long.


def begin(conn: sqlite3.Connection, *, immediate: bool = False) -> None:
    """Start a transaction; ``immediate`` takes SQLite's write lock now (waiting up to the busy
    timeout), so that what is read in it cannot change before it commits."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """Roll back whatever is open; a connection in trouble says so at its next use instead."""
    with contextlib.suppress(sqlite3.Error):
        conn.rollback()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = False) -> Iterator[None]:
    """One transaction around the block: committed when it ends, rolled back if it raises.

    A caller's transaction still open (it wrote, so it holds the write lock already) is joined:
    the block's work commits, or rolls back, with it.
    """
    if not conn.in_transaction:
        begin(conn, immediate=immediate)
    try:
        yield
    except BaseException:
        rollback_quietly(conn)
        raise
    conn.commit()


def is_locked(error: BaseException) -> bool:
    """``error`` says that another connection holds a lock this one needs."""
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def wait_for_locks_myself(conn: sqlite3.Connection, *, wal_backstop_pages: int) -> None:
    """For the SMTP listener's committer, which asks for the write lock in short steps of its
    own (SQLite's busy handler sleeps up to 100 ms at a time): no busy wait, and a WAL
    checkpoint on its commits only when the WAL grew past ``wal_backstop_pages`` anyway."""
    conn.execute("PRAGMA busy_timeout = 0")
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(wal_backstop_pages)}")
