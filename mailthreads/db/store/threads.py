"""Threads: one per post and correspondent, with their counters, state and token keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ...timestamps import now
from ._rows import NotFound, _dict, _dicts, _one


def thread_for(conn: sqlite3.Connection, post_id: int, correspondent_id: int,
               subject: str) -> int:
    existing = _one(conn, "SELECT id FROM threads WHERE post_id = ? AND correspondent_id = ?",
                    (post_id, correspondent_id))
    if existing is not None:
        return existing
    cursor = conn.execute(
        """INSERT INTO threads (post_id, correspondent_id, subject, state, unread,
                                message_count, created_at)
           VALUES (?, ?, ?, 'needs_reply', 0, 0, ?)""",
        (post_id, correspondent_id, subject, now()),
    )
    return int(cursor.lastrowid or 0)


def mark_possibly_same(conn: sqlite3.Connection, thread_id: int, correspondent_id: int) -> None:
    """Hold a thread for the author's decision: is its correspondent ``correspondent_id``?"""
    conn.execute("UPDATE threads SET possibly_same_as = ? WHERE id = ?",
                 (correspondent_id, thread_id))


def clear_possibly_same(conn: sqlite3.Connection, thread_id: int) -> None:
    conn.execute("UPDATE threads SET possibly_same_as = NULL WHERE id = ?", (thread_id,))


def existing_thread(conn: sqlite3.Connection, post_id: int, correspondent_id: int) -> int | None:
    return _one(conn, "SELECT id FROM threads WHERE post_id = ? AND correspondent_id = ?",
                (post_id, correspondent_id))


# threads.reply_token_sha256: the lookup key of the thread's reply token (tokens.token_key),
# NULL until someone with the secret computes it.

def thread_by_token_key(conn: sqlite3.Connection, post_id: int,
                        key: str) -> dict[str, Any] | None:
    return _dict(conn.execute(
        "SELECT id, correspondent_id FROM threads WHERE reply_token_sha256 = ? AND post_id = ?",
        (key, post_id)))


def unkeyed_threads_of_post(conn: sqlite3.Connection, post_id: int) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        "SELECT id, correspondent_id FROM threads "
        "WHERE reply_token_sha256 IS NULL AND post_id = ? ORDER BY id", (post_id,)))


def unkeyed_threads(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """Threads without a token key, with their post's slug (what the token signs)."""
    return _dicts(conn.execute(
        "SELECT threads.id, threads.correspondent_id, posts.slug FROM threads "
        "JOIN posts ON posts.id = threads.post_id "
        "WHERE threads.reply_token_sha256 IS NULL LIMIT ?", (limit,)))


def newest_keyed_thread(conn: sqlite3.Connection) -> dict[str, Any] | None:
    return _dict(conn.execute(
        "SELECT threads.id, threads.correspondent_id, posts.slug, threads.reply_token_sha256 "
        "FROM threads JOIN posts ON posts.id = threads.post_id "
        "WHERE threads.reply_token_sha256 IS NOT NULL ORDER BY threads.id DESC LIMIT 1"))


def set_thread_token_keys(conn: sqlite3.Connection, keys: Iterable[tuple[str, int]]) -> None:
    """``keys``: (token key, thread id) pairs."""
    conn.executemany("UPDATE threads SET reply_token_sha256 = ? WHERE id = ?", keys)


def clear_thread_token_keys(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE threads SET reply_token_sha256 = NULL "
                 "WHERE reply_token_sha256 IS NOT NULL")


def file_in_thread(conn: sqlite3.Connection, thread_id: int, *, kind: str, direction: str,
                   is_read: bool, date: str, received_at: str) -> None:
    """Update a thread's counters and state for one message just filed in it.

    Constant time, however long the thread: a thread of 10,000 replies must not make the
    10,001st slower. ``refresh_thread`` is the full recomputation this must agree with.
    """
    state, count, last_activity, last_reply_at = conn.execute(
        "SELECT state, message_count, last_activity, last_reply_at FROM threads WHERE id = ?",
        (thread_id,),
    ).fetchone()
    if kind != "reply":
        # Machine mail only dates a thread that has no discussion yet.
        if count == 0 and (last_activity is None or received_at > last_activity):
            conn.execute("UPDATE threads SET last_activity = ? WHERE id = ?",
                         (received_at, thread_id))
        return
    if state == "archived" and direction == "in":
        refresh_thread(conn, thread_id, new_reply=True)  # rare: recompute from scratch
        return
    written = min(date, received_at)
    if (last_reply_at is None or written >= last_reply_at) and state != "archived":
        state = "needs_reply" if direction == "in" else "answered"
    conn.execute(
        """UPDATE threads SET message_count = message_count + 1, unread = unread + ?,
                  last_activity = ?, last_reply_at = ?, state = ? WHERE id = ?""",
        (int(direction == "in" and not is_read),
         received_at if count == 0 else max(last_activity or received_at, received_at),
         written if last_reply_at is None else max(last_reply_at, written), state, thread_id),
    )


def refresh_thread(conn: sqlite3.Connection, thread_id: int, *, new_reply: bool) -> None:
    """Recompute a thread's counters and state from its messages.

    The state follows the last human message: from the correspondent it needs a reply, from
    the author it is answered. An archived thread stays archived until a new reply comes in.
    """
    stats = conn.execute(
        """SELECT COUNT(*) AS human,
                  COALESCE(SUM(direction = 'in' AND is_read = 0), 0) AS unread,
                  MAX(received_at) AS last_activity,
                  MAX(MIN(date, received_at)) AS last_reply_at
           FROM messages WHERE thread_id = ? AND kind = 'reply'""",
        (thread_id,),
    ).fetchone()
    # Activity is arrival, never the sender's clock (a Date in 2099 would stay on top forever).
    last_any = _one(conn, "SELECT MAX(received_at) FROM messages WHERE thread_id = ?",
                    (thread_id,))
    # "Last" by Date, but never later than arrival: a sender whose clock runs ahead (or who
    # forges a Date in 2099) must not keep a thread needing a reply after it was answered.
    last_direction = _one(
        conn,
        "SELECT direction FROM messages WHERE thread_id = ? AND kind = 'reply' "
        "ORDER BY MIN(date, received_at) DESC, id DESC LIMIT 1",
        (thread_id,),
    )
    state = _one(conn, "SELECT state FROM threads WHERE id = ?", (thread_id,))
    if state != "archived" or new_reply:
        state = "answered" if last_direction == "out" else "needs_reply"
    conn.execute(
        """UPDATE threads SET message_count = ?, unread = ?, last_activity = ?,
                  last_reply_at = ?, state = ?
           WHERE id = ?""",
        (stats[0], stats[1], stats[2] or last_any, stats[3], state, thread_id),
    )


def set_archived(conn: sqlite3.Connection, thread_id: int, archived: bool) -> None:
    thread = get_thread(conn, thread_id)
    if archived:
        conn.execute("UPDATE threads SET state = 'archived' WHERE id = ?", (thread_id,))
    elif thread.state == "archived":
        conn.execute("UPDATE threads SET state = 'needs_reply' WHERE id = ?", (thread_id,))
        refresh_thread(conn, thread_id, new_reply=True)


def mark_thread_read(conn: sqlite3.Connection, thread_id: int) -> None:
    conn.execute("UPDATE messages SET is_read = 1 WHERE thread_id = ? AND is_read = 0",
                 (thread_id,))
    conn.execute("UPDATE threads SET unread = 0 WHERE id = ?", (thread_id,))


class Thread(NamedTuple):
    """One discussion as ``show`` and ``reply`` read it (the columns of ``get_thread``)."""

    id: int
    post: str  # the post's slug
    post_title: str | None
    correspondent_name: str | None
    correspondent_address: str | None  # the first address known
    subject: str | None
    state: str  # needs_reply, answered, archived
    unread: int
    messages: int  # human messages, both directions
    last_activity: str | None
    possibly_same_as: int | None  # a correspondent this one may be (awaiting the author)
    possibly_same_as_name: str | None
    possibly_same_as_address: str | None
    consent: str | None  # None (never asked), asked, granted, revoked: may it be published?
    consent_at: str | None
    correspondent_id: int
    post_id: int


_THREAD_COLUMNS = """
    threads.id, posts.slug AS post, posts.title AS post_title,
    correspondents.name AS correspondent_name,
    (SELECT address FROM correspondent_addresses
      WHERE correspondent_id = correspondents.id ORDER BY created_at, address LIMIT 1)
      AS correspondent_address,
    threads.subject, threads.state, threads.unread, threads.message_count AS messages,
    threads.last_activity, threads.possibly_same_as,
    (SELECT name FROM correspondents WHERE id = threads.possibly_same_as)
      AS possibly_same_as_name,
    (SELECT address FROM correspondent_addresses
      WHERE correspondent_id = threads.possibly_same_as ORDER BY created_at, address LIMIT 1)
      AS possibly_same_as_address,
    threads.consent, threads.consent_at
"""


def _thread_filters(post: str | None, state: str | None, unread: bool,
                    include_archived: bool) -> tuple[str, list[Any]]:
    where = ["threads.message_count > 0"]
    params: list[Any] = []
    if post:
        where.append("posts.slug = ?")
        params.append(post)
    if state:
        where.append("threads.state = ?")
        params.append(state)
    elif not include_archived:
        where.append("threads.state != 'archived'")
    if unread:
        where.append("threads.unread > 0")
    return " AND ".join(where), params


def list_threads(
    conn: sqlite3.Connection,
    *,
    post: str | None = None,
    state: str | None = None,
    unread: bool = False,
    include_archived: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    where, params = _thread_filters(post, state, unread, include_archived)
    sql = f"""SELECT {_THREAD_COLUMNS}
              FROM threads JOIN posts ON posts.id = threads.post_id
                           JOIN correspondents ON correspondents.id = threads.correspondent_id
              WHERE {where}
              ORDER BY threads.last_activity DESC, threads.id DESC"""
    if limit:
        sql += f" LIMIT {int(limit)}"
    return _dicts(conn.execute(sql, params))


def count_threads(conn: sqlite3.Connection, *, post: str | None = None,
                  state: str | None = None, unread: bool = False,
                  include_archived: bool = False) -> int:
    where, params = _thread_filters(post, state, unread, include_archived)
    return _one(conn, f"SELECT COUNT(*) FROM threads JOIN posts ON posts.id = threads.post_id "
                f"WHERE {where}", params)


def threads_awaiting_identity(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Threads held for a "same person?" decision, oldest first."""
    return _dicts(conn.execute(
        f"""SELECT {_THREAD_COLUMNS}, threads.correspondent_id, threads.created_at
            FROM threads JOIN posts ON posts.id = threads.post_id
                         JOIN correspondents ON correspondents.id = threads.correspondent_id
            WHERE threads.possibly_same_as IS NOT NULL
            ORDER BY threads.created_at, threads.id"""
    ))


def get_thread(conn: sqlite3.Connection, thread_id: int) -> Thread:
    thread = _dict(conn.execute(
        f"""SELECT {_THREAD_COLUMNS}, threads.correspondent_id, threads.post_id
            FROM threads JOIN posts ON posts.id = threads.post_id
                         JOIN correspondents ON correspondents.id = threads.correspondent_id
            WHERE threads.id = ?""",
        (thread_id,),
    ))
    if thread is None:
        raise NotFound(f"no thread {thread_id}")
    return Thread(**thread)


def correspondent_threads(conn: sqlite3.Connection,
                          correspondent_id: int) -> list[dict[str, Any]]:
    """A correspondent's discussions with their posts, most recently active first."""
    return _dicts(conn.execute(
        """SELECT threads.id, threads.post_id, threads.subject, posts.slug, posts.title,
                  posts.url
           FROM threads JOIN posts ON posts.id = threads.post_id
           WHERE threads.correspondent_id = ? AND threads.message_count > 0
           ORDER BY threads.last_activity DESC, threads.id DESC""",
        (correspondent_id,),
    ))


def next_thread_to_answer(conn: sqlite3.Connection, *, newest: bool = False,
                          skip: Sequence[int] = ()) -> int | None:
    """The thread that has waited longest for an answer (``newest``: the latest to ask),
    leaving out ``skip``; None when nothing waits."""
    order = "DESC" if newest else "ASC"
    placeholders = ", ".join("?" * len(skip))
    excluded = f"AND id NOT IN ({placeholders})" if skip else ""
    return _one(conn, f"""SELECT id FROM threads
                          WHERE state = 'needs_reply' AND message_count > 0 {excluded}
                          ORDER BY last_reply_at {order}, id {order} LIMIT 1""", list(skip))


def mark_thread_unread(conn: sqlite3.Connection, thread_id: int) -> int:
    """Mark the thread's newest reply from the correspondent unread again; returns the number
    of unread replies (0: the thread has no reply from them to mark)."""
    get_thread(conn, thread_id)
    conn.execute(
        """UPDATE messages SET is_read = 0 WHERE id = (
               SELECT id FROM messages WHERE thread_id = ? AND direction = 'in'
                  AND kind = 'reply' ORDER BY received_at DESC, id DESC LIMIT 1)""",
        (thread_id,))
    unread = _one(conn, "SELECT COUNT(*) FROM messages WHERE thread_id = ? AND direction = 'in' "
                  "AND kind = 'reply' AND is_read = 0", (thread_id,))
    conn.execute("UPDATE threads SET unread = ? WHERE id = ?", (unread, thread_id))
    return int(unread)


def threads_of_post(conn: sqlite3.Connection, post_id: int) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        "SELECT id, correspondent_id FROM threads WHERE post_id = ? ORDER BY id", (post_id,)))
