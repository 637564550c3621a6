"""Releasing a quarantined message: run it through the pipeline again."""

from __future__ import annotations

import json
import sqlite3

from . import store
from .config import Config
from .ingest import Envelope, Outcome, Pipeline


def release(conn: sqlite3.Connection, config: Config, entry_id: int,
            post_hint: str | None = None) -> Outcome:
    """Stored (or found stored already), the message leaves the quarantine; failing again, it
    keeps its entry, id and date, with the new reason. One transaction either way."""
    entry = store.get_quarantine(conn, entry_id)
    envelope = Envelope(entry["envelope_from"], tuple(json.loads(entry["envelope_to"] or "[]")))
    return Pipeline(conn, config).accept(
        entry["raw"], entry["source"] or "file", envelope, origin=f"quarantine {entry_id}",
        post_hint=post_hint or entry["post_hint"])
