"""Posts: the blog posts replies are about, their slugs and aliases."""

from __future__ import annotations

import sqlite3
from typing import Any

from ...timestamps import now
from ._rows import NotFound, _dict, _dicts, _one


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


def posts_for_mentions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every post's id, slug, title and url: what an author's message may name a post by."""
    return _dicts(conn.execute("SELECT id, slug, title, url FROM posts ORDER BY id"))

