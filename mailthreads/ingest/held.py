"""Mail held for a post not known yet, filed once the post is (``posts add``, ``posts sync``)."""

from __future__ import annotations

import sqlite3

from ..config import Config
from ..db import store
from . import Outcome
from .quarantine import release


def file_held_for_known_posts(conn: sqlite3.Connection, config: Config) -> list[Outcome]:
    """Run every held "unknown_post" message whose post is known now through the pipeline
    again; each is filed (or, if something else stops it now, stays in review)."""
    return [release(conn, config, entry_id) for entry_id in store.held_for_known_posts(conn)]
