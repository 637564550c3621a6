"""The reply tree: messages' parents and the ghosts (ancestors never received)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...timestamps import now
from ._rows import _one
from .messages import message_id_known

MAX_ANCESTOR_WALK = 1000


def _parent_of(conn: sqlite3.Connection, message_id: str) -> str | None:
    parent = _one(conn, "SELECT parent_message_id FROM messages WHERE message_id = ? "
                  "ORDER BY id LIMIT 1", (message_id,))
    if parent is None:
        parent = _one(conn, "SELECT parent_message_id FROM ghosts WHERE message_id = ?",
                      (message_id,))
    return parent


def is_ancestor(conn: sqlite3.Connection, candidate: str, message_id: str) -> bool:
    """Whether ``candidate`` is ``message_id`` or one of its ancestors (bounded walk)."""
    current: str | None = message_id
    for _ in range(MAX_ANCESTOR_WALK):
        if current is None:
            return False
        if current == candidate:
            return True
        current = _parent_of(conn, current)
    return True  # a chain this long is as good as a loop: refuse to extend it


def record_ancestry(conn: sqlite3.Connection, message_id: str, chain: Sequence[str]) -> None:
    """Keep ancestors never received as ghosts, each linked to the one before it in the chain.

    The message itself stops being a ghost once it arrives, keeping the parent it had as a
    ghost if its own headers name none. Links that would close a loop are not made.
    """
    inherited = _one(conn, "SELECT parent_message_id FROM ghosts WHERE message_id = ?",
                     (message_id,))
    conn.execute("DELETE FROM ghosts WHERE message_id = ?", (message_id,))
    if inherited is not None and not is_ancestor(conn, message_id, inherited):
        # Other messages' References already placed this one under a parent.
        conn.execute("UPDATE messages SET parent_message_id = ? "
                     "WHERE message_id = ? AND parent_message_id IS NULL",
                     (inherited, message_id))
    previous: str | None = None
    for ancestor in chain:
        if message_id_known(conn, ancestor):
            # As in JWZ: a received message that names no parent of its own takes the one this
            # chain gives it, which joins conversations through ghosts they share.
            if previous and _parent_of(conn, ancestor) is None \
                    and not is_ancestor(conn, ancestor, previous):
                conn.execute("UPDATE messages SET parent_message_id = ? "
                             "WHERE message_id = ? AND parent_message_id IS NULL",
                             (previous, ancestor))
        else:
            ghost_parent = _one(conn, "SELECT parent_message_id FROM ghosts WHERE message_id = ?",
                                (ancestor,))
            exists = _one(conn, "SELECT 1 FROM ghosts WHERE message_id = ?", (ancestor,))
            if not exists:
                parent = previous if previous and not is_ancestor(conn, ancestor, previous) \
                    else None
                conn.execute(
                    "INSERT INTO ghosts (message_id, parent_message_id, first_seen) "
                    "VALUES (?, ?, ?)",
                    (ancestor, parent, now()),
                )
            elif ghost_parent is None and previous and not is_ancestor(conn, ancestor, previous):
                conn.execute("UPDATE ghosts SET parent_message_id = ? WHERE message_id = ?",
                             (previous, ancestor))
        previous = ancestor
