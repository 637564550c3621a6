"""Every query and every write. The only module with SQL in it.

Functions take a ``sqlite3.Connection`` (``Database.conn`` for writers, ``db.connect_read_only``
for the quick read path). Writers do not commit: the caller owns the transaction, so that one
message's rows land together, or a batch of messages shares one commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..timestamps import now

MAX_ANCESTOR_WALK = 1000
THREAD_STATES = ("needs_reply", "answered", "archived")


class NotFound(Exception):
    """A thread, post or quarantine entry named by the user does not exist."""


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _dict(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    rows = _dicts(cursor)
    return rows[0] if rows else None


# Raw messages and deliveries ----------------------------------------------------------------


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
    """{status: count} of the deliveries after ``after_id``: what one run has committed."""
    rows = conn.execute("SELECT status, COUNT(*) FROM deliveries WHERE id > ? GROUP BY status",
                        (after_id,)).fetchall()
    return {status: count for status, count in rows}


# Posts --------------------------------------------------------------------------------------


def post_by_slug(conn: sqlite3.Connection, slug: str) -> dict[str, Any] | None:
    post = _dict(conn.execute("SELECT * FROM posts WHERE slug = ?", (slug,)))
    if post:
        return post
    return _dict(conn.execute(
        "SELECT posts.* FROM posts, json_each(posts.aliases) WHERE json_each.value = ?", (slug,)
    ))


def post_by_id(conn: sqlite3.Connection, post_id: int) -> dict[str, Any] | None:
    return _dict(conn.execute("SELECT * FROM posts WHERE id = ?", (post_id,)))


def create_post(
    conn: sqlite3.Connection, slug: str, title: str | None = None, url: str | None = None
) -> int:
    # Another process may have created it since the caller looked (a plan made before this
    # transaction took the write lock): then the existing post is the one meant.
    conn.execute(
        "INSERT INTO posts (slug, title, url, closed, aliases, created_at) "
        "VALUES (?, ?, ?, 0, '[]', ?) ON CONFLICT (slug) DO NOTHING",
        (slug, title, url, now()),
    )
    return int(_one(conn, "SELECT id FROM posts WHERE slug = ?", (slug,)))


def upsert_post(
    conn: sqlite3.Connection, slug: str, title: str | None, url: str | None
) -> str:
    """Add a post or fill in its title and url; says which: added, updated, unchanged."""
    existing = post_by_slug(conn, slug)
    if existing is None:
        create_post(conn, slug, title, url)
        return "added"
    new_title = title or existing["title"]
    new_url = url or existing["url"]
    if (new_title, new_url) == (existing["title"], existing["url"]):
        return "unchanged"
    conn.execute("UPDATE posts SET title = ?, url = ? WHERE id = ?",
                 (new_title, new_url, existing["id"]))
    return "updated"


def add_post_alias(conn: sqlite3.Connection, post_id: int, alias: str) -> None:
    """Let mail to ``alias`` reach the post too (its own slug stays)."""
    conn.execute(
        "UPDATE posts SET aliases = json_insert(COALESCE(aliases, '[]'), '$[#]', ?) "
        "WHERE id = ? AND NOT EXISTS (SELECT 1 FROM json_each(posts.aliases) WHERE value = ?)",
        (alias, post_id, alias),
    )


def set_post_closed(conn: sqlite3.Connection, slug: str, closed: bool) -> None:
    post = post_by_slug(conn, slug)
    if post is None:
        raise NotFound(f"no post with slug {slug!r}")
    conn.execute("UPDATE posts SET closed = ? WHERE id = ?", (int(closed), post["id"]))


def list_posts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        """SELECT posts.id, posts.slug, posts.title, posts.url, posts.closed, posts.created_at,
                  COUNT(threads.id) AS threads,
                  COALESCE(SUM(threads.state = 'needs_reply'), 0) AS needs_reply,
                  MAX(threads.last_activity) AS last_activity
           FROM posts LEFT JOIN threads ON threads.post_id = posts.id
                                       AND threads.message_count > 0
           GROUP BY posts.id ORDER BY posts.created_at DESC, posts.id DESC"""
    ))


# Correspondents -----------------------------------------------------------------------------


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
    found = _dict(conn.execute(
        """SELECT id, name,
                  (SELECT address FROM correspondent_addresses WHERE correspondent_id = ?
                    ORDER BY created_at, address LIMIT 1) AS address
           FROM correspondents WHERE id = ?""",
        (correspondent_id, correspondent_id),
    ))
    if found is None:
        raise NotFound(f"no correspondent {correspondent_id}")
    return found


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
           FROM correspondents WHERE merged_into IS NULL ORDER BY correspondents.id"""
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


# Threads ------------------------------------------------------------------------------------


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


def threads_of_post(conn: sqlite3.Connection, post_id: int) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        "SELECT id, correspondent_id FROM threads WHERE post_id = ? ORDER BY id", (post_id,)))


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
    elif thread["state"] == "archived":
        conn.execute("UPDATE threads SET state = 'needs_reply' WHERE id = ?", (thread_id,))
        refresh_thread(conn, thread_id, new_reply=True)


def mark_thread_read(conn: sqlite3.Connection, thread_id: int) -> None:
    conn.execute("UPDATE messages SET is_read = 1 WHERE thread_id = ? AND is_read = 0",
                 (thread_id,))
    conn.execute("UPDATE threads SET unread = 0 WHERE id = ?", (thread_id,))


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
      AS possibly_same_as_address
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


def get_thread(conn: sqlite3.Connection, thread_id: int) -> dict[str, Any]:
    thread = _dict(conn.execute(
        f"""SELECT {_THREAD_COLUMNS}, threads.correspondent_id, threads.post_id
            FROM threads JOIN posts ON posts.id = threads.post_id
                         JOIN correspondents ON correspondents.id = threads.correspondent_id
            WHERE threads.id = ?""",
        (thread_id,),
    ))
    if thread is None:
        raise NotFound(f"no thread {thread_id}")
    return thread


MESSAGE_COLUMNS = (
    "id", "message_id", "parent_message_id", "direction", "kind", "from_name", "from_address",
    "to_addresses", "subject", "date", "visible_text", "quoted_text", "signature", "source",
    "is_read", "message_id_reused", "kind_reasons",
)


def thread_messages(conn: sqlite3.Connection, thread_id: int) -> list[dict[str, Any]]:
    rows = _dicts(conn.execute(
        f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages WHERE thread_id = ? "
        "ORDER BY date, id",
        (thread_id,),
    ))
    for row in rows:
        row["to_addresses"] = json.loads(row["to_addresses"] or "[]")
        row["kind_reasons"] = json.loads(row["kind_reasons"] or "[]")
    return rows


def search_messages(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        """SELECT messages.id, messages.thread_id AS thread, posts.slug AS post,
                  messages.from_name, messages.from_address, messages.subject, messages.date,
                  snippet(messages_fts, 1, '[', ']', '…', 12) AS snippet
           FROM messages_fts
           JOIN messages ON messages.id = messages_fts.rowid
           LEFT JOIN posts ON posts.id = messages.post_id
           WHERE messages_fts MATCH ?
           ORDER BY messages_fts.rank LIMIT ?""",
        (query, limit),
    ))


# Messages -----------------------------------------------------------------------------------


def message_by_identity(conn: sqlite3.Connection, identity_sha256: str) -> dict[str, Any] | None:
    return _dict(conn.execute(
        "SELECT id, message_id, thread_id, post_id, kind FROM messages WHERE identity_sha256 = ?",
        (identity_sha256,),
    ))


def message_id_known(conn: sqlite3.Connection, message_id: str) -> bool:
    return _one(conn, "SELECT 1 FROM messages WHERE message_id = ? LIMIT 1", (message_id,)) == 1


def first_known_message(conn: sqlite3.Connection,
                        message_ids: Iterable[str]) -> dict[str, Any] | None:
    """The first of ``message_ids`` (in the order given) that names a stored message."""
    for message_id in message_ids:
        row = _dict(conn.execute(
            """SELECT id, message_id, thread_id, post_id, direction, kind, from_address
               FROM messages WHERE message_id = ? ORDER BY id LIMIT 1""",
            (message_id,),
        ))
        if row:
            return row
    return None


class NewMessage(NamedTuple):
    message_id: str
    synthetic_message_id: bool
    message_id_reused: bool
    thread_id: int | None
    post_id: int | None
    parent_message_id: str | None
    direction: str
    kind: str
    kind_reasons: Sequence[str]
    from_name: str
    from_address: str
    to_addresses: Sequence[str]
    cc_addresses: Sequence[str]
    subject: str
    date: str
    in_reply_to: str | None
    references: Sequence[str]
    visible_text: str
    quoted_text: str
    signature: str
    body_text: str
    body_html: str
    source: str
    raw_sha256: str
    identity_sha256: str
    is_read: bool


def insert_message(conn: sqlite3.Connection, message: NewMessage, received_at: str) -> int:
    cursor = conn.execute(
        """INSERT INTO messages (
               message_id, synthetic_message_id, message_id_reused, thread_id, post_id,
               parent_message_id, direction, kind, kind_reasons, from_name, from_address,
               to_addresses, cc_addresses, subject, date, in_reply_to, "references",
               visible_text, quoted_text, signature, body_text, body_html, source, raw_sha256,
               identity_sha256, is_read, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   ?)""",
        (
            message.message_id, int(message.synthetic_message_id),
            int(message.message_id_reused), message.thread_id, message.post_id,
            message.parent_message_id, message.direction, message.kind,
            json.dumps(list(message.kind_reasons)), message.from_name, message.from_address,
            json.dumps(list(message.to_addresses)), json.dumps(list(message.cc_addresses)),
            message.subject, message.date, message.in_reply_to,
            json.dumps(list(message.references)), message.visible_text, message.quoted_text,
            message.signature, message.body_text, message.body_html, message.source,
            message.raw_sha256, message.identity_sha256, int(message.is_read), received_at,
        ),
    )
    return int(cursor.lastrowid or 0)


def add_attachment(conn: sqlite3.Connection, message_row_id: int, filename: str,
                   content_type: str, content: bytes, sha256: str) -> None:
    conn.execute(
        """INSERT INTO attachments (message_id, filename, content_type, size, sha256, content)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (message_row_id, filename, content_type, len(content), sha256, content),
    )


# Ghosts and the reply tree ------------------------------------------------------------------


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


def nearest_known_ancestor(conn: sqlite3.Connection, message_id: str) -> str | None:
    """The parent a reader sees: the nearest ancestor that was received, skipping ghosts."""
    seen = {message_id}
    current = _parent_of(conn, message_id)
    while current is not None and current not in seen and len(seen) < MAX_ANCESTOR_WALK:
        if message_id_known(conn, current):
            return current
        seen.add(current)
        current = _parent_of(conn, current)
    return None


def conversation_root(conn: sqlite3.Connection, message_id: str) -> str:
    """The top of a message's reply tree, ghosts included: messages sharing it belong to one
    conversation even when the message that joins them never arrived."""
    seen = {message_id}
    current = message_id
    while (parent := _parent_of(conn, current)) is not None and parent not in seen \
            and len(seen) < MAX_ANCESTOR_WALK:
        seen.add(parent)
        current = parent
    return current


# Quarantine ---------------------------------------------------------------------------------


def add_quarantine(conn: sqlite3.Connection, sha256: str, delivery_id: int | None, reason: str,
                   source: str, subject: str | None, from_address: str | None) -> int:
    """Quarantine raw bytes: one entry per message, whose id and date stay when it is
    quarantined again (released, or received once more); only the reason is brought up to date.
    """
    existing = _one(conn, "SELECT MIN(id) FROM quarantine WHERE raw_sha256 = ?", (sha256,))
    if existing is not None:
        conn.execute(
            """UPDATE quarantine SET reason = ?, subject = COALESCE(?, subject),
                      from_address = COALESCE(?, from_address) WHERE id = ?""",
            (reason, subject, from_address, existing),
        )
        return int(existing)
    cursor = conn.execute(
        """INSERT INTO quarantine (raw_sha256, delivery_id, reason, source, subject,
                                   from_address, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (sha256, delivery_id, reason, source, subject, from_address, now()),
    )
    return int(cursor.lastrowid or 0)


def quarantined_with_reason(conn: sqlite3.Connection, sha256: str, reason: str) -> bool:
    return _one(conn, "SELECT 1 FROM quarantine WHERE raw_sha256 = ? AND reason = ?",
                (sha256, reason)) == 1


def list_quarantine(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        """SELECT quarantine.id, quarantine.reason, quarantine.source, quarantine.subject,
                  quarantine.from_address, quarantine.created_at, raw_messages.size,
                  quarantine.raw_sha256
           FROM quarantine JOIN raw_messages ON raw_messages.sha256 = quarantine.raw_sha256
           ORDER BY quarantine.id"""
    ))


def get_quarantine(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    entry = _dict(conn.execute(
        """SELECT quarantine.*, raw_messages.raw, deliveries.envelope_from,
                  deliveries.envelope_to, deliveries.post_hint, deliveries.origin
           FROM quarantine JOIN raw_messages ON raw_messages.sha256 = quarantine.raw_sha256
           LEFT JOIN deliveries ON deliveries.id = quarantine.delivery_id
           WHERE quarantine.id = ?""",
        (entry_id,),
    ))
    if entry is None:
        raise NotFound(f"no quarantine entry {entry_id}")
    return entry


def resolve_quarantine(conn: sqlite3.Connection, sha256: str) -> None:
    """The message in these raw bytes is stored now: its entries leave the quarantine."""
    conn.execute("DELETE FROM quarantine WHERE raw_sha256 = ?", (sha256,))


def remove_quarantine_entry(conn: sqlite3.Connection, entry_id: int) -> None:
    """Take an entry out of the quarantine, keeping the raw bytes."""
    conn.execute("DELETE FROM quarantine WHERE id = ?", (entry_id,))


def delete_quarantine(conn: sqlite3.Connection, entry_id: int) -> None:
    """Delete an entry and its raw bytes, unless a stored message still uses them."""
    entry = get_quarantine(conn, entry_id)
    remove_quarantine_entry(conn, entry_id)
    _forget_raw_if_unused(conn, entry["raw_sha256"])


def drop_delivery(conn: sqlite3.Connection, delivery_id: int, sha256: str) -> None:
    """Forget a delivery that will not be filed, and its raw bytes unless used elsewhere."""
    conn.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
    _forget_raw_if_unused(conn, sha256)


def _forget_raw_if_unused(conn: sqlite3.Connection, sha256: str) -> None:
    in_use = _one(conn, "SELECT 1 FROM messages WHERE raw_sha256 = ? UNION ALL "
                  "SELECT 1 FROM quarantine WHERE raw_sha256 = ? UNION ALL "
                  "SELECT 1 FROM deliveries WHERE raw_sha256 = ? AND status = 'pending' "
                  "LIMIT 1", (sha256, sha256, sha256))
    if not in_use:
        conn.execute("DELETE FROM deliveries WHERE raw_sha256 = ?", (sha256,))
        conn.execute("DELETE FROM raw_messages WHERE sha256 = ?", (sha256,))


# Tombstones ---------------------------------------------------------------------------------


def add_tombstone(conn: sqlite3.Connection, reason: str, *, raw_sha256: str | None = None,
                  identity_sha256: str | None = None) -> None:
    """Remember that the author deleted a message, by its hashes only (no content), so that
    no transport files it again. Every command that deletes or forgets mail calls this."""
    if raw_sha256 is None and identity_sha256 is None:
        raise ValueError("a tombstone needs the raw or the identity SHA-256")
    conn.execute(
        "INSERT INTO tombstones (raw_sha256, identity_sha256, reason, created_at) "
        "VALUES (?, ?, ?, ?)",
        (raw_sha256, identity_sha256, reason, now()),
    )


def tombstone_for(conn: sqlite3.Connection, raw_sha256: str,
                  identity_sha256: str | None) -> dict[str, Any] | None:
    """The tombstone of a message with these bytes or this identity, if it was deleted."""
    return _dict(conn.execute(
        "SELECT reason, created_at FROM tombstones WHERE raw_sha256 = ? "
        "OR identity_sha256 = ? ORDER BY id LIMIT 1",
        (raw_sha256, identity_sha256),
    ))


# IMAP checkpoints ---------------------------------------------------------------------------


class Checkpoint(NamedTuple):
    uidvalidity: int
    last_uid: int
    routing_settings: str | None  # JSON; None when saved by a mailthreads that kept none


def imap_checkpoint(conn: sqlite3.Connection, account: str, folder: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT uidvalidity, last_uid, routing_settings FROM imap_checkpoints "
        "WHERE account = ? AND folder = ?",
        (account, folder),
    ).fetchone()
    return Checkpoint(*row) if row else None


def save_imap_checkpoint(conn: sqlite3.Connection, account: str, folder: str,
                         uidvalidity: int, last_uid: int, routing_settings: str | None) -> None:
    conn.execute(
        """INSERT INTO imap_checkpoints (account, folder, uidvalidity, last_uid,
                                         routing_settings, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (account, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               last_uid = excluded.last_uid, routing_settings = excluded.routing_settings,
               updated_at = excluded.updated_at""",
        (account, folder, uidvalidity, last_uid, routing_settings, now()),
    )


def imap_uids_delivered(conn: sqlite3.Connection, origin_prefix: str) -> set[int]:
    """UIDs of one folder (``account/folder/uidvalidity``) that were filed from it already."""
    prefix = origin_prefix + "/"
    rows = conn.execute("SELECT origin FROM deliveries WHERE source = 'imap' "
                        "AND substr(origin, 1, ?) = ?", (len(prefix), prefix))
    return {int(rest) for (origin,) in rows if (rest := origin[len(prefix):]).isdigit()}


# Statistics ---------------------------------------------------------------------------------


def stats(conn: sqlite3.Connection) -> dict[str, Any]:
    counts = {
        "posts": _one(conn, "SELECT COUNT(*) FROM posts"),
        "correspondents": _one(conn, "SELECT COUNT(*) FROM correspondents "
                               "WHERE merged_into IS NULL"),
        "threads": _one(conn, "SELECT COUNT(*) FROM threads WHERE message_count > 0"),
        "messages": _one(conn, "SELECT COUNT(*) FROM messages"),
        "raw_messages": _one(conn, "SELECT COUNT(*) FROM raw_messages"),
        "raw_bytes": _one(conn, "SELECT COALESCE(SUM(size), 0) FROM raw_messages"),
        "quarantined": _one(conn, "SELECT COUNT(*) FROM quarantine"),
        "ghosts": _one(conn, "SELECT COUNT(*) FROM ghosts"),
        "outbox_pending": _one(conn, "SELECT COUNT(*) FROM outbox WHERE status != 'sent'"),
    }
    counts["threads_by_state"] = dict(conn.execute(
        "SELECT state, COUNT(*) FROM threads WHERE message_count > 0 GROUP BY state").fetchall())
    counts["messages_by_kind"] = dict(conn.execute(
        "SELECT kind, COUNT(*) FROM messages GROUP BY kind").fetchall())
    counts["messages_by_direction"] = dict(conn.execute(
        "SELECT direction, COUNT(*) FROM messages GROUP BY direction").fetchall())
    return counts


# IMAP poller --------------------------------------------------------------------------------


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


def posts_for_mentions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every post's id, slug, title and url: what an author's message may name a post by."""
    return _dicts(conn.execute("SELECT id, slug, title, url FROM posts ORDER BY id"))


def known_message_ids(conn: sqlite3.Connection, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` name stored messages (for mail the parser could not read)."""
    return {message_id for message_id in message_ids if message_id_known(conn, message_id)}


# Outbox and answering -----------------------------------------------------------------------

# outbox.status: pending (never tried), sending (an attempt is running, or the connection broke
# while the relay had the whole message: maybe sent, so never retried without --force), sent,
# failed (the relay did not take it: `outbox send` retries it).
# outbox.saved_to_sent: 1 copied to the IMAP Sent folder, 0 not yet (retried), NULL not wanted.
OUTBOX_RETRYABLE = ("pending", "failed")
_OUTBOX_COLUMNS = """outbox.id, outbox.thread_id, outbox.message_id, outbox.in_reply_to,
    outbox.to_address, outbox.subject, outbox.body, outbox.status, outbox.attempts,
    outbox.last_error, outbox.created_at, outbox.sent_at, outbox.saved_to_sent,
    posts.slug AS post"""


def reply_candidates(conn: sqlite3.Connection, thread_id: int) -> list[dict[str, Any]]:
    """A thread's messages, oldest first, with what an answer to each one needs."""
    rows = _dicts(conn.execute(
        f"""SELECT {', '.join(MESSAGE_COLUMNS)}, synthetic_message_id, "references"
            FROM messages WHERE thread_id = ? ORDER BY date, id""",
        (thread_id,),
    ))
    for row in rows:
        row["to_addresses"] = json.loads(row["to_addresses"] or "[]")
        row["kind_reasons"] = json.loads(row["kind_reasons"] or "[]")
        row["references"] = json.loads(row["references"] or "[]")
    return rows


def add_outbox(conn: sqlite3.Connection, *, thread_id: int, message_id: str,
               in_reply_to: str | None, to_address: str, subject: str, body: str,
               raw: bytes) -> int:
    cursor = conn.execute(
        """INSERT INTO outbox (thread_id, message_id, in_reply_to, to_address, subject, body,
                               raw, status, attempts, created_at, saved_to_sent)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, 0)""",
        (thread_id, message_id, in_reply_to, to_address, subject, body, raw, now()),
    )
    return int(cursor.lastrowid or 0)


def outbox_entries(conn: sqlite3.Connection, *, include_sent: bool = False,
                   ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    where, params = [], []
    if not include_sent:
        where.append("outbox.status != 'sent'")
    if ids is not None:
        where.append(f"outbox.id IN ({', '.join('?' * len(ids))})")
        params.extend(ids)
    sql = f"""SELECT {_OUTBOX_COLUMNS} FROM outbox
              LEFT JOIN threads ON threads.id = outbox.thread_id
              LEFT JOIN posts ON posts.id = threads.post_id"""
    if where:
        sql += " WHERE " + " AND ".join(where)
    return _dicts(conn.execute(sql + " ORDER BY outbox.id", params))


def outbox_entry(conn: sqlite3.Connection, entry_id: int) -> dict[str, Any]:
    entry = _dict(conn.execute(
        f"""SELECT {_OUTBOX_COLUMNS}, outbox.raw FROM outbox
            LEFT JOIN threads ON threads.id = outbox.thread_id
            LEFT JOIN posts ON posts.id = threads.post_id
            WHERE outbox.id = ?""",
        (entry_id,),
    ))
    if entry is None:
        raise NotFound(f"no outbox entry {entry_id}")
    return entry


def claim_outbox(conn: sqlite3.Connection, entry_id: int,
                 from_states: Sequence[str] = OUTBOX_RETRYABLE) -> bool:
    """Mark an entry as being sent, if it is in one of ``from_states``; False if it was not.

    One UPDATE with the state in its WHERE: of two processes sending at once, one wins.
    """
    cursor = conn.execute(
        f"""UPDATE outbox SET status = 'sending', attempts = attempts + 1
            WHERE id = ? AND status IN ({', '.join('?' * len(from_states))})""",
        (entry_id, *from_states),
    )
    return cursor.rowcount == 1


def finish_outbox(conn: sqlite3.Connection, entry_id: int, status: str,
                  error: str | None = None) -> None:
    conn.execute(
        """UPDATE outbox SET status = ?, last_error = ?,
                  sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
           WHERE id = ?""",
        (status, error, status, now(), entry_id),
    )


def set_saved_to_sent(conn: sqlite3.Connection, entry_id: int, saved: bool | None) -> None:
    conn.execute("UPDATE outbox SET saved_to_sent = ? WHERE id = ?",
                 (None if saved is None else int(saved), entry_id))


def unsaved_sent_copies(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Sent answers whose copy to the Sent folder is still owed."""
    return _dicts(conn.execute(
        "SELECT id, raw FROM outbox WHERE status = 'sent' AND saved_to_sent = 0 ORDER BY id"))


# SMTP listener ------------------------------------------------------------------------------


def delivery_status(conn: sqlite3.Connection, delivery_id: int) -> str | None:
    """pending, stored, duplicate, quarantined, ignored; None for no such delivery."""
    return _one(conn, "SELECT status FROM deliveries WHERE id = ?", (delivery_id,))


def count_pending_deliveries(conn: sqlite3.Connection) -> int:
    return _one(conn, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'") or 0


# --- reading (issue 11) ---------------------------------------------------------------------


def find_messages(conn: sqlite3.Connection, *, match: str | None, from_: str | None = None,
                  post: str | None = None, after: str | None = None,
                  before: str | None = None, state: str | None = None,
                  kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Messages matching an FTS5 expression and/or filters, the last stored first (as notmuch
    lists newest first): FTS5 then walks its index backwards and stops at ``limit``, where
    ranking by relevance would score every match (250 ms for "the" in 100,000 messages).
    ``from_`` is a part of the sender's address or name; ``after``/``before`` ISO 8601 UTC."""
    where: list[str] = []
    params: list[Any] = []
    if match is not None:
        where.append("messages_fts MATCH ?")
        params.append(match)
    for condition, value in (
        ("(messages.from_address LIKE ? ESCAPE '\\' OR messages.from_name LIKE ? ESCAPE '\\')",
         from_),
        ("posts.slug = ?", post), ("messages.date >= ?", after), ("messages.date < ?", before),
        ("threads.state = ?", state), ("messages.kind = ?", kind),
    ):
        if value is not None:
            where.append(condition)
            if condition.startswith("(messages.from_address"):
                pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace(
                    "_", "\\_") + "%"
                params += [pattern, pattern]
            else:
                params.append(value)
    snippet = ("snippet(messages_fts, 1, '[', ']', '…', 12)" if match is not None
               else "substr(replace(messages.visible_text, char(10), ' '), 1, 80)")
    source = ("messages_fts JOIN messages ON messages.id = messages_fts.rowid"
              if match is not None else "messages")
    order = "messages_fts.rowid DESC" if match is not None else "messages.id DESC"
    return _dicts(conn.execute(
        f"""SELECT messages.id, messages.thread_id AS thread, posts.slug AS post,
                   messages.from_name, messages.from_address, messages.subject, messages.date,
                   messages.kind, {snippet} AS snippet
            FROM {source}
            LEFT JOIN posts ON posts.id = messages.post_id
            LEFT JOIN threads ON threads.id = messages.thread_id
            WHERE {' AND '.join(where) or '1'}
            ORDER BY {order} LIMIT ?""",
        (*params, limit),
    ))
