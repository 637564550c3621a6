"""Deleting mail for good: messages, threads and posts, each leaving a content-free tombstone
so that no rescan or poll files them again, and (``--purge``) nothing of them left on disk."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._rows import NotFound, _dict
from .posts import post_by_slug
from .raw_deliveries import _forget_raw_if_unused
from .threads import get_thread, threads_of_post
from .tombstones import add_tombstone


def delete_messages(conn: sqlite3.Connection, message_ids: Sequence[int], reason: str, *,
                    purge: bool) -> int:
    """Delete these messages (rows of ``messages.id``) and leave a tombstone for each, so that
    no rescan or poll files them again. ``purge`` also removes their raw bytes (unless another
    message keeps them) and the deliveries that brought them; the full-text rows go with the
    messages (the FTS triggers), attachments always. Returns how many were deleted."""
    deleted = 0
    for message_id in message_ids:
        row = _dict(conn.execute("SELECT raw_sha256, identity_sha256 FROM messages WHERE id = ?",
                                 (message_id,)))
        if row is None:
            continue
        add_tombstone(conn, reason, raw_sha256=row["raw_sha256"],
                      identity_sha256=row["identity_sha256"])
        conn.execute("DELETE FROM attachments WHERE message_id = ?", (message_id,))
        conn.execute("DELETE FROM notifications WHERE message_id = ?", (message_id,))
        conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        if purge:
            _forget_raw_if_unused(conn, row["raw_sha256"])
        deleted += 1
    return deleted


def thread_message_ids(conn: sqlite3.Connection, thread_id: int) -> list[int]:
    return [row[0] for row in conn.execute(
        "SELECT id FROM messages WHERE thread_id = ? ORDER BY id", (thread_id,))]


def delete_thread(conn: sqlite3.Connection, thread_id: int, reason: str, *,
                  purge: bool) -> int:
    """Delete a thread, its messages and its unsent answers; returns the messages deleted.
    Sent answers' outbox rows go too: their copy in the thread is what is deleted."""
    get_thread(conn, thread_id)
    deleted = delete_messages(conn, thread_message_ids(conn, thread_id), reason, purge=purge)
    conn.execute("DELETE FROM outbox WHERE thread_id = ?", (thread_id,))
    conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
    return deleted


def delete_post(conn: sqlite3.Connection, slug: str, reason: str, *,
                purge: bool) -> tuple[int, int]:
    """Delete a post, its threads and every message filed under it (machine mail in no thread
    too); returns (threads, messages) deleted."""
    post = post_by_slug(conn, slug)
    if post is None:
        raise NotFound(f"no post with slug {slug!r}")
    threads = [row["id"] for row in threads_of_post(conn, post["id"])]
    messages = sum(delete_thread(conn, thread_id, reason, purge=purge) for thread_id in threads)
    loose = [row[0] for row in conn.execute(
        "SELECT id FROM messages WHERE post_id = ? ORDER BY id", (post["id"],))]
    messages += delete_messages(conn, loose, reason, purge=purge)
    conn.execute("DELETE FROM posts WHERE id = ?", (post["id"],))
    return len(threads), messages


def overwrite_deleted_content(conn: sqlite3.Connection) -> None:
    """From now on, this connection zeroes what it deletes instead of leaving it in free
    pages (for ``--purge``: nothing of the deleted mail may stay in the file)."""
    conn.execute("PRAGMA secure_delete = ON")


def wipe_deleted_content(conn: sqlite3.Connection) -> bool:
    """After a purge: merge the full-text index (its old segments still held the words; the
    merge frees them, zeroed), then copy the log into the database and empty it (older log
    frames held the pages as they were). Costs one index merge, not a rewrite of the file.
    False when another process's open read kept the log from being emptied."""
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    conn.commit()
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy
