"""Correspondents and their addresses; merging two into one person."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ...timestamps import now
from ._rows import _dicts, _found, _one
from .threads import existing_thread, refresh_thread


def correspondent_by_address(conn: sqlite3.Connection, address: str) -> int | None:
    return _one(conn, "SELECT correspondent_id FROM correspondent_addresses WHERE address = ?",
                (address.lower(),))


def create_correspondent(conn: sqlite3.Connection, name: str, address: str) -> int:
    cursor = conn.execute("INSERT INTO correspondents (name, created_at) VALUES (?, ?)",
                          (name or None, now()))
    correspondent_id = int(cursor.lastrowid or 0)
    add_correspondent_address(conn, correspondent_id, address)
    return correspondent_id


def add_correspondent_address(conn: sqlite3.Connection, correspondent_id: int,
                              address: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO correspondent_addresses (address, correspondent_id, created_at) "
        "VALUES (?, ?, ?)",
        (address.lower(), correspondent_id, now()),
    )


def correspondent_for(conn: sqlite3.Connection, name: str, address: str) -> int:
    existing = correspondent_by_address(conn, address)
    if existing is not None:
        if name:
            conn.execute("UPDATE correspondents SET name = ? WHERE id = ? AND name IS NULL",
                         (name, existing))
        return existing
    return create_correspondent(conn, name, address)


def correspondent_addresses(conn: sqlite3.Connection, correspondent_id: int) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT address FROM correspondent_addresses WHERE correspondent_id = ? "
        "ORDER BY created_at, address", (correspondent_id,))]


def correspondent(conn: sqlite3.Connection, correspondent_id: int) -> dict[str, Any]:
    """``id``, ``name`` and ``address`` (the first one known) of one correspondent."""
    return _found(conn.execute(
        """SELECT id, name,
                  (SELECT address FROM correspondent_addresses WHERE correspondent_id = ?
                    ORDER BY created_at, address LIMIT 1) AS address
           FROM correspondents WHERE id = ?""",
        (correspondent_id, correspondent_id),
    ), f"no correspondent {correspondent_id}")


def list_correspondents(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every correspondent with their addresses (JSON array) and number of discussions."""
    rows = _dicts(conn.execute(
        """SELECT correspondents.id, correspondents.name,
                  (SELECT json_group_array(address) FROM
                     (SELECT address FROM correspondent_addresses
                       WHERE correspondent_id = correspondents.id
                       ORDER BY created_at, address)) AS addresses,
                  (SELECT COUNT(*) FROM threads WHERE correspondent_id = correspondents.id
                      AND message_count > 0) AS threads,
                  correspondents.created_at
           FROM correspondents WHERE merged_into IS NULL AND forgotten_at IS NULL
           ORDER BY correspondents.id"""
    ))
    for row in rows:
        row["addresses"] = json.loads(row["addresses"])
    return rows


def merge_correspondent(conn: sqlite3.Connection, absorbed_id: int, into_id: int) -> list[int]:
    """Make ``absorbed_id`` one person with ``into_id``, for good: its addresses become theirs,
    and each of its threads joins theirs about the same post (or becomes theirs when they have
    none). Returns the threads that took in messages, recomputed through ``refresh_thread``.
    """
    conn.execute("UPDATE correspondent_addresses SET correspondent_id = ? "
                 "WHERE correspondent_id = ?", (into_id, absorbed_id))
    conn.execute(
        """UPDATE correspondents SET name = (SELECT name FROM correspondents WHERE id = ?)
           WHERE id = ? AND name IS NULL""", (absorbed_id, into_id))
    joined = []
    for thread in _dicts(conn.execute(
            "SELECT id, post_id, state FROM threads WHERE correspondent_id = ? ORDER BY id",
            (absorbed_id,))):
        target = existing_thread(conn, thread["post_id"], into_id)
        if target is None:
            conn.execute("UPDATE threads SET correspondent_id = ? WHERE id = ?",
                         (into_id, thread["id"]))
            joined.append(thread["id"])
            continue
        for table in ("messages", "outbox"):
            conn.execute(f"UPDATE {table} SET thread_id = ? WHERE thread_id = ?",
                         (target, thread["id"]))
        conn.execute("DELETE FROM threads WHERE id = ?", (thread["id"],))
        # A reply still waiting for an answer brings an archived thread back, as on arrival.
        refresh_thread(conn, target, new_reply=thread["state"] == "needs_reply")
        joined.append(target)
    conn.execute("UPDATE threads SET possibly_same_as = ? WHERE possibly_same_as = ?",
                 (into_id, absorbed_id))
    conn.execute("UPDATE threads SET possibly_same_as = NULL "
                 "WHERE correspondent_id = possibly_same_as")
    # The row stays, pointing at the person: signed addresses handed out for it still name
    # their thread, and its id is never given to someone new (tokens sign ids).
    conn.execute("UPDATE correspondents SET merged_into = ? WHERE id = ? OR merged_into = ?",
                 (into_id, absorbed_id, absorbed_id))
    return joined


def merged_correspondents(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """(merged id, the correspondent it is now) for every merged correspondent."""
    return [(row[0], row[1]) for row in conn.execute(
        "SELECT id, merged_into FROM correspondents WHERE merged_into IS NOT NULL ORDER BY id")]



def is_trusted_address(conn: sqlite3.Connection, address: str) -> bool:
    """Whether mail from ``address`` comes from a trusted correspondent: the author has
    answered them (an ``out`` message in one of their threads), and no thread of theirs still
    waits for a "same person?" decision (an address nobody confirmed is no one's yet)."""
    return bool(_one(conn, """
        SELECT EXISTS (SELECT 1 FROM threads
                        WHERE threads.correspondent_id = person.correspondent_id
                          AND EXISTS (SELECT 1 FROM messages
                                       WHERE messages.thread_id = threads.id
                                         AND messages.direction = 'out'))
           AND NOT EXISTS (SELECT 1 FROM threads
                            WHERE threads.correspondent_id = person.correspondent_id
                              AND threads.possibly_same_as IS NOT NULL)
        FROM correspondent_addresses AS person WHERE person.address = ?""",
        (address.lower(),)))
