"""Releasing a quarantined message (run it through the pipeline again), or deleting it."""

from __future__ import annotations

import json
import sqlite3

from ..config import Config
from ..db import store
from . import Envelope, Outcome, Pipeline, Unparsed, analyse_or_unparsed

DELETE_REASON = "quarantine delete"


def release(conn: sqlite3.Connection, config: Config, entry_id: int,
            post_hint: str | None = None) -> Outcome:
    """Stored (or found stored already), the message leaves the quarantine; failing again, it
    keeps its entry, id and date, with the new reason. One transaction either way."""
    entry = store.get_quarantine(conn, entry_id)
    envelope = Envelope(entry["envelope_from"], tuple(json.loads(entry["envelope_to"] or "[]")))
    return Pipeline(conn, config).accept(
        entry["raw"], entry["source"] or "file", envelope, origin=f"quarantine {entry_id}",
        post_hint=post_hint or entry["post_hint"])


def delete(conn: sqlite3.Connection, config: Config, entry_id: int) -> None:
    """Delete the entry and its raw bytes, and leave a tombstone (hashes only) so that the
    message is not filed again when a poll reads its folder again or a copy arrives."""
    entry = store.get_quarantine(conn, entry_id)
    # The identity catches copies whose bytes differ (other Received lines); a message that
    # does not parse has none, and its raw SHA-256 alone must do.
    analysis = analyse_or_unparsed(entry["raw"], config, entry["envelope_from"])
    identity = None if isinstance(analysis, Unparsed) else analysis.identity_sha256
    store.delete_quarantine(conn, entry_id)
    store.add_tombstone(conn, DELETE_REASON, raw_sha256=entry["raw_sha256"],
                        identity_sha256=identity)
