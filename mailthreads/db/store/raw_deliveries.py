"""Raw message bytes and deliveries: what came in, by which transport, and what became of it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from ...timestamps import now
from ._rows import _one


def save_raw(conn: sqlite3.Connection, sha256: str, raw: bytes) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO raw_messages (sha256, size, raw, first_seen) VALUES (?, ?, ?, ?)",
        (sha256, len(raw), raw, now()),
    )


def raw_message(conn: sqlite3.Connection, sha256: str) -> bytes | None:
    return _one(conn, "SELECT raw FROM raw_messages WHERE sha256 = ?", (sha256,))


def add_delivery(
    conn: sqlite3.Connection,
    sha256: str,
    source: str,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    origin: str | None = None,
    post_hint: str | None = None,
) -> int:
    cursor = conn.execute(
        """INSERT INTO deliveries (raw_sha256, source, envelope_from, envelope_to, origin,
                                   post_hint, received_at, status)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')""",
        (sha256, source, envelope_from, json.dumps(list(envelope_to)), origin, post_hint, now()),
    )
    return int(cursor.lastrowid or 0)


def finish_delivery(
    conn: sqlite3.Connection, delivery_id: int, status: str, message_id: str | None
) -> None:
    conn.execute(
        "UPDATE deliveries SET status = ?, message_id = ? WHERE id = ?",
        (status, message_id, delivery_id),
    )


class PendingDelivery(NamedTuple):
    id: int
    raw_sha256: str
    source: str
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    origin: str | None
    post_hint: str | None


def pending_deliveries(conn: sqlite3.Connection, limit: int = 500) -> list[PendingDelivery]:
    rows = conn.execute(
        """SELECT id, raw_sha256, source, envelope_from, envelope_to, origin, post_hint
           FROM deliveries WHERE status = 'pending' ORDER BY id LIMIT ?""",
        (limit,),
    ).fetchall()
    return [
        PendingDelivery(row[0], row[1], row[2], row[3], tuple(json.loads(row[4] or "[]")),
                        row[5], row[6])
        for row in rows
    ]


def last_delivery_id(conn: sqlite3.Connection) -> int:
    """The newest committed delivery: deliveries after it were made by a later run."""
    return _one(conn, "SELECT MAX(id) FROM deliveries") or 0


def delivery_counts_since(conn: sqlite3.Connection, after_id: int) -> dict[str, int]:
    """{status: count} of the deliveries after ``after_id``: what one run has committed. Mail
    quarantined on purpose counts as "held" (for the author's review) or "blocked", as in
    the summary of a run that ends (``Outcome.tally``)."""
    rows = conn.execute(
        """SELECT CASE WHEN deliveries.status != 'quarantined'
                         OR quarantine.reason_class IS NULL THEN deliveries.status
                       WHEN quarantine.reason_class = 'blocked' THEN 'blocked'
                       ELSE 'held' END, COUNT(*)
           FROM deliveries
           LEFT JOIN quarantine ON quarantine.raw_sha256 = deliveries.raw_sha256
           WHERE deliveries.id > ? GROUP BY 1""", (after_id,)).fetchall()
    return {status: count for status, count in rows}


def delivery_status(conn: sqlite3.Connection, delivery_id: int) -> str | None:
    """pending, stored, duplicate, quarantined, ignored; None for no such delivery."""
    return _one(conn, "SELECT status FROM deliveries WHERE id = ?", (delivery_id,))


def count_pending_deliveries(conn: sqlite3.Connection) -> int:
    return _one(conn, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'") or 0


def imap_uids_delivered(conn: sqlite3.Connection, origin_prefix: str) -> set[int]:
    """UIDs of one folder (``account/folder/uidvalidity``) that were filed from it already."""
    prefix = origin_prefix + "/"
    rows = conn.execute("SELECT origin FROM deliveries WHERE source = 'imap' "
                        "AND substr(origin, 1, ?) = ?", (len(prefix), prefix))
    return {int(rest) for (origin,) in rows if (rest := origin[len(prefix):]).isdigit()}


def drop_delivery(conn: sqlite3.Connection, delivery_id: int, sha256: str) -> None:
    """Forget a delivery that will not be filed, and its raw bytes unless used elsewhere."""
    conn.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
    _forget_raw_if_unused(conn, sha256)


def _forget_raw_if_unused(conn: sqlite3.Connection, sha256: str) -> None:
    in_use = _one(conn, "SELECT 1 FROM messages WHERE raw_sha256 = ? UNION ALL "
                  "SELECT 1 FROM quarantine WHERE raw_sha256 = ? UNION ALL "
                  "SELECT 1 FROM spam WHERE raw_sha256 = ? UNION ALL "
                  "SELECT 1 FROM deliveries WHERE raw_sha256 = ? AND status = 'pending' "
                  "LIMIT 1", (sha256, sha256, sha256, sha256))
    if not in_use:
        conn.execute("DELETE FROM deliveries WHERE raw_sha256 = ?", (sha256,))
        conn.execute("DELETE FROM raw_messages WHERE sha256 = ?", (sha256,))

