"""A lock that dies with its process, so two pollers never work on one database at once.

``fcntl.flock`` on a file beside the database: the kernel drops the lock when the holder exits,
however it exits (SIGKILL, a power cut's reboot), so a killed poller never blocks the next one
and there is no stale PID file to clean up. The holder's PID is written into the file only to
make the "already running" message useful; it is never trusted for anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .db import make_data_directory
from .errors import Failure


class LockHeld(Failure):
    """Another process holds the lock; the text says which and what to do. Try again later."""

    temporary = True


def lock_path_for(database: Path, purpose: str) -> Path:
    return database.with_name(f"{database.name}.{purpose}.lock")


@contextlib.contextmanager
def hold(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the ``with`` block, or raise ``LockHeld`` at once.

    ``what`` names the work in the message ("mailthreads poll").
    """
    make_data_directory(path.parent)
    # O_RDWR without O_TRUNC: a process that fails to get the lock must not wipe the holder's PID.
    # 0600 like the database beside it: the PID is nobody else's business.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            raise LockHeld(f"another {what} is already running on this database"
                           + (f" (pid {holder})" if holder else "")
                           + f"; lock file {path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
