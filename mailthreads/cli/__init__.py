"""The ``mailthreads`` command: a thin click layer over the modules that do the work.

Commands are imported only when they run (``LazyGroup``), and command modules import their
heavy dependencies inside the commands, so that the quick read commands (``threads``, ``show``)
start fast.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
from pathlib import Path

import click

from ..db import DatabaseError, busy_timeout
from ..lock import EX_TEMPFAIL
from .app import App

# command name -> "module:attribute" under mailthreads.cli
COMMANDS = {
    "init": "setup:init",
    "config": "setup:config_group",
    "posts": "posts:posts",
    "ingest": "ingest:ingest",
    "explain": "ingest:explain",
    "threads": "review:threads",
    "show": "review:show",
    "archive": "review:archive",
    "unarchive": "review:unarchive",
    "search": "review:search",
    "stats": "review:stats",
    "review": "review:review",
    "quarantine": "quarantine:quarantine",
    "serve": "serve:serve",
    "poll": "poll:poll",
    "reply": "answer:reply",
    "outbox": "answer:outbox",
    "correspondents": "correspondents:correspondents",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module_name, attribute = COMMANDS[name].split(":")
            module = importlib.import_module(f"{__name__}.{module_name}")
            self.add_command(getattr(module, attribute), name)
        return self.commands.get(name)

    def invoke(self, ctx: click.Context) -> object:
        # The one place where database failures become one-line messages, for every command.
        try:
            return super().invoke(ctx)
        except (sqlite3.Error, DatabaseError) as error:
            app = ctx.find_object(App)
            path = app.__dict__.get("database_path") if app is not None else None
            failure = database_failure(error, path)
            if failure is None:  # not one we can explain: a bug, keep its traceback
                raise
            raise failure from None


class TemporaryFailure(click.ClickException):
    """Worth trying again later: exit 75."""

    exit_code = EX_TEMPFAIL


# Primary SQLite result codes (the low byte of the extended codes Python reports).
_BUSY, _LOCKED = sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_ENVIRONMENT = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY,
                sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_PROTOCOL}


def database_failure(error: sqlite3.Error | DatabaseError,
                     path: Path | None) -> click.ClickException | None:
    """What went wrong with the database and what to do, in one line.

    A lock held too long is temporary (exit 75); a damaged file, a full disk or missing
    permissions need a person (exit 1). None for other SQLite errors (a bug, or a schema that is
    not ours).
    """
    if isinstance(error, DatabaseError):
        return click.ClickException(str(error))
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailthreads")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              envvar="MAILTHREADS_CONFIG", help="Config file (env MAILTHREADS_CONFIG). "
              "Default: the user config directory's mailthreads/config.toml, if it exists.")
@click.option("-d", "--database", "database_path", type=click.Path(dir_okay=False),
              envvar="MAILTHREADS_DB", help="SQLite database (env MAILTHREADS_DB). "
              "Default: [database] path, else the user data directory.")
@click.option("--color", "--colour", "colour", type=click.Choice(["auto", "always", "never"]),
              default="auto", show_default=True,
              help="Colours and bold on a terminal; NO_COLOR set means never, unless always")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, database_path: str | None,
        colour: str) -> None:
    """Private, long-form discussion by email.

    Replies to your posts' "Reply by Email" addresses come in by SMTP, IMAP or files; they are
    threaded by post and correspondent in SQLite, where you review and answer them.

    \b
    Start here:
        mailthreads init
        mailthreads posts add why-i-blog --title "Why I blog"
        mailthreads ingest ~/Mail/replies/
        mailthreads threads
        mailthreads show 1
    """
    ctx.obj = App(config_path, database_path)
    # Commands (sub-contexts) inherit this; click.echo strips styles when it is False, or
    # when it is None and the output is not a terminal.
    ctx.color = {"always": True, "never": False}.get(
        colour, False if os.environ.get("NO_COLOR") else None)
