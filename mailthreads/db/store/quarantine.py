"""The quarantine: raw bytes that could not be filed, each with a reason."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...timestamps import now
from ._rows import _dicts, _found, _one
from .raw_deliveries import _forget_raw_if_unused


def add_quarantine(conn: sqlite3.Connection, sha256: str, delivery_id: int | None, reason: str,
                   source: str, subject: str | None, from_address: str | None, *,
                   reason_class: str | None = None, post_slug: str | None = None) -> int:
    """Quarantine raw bytes: one entry per message, whose id and date stay when it is
    quarantined again (released, or received once more); only the reason (and its class, and
    the post it is held for) is brought up to date.
    """
    existing = _one(conn, "SELECT MIN(id) FROM quarantine WHERE raw_sha256 = ?", (sha256,))
    if existing is not None:
        conn.execute(
            """UPDATE quarantine SET reason = ?, subject = COALESCE(?, subject),
                      from_address = COALESCE(?, from_address), reason_class = ?,
                      post_slug = ? WHERE id = ?""",
            (reason, subject, from_address, reason_class, post_slug, existing),
        )
        return int(existing)
    cursor = conn.execute(
        """INSERT INTO quarantine (raw_sha256, delivery_id, reason, source, subject,
                                   from_address, created_at, reason_class, post_slug)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (sha256, delivery_id, reason, source, subject, from_address, now(), reason_class,
         post_slug),
    )
    return int(cursor.lastrowid or 0)


def list_quarantine(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        """SELECT quarantine.id, quarantine.reason, quarantine.source, quarantine.subject,
                  quarantine.from_address, quarantine.created_at, raw_messages.size,
                  quarantine.raw_sha256, quarantine.reason_class, quarantine.post_slug
           FROM quarantine JOIN raw_messages ON raw_messages.sha256 = quarantine.raw_sha256
           ORDER BY quarantine.id"""
    ))


def held_for_known_posts(conn: sqlite3.Connection) -> list[int]:
    """Entries held for a post not known then ("unknown_post") whose post is known now (added
    by hand or from the feed, by its slug or an alias): ready to be filed."""
    return [row[0] for row in conn.execute(
        """SELECT quarantine.id FROM quarantine
            WHERE reason_class = 'unknown_post' AND post_slug IS NOT NULL
              AND EXISTS (SELECT 1 FROM posts WHERE posts.slug = quarantine.post_slug
                          UNION ALL
                          SELECT 1 FROM posts, json_each(posts.aliases)
                           WHERE json_each.value = quarantine.post_slug)
            ORDER BY quarantine.id""")]


def get_quarantine(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    return _found(conn.execute(
        """SELECT quarantine.*, raw_messages.raw, deliveries.envelope_from,
                  deliveries.envelope_to, deliveries.post_hint, deliveries.origin
           FROM quarantine JOIN raw_messages ON raw_messages.sha256 = quarantine.raw_sha256
           LEFT JOIN deliveries ON deliveries.id = quarantine.delivery_id
           WHERE quarantine.id = ?""",
        (entry_id,),
    ), f"no quarantine entry {entry_id}")


def resolve_quarantine(conn: sqlite3.Connection, sha256: str) -> None:
    """The message in these raw bytes is stored now: its entries leave the quarantine."""
    conn.execute("DELETE FROM quarantine WHERE raw_sha256 = ?", (sha256,))


def delete_quarantine(conn: sqlite3.Connection, entry_id: int) -> None:
    """Delete an entry and its raw bytes, unless a stored message still uses them."""
    entry = get_quarantine(conn, entry_id)
    conn.execute("DELETE FROM quarantine WHERE id = ?", (entry_id,))
    _forget_raw_if_unused(conn, entry["raw_sha256"])

