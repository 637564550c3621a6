"""Shared state of one command invocation: which config, which database, opened lazily."""

from __future__ import annotations

import sqlite3
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlite_utils import Database

    from ..config import Config


class App:
    def __init__(self, config_path: str | None, database_path: str | None):
        self._config_path = config_path
        self._database_path = database_path

    @cached_property
    def config_path(self) -> Path:
        from ..config import default_config_path

        return Path(self._config_path).expanduser() if self._config_path \
            else default_config_path()

    @cached_property
    def config(self) -> Config:
        from ..config import ConfigError, load

        try:
            return load(self.config_path, required=self._config_path is not None)
        except ConfigError as error:
            raise click.ClickException(
                f"{error.problems[0]}"
                + (f" (and {len(error.problems) - 1} more: run 'mailthreads config check')"
                   if len(error.problems) > 1 else "")
            ) from None

    @cached_property
    def database_path(self) -> Path:
        config = self.config  # a broken config is reported by every command, not ignored
        if self._database_path:
            return Path(self._database_path).expanduser()
        if config.database:
            return config.database
        from ..config import default_database_path

        return default_database_path()

    def database(self, *, durable: bool = True, create: bool = False) -> Database:
        """A writer's connection. Only commands that store what they are given (``init``,
        ``ingest``, ``poll``, ``posts add``...) pass ``create``; the others need an existing
        database. Errors are reported by the top-level handler (``cli.LazyGroup.invoke``)."""
        from ..db import open_database

        return open_database(self.database_path, durable=durable, create=create)

    def reader(self) -> sqlite3.Connection:
        """The quick connection for reading; never creates the database."""
        from ..db import connect

        return connect(self.database_path)

    def quick_writer(self) -> sqlite3.Connection:
        """The quick connection for the small writes of the everyday commands (archive, mark
        read or unread), which write inside ``db.transaction(conn, immediate=True)``; never
        creates the database."""
        from ..db import connect

        return connect(self.database_path)
