"""The ``mailthreads`` command: a thin click layer over the modules that do the work.

Commands are imported only when they run (``LazyGroup``), and command modules import their
heavy dependencies inside the commands, so that the quick read commands (``threads``, ``show``)
start fast.
"""

from __future__ import annotations

import importlib
import os
import sqlite3

import click

from ..db import DatabaseError
from ..errors import Failure, top_level
from .app import App

# command name -> "module:attribute" under mailthreads.cli
COMMANDS = {
    "init": "setup:init",
    "config": "setup:config_group",
    "posts": "posts:posts",
    "ingest": "ingest:ingest",
    "explain": "ingest:explain",
    "threads": "triage:threads",
    "next": "triage:next_thread",
    "mark-unread": "triage:mark_unread",
    "attachments": "triage:attachments",
    "show": "review:show",
    "archive": "review:archive",
    "unarchive": "review:unarchive",
    "search": "review:search",
    "stats": "review:stats",
    "review": "review:review",
    "quarantine": "quarantine:quarantine",
    "spam": "spam:spam",
    "rescan": "spam:rescan",
    "serve": "serve:serve",
    "poll": "poll:poll",
    "reply": "answer:reply",
    "outbox": "answer:outbox",
    "correspondents": "correspondents:correspondents",
    "export": "publish:export",
    "consent": "publish:consent",
    "backup": "publish:backup",
    "forget": "privacy:forget",
    "digest": "privacy:digest",
    "block": "blocks:block",
    "unblock": "blocks:unblock",
    "blocks": "blocks:blocks",
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
        # The one top-level handler: expected failures become one-line messages and their
        # exit status (errors.top_level), for every command.
        try:
            return super().invoke(ctx)
        except (sqlite3.Error, DatabaseError, Failure) as error:
            app = ctx.find_object(App)
            path = app.__dict__.get("database_path") if app is not None else None
            failure = top_level(error, path)
            if failure is None:  # not one we can explain: a bug, keep its traceback
                raise
            raise failure from None


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
