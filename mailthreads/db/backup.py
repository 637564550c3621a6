"""A consistent copy of a live database, with SQLite's online backup API.

The source connection opens one read transaction before the first step and keeps it to the
last: every step copies pages of that one snapshot, so writes that ``serve`` or ``poll``
commit meanwhile neither restart the backup nor wait for it (in WAL mode a reader never blocks
the writer; the WAL just grows until the backup ends). Steps of ``pages`` pages with a short
pause between them share the disk with the writer. The copy is written under a temporary name
(0600) beside the target, checked, and renamed into place, so a half copy never replaces a
good one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from . import connect

PAUSE_SECONDS = 0.005


class BackupError(Exception):
    """The backup could not be made; nothing was replaced."""


@dataclass(frozen=True)
class BackupResult:
    pages: int
    size: int  # bytes of the copy
    seconds: float


def _database_files(source: Path) -> set[Path]:
    base = source.resolve()
    return {base, *(base.with_name(base.name + suffix) for suffix in ("-wal", "-shm", "-journal"))}


def _is_sqlite(path: Path) -> bool:
    """An older backup (an SQLite file) may be replaced; a config or a document may not."""
    try:
        with path.open("rb") as file:
            return file.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def backup_database(source: Path, target: Path, *, pages: int = 1000,
                    pause: float = PAUSE_SECONDS) -> BackupResult:
    if source.exists() and target.resolve() in _database_files(source):
        raise BackupError(f"{target} is the database itself (or its -wal, -shm): choose "
                          "another file")
    if target.exists() and not _is_sqlite(target):
        raise BackupError(f"{target} exists and is not a database (an older backup is "
                          "replaced; anything else is not): choose another file")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: no directory {target.parent}")
    started = time.monotonic()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise BackupError(f"cannot write {temporary}: {error.strerror}") from None
    try:
        copied = _copy(source, temporary, pages, pause)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm"),
                         Path(f"{temporary}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise
    return BackupResult(copied, target.stat().st_size, time.monotonic() - started)


def _copy(source: Path, temporary: Path, pages: int, pause: float) -> int:
    conn = connect(source)
    copy = sqlite3.connect(temporary)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM sqlite_schema").fetchone()  # the snapshot starts
        total = 0

        def breathe(status: int, remaining: int, count: int) -> None:
            nonlocal total
            total = count
            if remaining:
                time.sleep(pause)

        conn.backup(copy, pages=pages, progress=breathe)
        conn.rollback()
        # One self-contained file: no -wal beside the copy.
        copy.execute("PRAGMA journal_mode = DELETE")
        verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"the copy does not check out ({verdict}): nothing replaced")
        return total
    finally:
        copy.close()
        conn.close()
