"""Posts from an RSS or Atom feed (feedparser), with slugs taken from their links.

A slug handed out is a reply address handed out: a post found again (by its URL) keeps its
slug, and no two posts ever share one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from .config import SLUG_PATTERN
from .db import store

MAX_SLUG = 100
# A page's own file name says nothing about the post: /why-i-blog/index.html is "why-i-blog".
_INDEX_PAGE = re.compile(r"^(index|default)(\.[a-z0-9]+)?$", re.I)
_PAGE_SUFFIX = re.compile(r"\.(html?|xhtml|shtml|php|aspx?|jsp)$", re.I)


class FeedError(Exception):
    pass


@dataclass(frozen=True)
class FeedEntry:
    slug: str | None  # None: the entry cannot be named (``problem`` says why)
    title: str | None
    url: str | None  # absolute
    problem: str | None = None


@dataclass
class SyncResult:
    entry: int  # position in the feed, from 1
    title: str | None
    url: str | None
    post: str | None
    result: str  # added, updated, unchanged, skipped
    note: str | None = None  # why it was skipped, or what was not as the link said
    renamed: bool = False  # added under slug-2 (or -3...) because its slug was taken

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def slugify_text(text: str) -> str | None:
    """A valid slug for ``text`` (transliterated to ASCII), or None when nothing is left."""
    from slugify import slugify

    slug = slugify(text, max_length=MAX_SLUG).strip("-")
    return slug if SLUG_PATTERN.match(slug) else None


def slug_from_url(url: str) -> str | None:
    """The last meaningful segment of the link's path, percent-decoded and transliterated."""
    segments = [unquote(part) for part in urlsplit(url).path.split("/") if part]
    while segments and _INDEX_PAGE.match(segments[-1]):
        segments.pop()
    if not segments:
        return None
    return slugify_text(_PAGE_SUFFIX.sub("", segments[-1]))


def url_key(url: str) -> str:
    """What makes two links the same post: not the scheme, the host's case or a final slash."""
    parts = urlsplit(url)
    path = re.sub(r"/(index|default)\.[a-z0-9]+$", "/", parts.path, flags=re.I).rstrip("/")
    return f"{parts.netloc.lower()}{path}" + (f"?{parts.query}" if parts.query else "")


def _entry(link: str | None, title: str | None, base: str | None) -> FeedEntry:
    def unnamed(problem: str) -> FeedEntry:
        return FeedEntry(slug=None, title=title, url=link, problem=problem)

    if not link:
        return unnamed("no link")
    if not urlsplit(link).scheme:
        if not base:
            return unnamed(f"relative link {link!r} and no feed address to resolve it against")
        link = urljoin(base, link)
    slug = slug_from_url(link) or (slugify_text(title) if title else None)
    if slug is None:
        return unnamed(f"link {link!r} has no usable path and "
                       + ("its title gives no slug" if title else "there is no title"))
    return FeedEntry(slug=slug, title=title, url=link)


def _base(parsed: Any, location: str) -> str | None:
    """What relative links are resolved against: the feed's own URL, else its site link."""
    if location.startswith(("http://", "https://")):
        return location
    site = parsed.feed.get("link")
    return site if site and urlsplit(site).scheme in ("http", "https") else None


def read_feed(location: str) -> list[FeedEntry]:
    """Every entry of the feed, in feed order, named or with the reason it cannot be."""
    import feedparser

    is_url = location.startswith(("http://", "https://"))
    if not is_url and not Path(location).is_file():
        raise FeedError(f"{location}: no such file (give a feed URL or a file)")
    parsed = feedparser.parse(location)
    if parsed.get("bozo") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise FeedError(f"{location}: not a readable RSS or Atom feed ({problem})")
    if not parsed.entries:
        raise FeedError(f"{location}: the feed has no entries")
    base = _base(parsed, location)
    return [_entry(entry.get("link"), entry.get("title"), base) for entry in parsed.entries]


def sync_posts(conn: sqlite3.Connection, entries: Iterable[FeedEntry]) -> list[SyncResult]:
    """Add or update a post for every entry; one result per entry, in feed order.

    A post is found by its URL first (it keeps its slug; a different slug from the link becomes
    an alias), then by a slug nobody else's URL holds. A slug held by another post's URL gets
    ``-2`` (``-3``...).
    """
    by_url = {url_key(post["url"]): post for post in store.posts_for_mentions(conn)
              if post["url"]}
    seen: dict[str, int] = {}
    results = []
    for number, entry in enumerate(entries, start=1):
        result = SyncResult(number, entry.title, entry.url, None, "skipped", entry.problem)
        results.append(result)
        if entry.slug is None:
            continue
        key = url_key(entry.url or "")
        if key in seen:
            result.note = f"same link as entry {seen[key]}"
            continue
        seen[key] = number
        if key in by_url:
            _update_known(conn, by_url[key], entry, result)
        else:
            _add_or_claim(conn, entry, result)
            by_url[key] = store.post_by_slug(conn, result.post or "")
    return results


def _update_known(conn: sqlite3.Connection, post: dict[str, Any], entry: FeedEntry,
                  result: SyncResult) -> None:
    result.post = post["slug"]
    result.result = store.upsert_post(conn, post["slug"], entry.title, entry.url)
    if entry.slug != post["slug"] and store.post_by_slug(conn, entry.slug or "") is None:
        store.add_post_alias(conn, post["id"], entry.slug or "")
        result.result = "updated"
        result.note = (f"keeps slug {post['slug']} (its reply address); the link now gives "
                       f"{entry.slug}, added as an alias")


def _add_or_claim(conn: sqlite3.Connection, entry: FeedEntry, result: SyncResult) -> None:
    slug = entry.slug or ""
    holder = store.post_by_slug(conn, slug)
    if holder is not None and holder["slug"] == slug and not holder["url"]:
        # Added by hand or by a first reply, without a URL: this entry is that post.
        result.post = slug
        result.result = store.upsert_post(conn, slug, entry.title, entry.url)
        return
    if holder is not None:
        slug = _free_slug(conn, slug)
        result.renamed = True
        result.note = (f"slug {entry.slug} is taken by "
                       f"{holder['url'] or 'post ' + holder['slug']}: added as {slug}")
    store.create_post(conn, slug, entry.title, entry.url)
    result.post, result.result = slug, "added"


def _free_slug(conn: sqlite3.Connection, slug: str) -> str:
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = slug[:MAX_SLUG - len(suffix)].rstrip("-") + suffix
        if store.post_by_slug(conn, candidate) is None:
            return candidate
        number += 1
