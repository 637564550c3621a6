"""Errors and exit codes: one vocabulary for every command.

Three outcomes, as cron and systemd read them (sysexits.h):

- a user error, exit 1: something must be fixed first (a setting, a login, a damaged file).
  Commands raise ``click.ClickException``; code below the CLI raises a ``Failure``.
- a temporary failure, exit 75 (``EX_TEMPFAIL``): trying again later can help (a server that
  cannot be reached now, a lock another process holds). cron and systemd treat it as a
  failure, and systemd's ``Restart=`` retries it. ``TemporaryFailure`` in commands, a
  ``Failure`` with ``temporary`` below them.
- interrupted, exit 130 (``EX_INTERRUPTED``): Ctrl-C; what was stored so far is kept.

``top_level`` is the one place where expected failures raised anywhere below a command
(``Failure``, database errors) become a one-line message and their exit status; the command
group (``cli.LazyGroup.invoke``) calls it for every command.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import click

EX_TEMPFAIL = 75
EX_INTERRUPTED = 130


class Failure(Exception):
    """An expected failure below the CLI: one line for the user.

    ``temporary`` says whether trying again later can help (exit 75) or a person must fix
    something first (exit 1). Subclasses set it as a class attribute or per instance.
    """

    temporary: bool = False

    def __init__(self, text: str, *, temporary: bool | None = None):
        super().__init__(text)
        if temporary is not None:
            self.temporary = temporary


class TemporaryFailure(click.ClickException):
    """A command's "worth trying again later": exit 75."""

    exit_code = EX_TEMPFAIL


def exit_status(temporary: Iterable[bool]) -> int:
    """The exit status for a run with these failures (one flag per failure, True when
    temporary): 1 if any needs a person, else 75 if there were any, else 0."""
    flags = list(temporary)
    if not all(flags):
        return 1
    return EX_TEMPFAIL if flags else 0


def temporary_reply(code: int) -> bool:
    """SMTP's own verdict on a reply code: 4xx try again later, 5xx do not (RFC 5321 4.2.1)."""
    return 400 <= code < 500


def top_level(error: BaseException, database: Path | None) -> click.ClickException | None:
    """The one-line message and exit status for an expected failure, or None for a bug
    (whose traceback is kept). ``database`` names the file in database messages."""
    from .db import DatabaseError

    if isinstance(error, Failure):
        return TemporaryFailure(str(error)) if error.temporary else click.ClickException(str(error))
    if isinstance(error, DatabaseError):
        return click.ClickException(str(error))
    if isinstance(error, sqlite3.Error):
        return database_failure(error, database)
    return None


# Primary SQLite result codes (the low byte of the extended codes Python reports).
_BUSY, _LOCKED = sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_ENVIRONMENT = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY,
                sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_PROTOCOL}


def database_failure(error: sqlite3.Error, path: Path | None) -> click.ClickException | None:
    """What went wrong with the database and what to do, in one line.

    A lock held too long is temporary (exit 75); a damaged file, a full disk or missing
    permissions need a person (exit 1). None for other SQLite errors (a bug, or a schema that is
    not ours).
    """
    from .db import busy_timeout

    name = str(path) if path else "the database"
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_BUSY, _LOCKED):
        return TemporaryFailure(
            f"{name} is locked: another process has held its write lock for more than "
            f"{busy_timeout():g} s (a long import, or a sqlite3 shell with an open "
            "transaction?); try again later")
    if code in _DAMAGED:
        return click.ClickException(
            f"{name} is damaged ({error}): recover what it holds with "
            f"'sqlite3 {name} .recover | sqlite3 recovered.db' and use -d recovered.db, "
            "or restore a backup")
    if code in _ENVIRONMENT:
        return click.ClickException(f"{name}: {error} (check the disk space and the "
                                    "permissions of the file and its directory)")
    return None
