"""Posts from an RSS or Atom feed (feedparser), with slugs taken from their links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .config import SLUG_PATTERN


class FeedError(Exception):
    pass


@dataclass(frozen=True)
class FeedEntry:
    slug: str
    title: str | None
    url: str | None


def slug_from_url(url: str) -> str | None:
    path = urlparse(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    last = re.sub(r"\.(html?|php|aspx?)$", "", last, flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", last.lower()).strip("-")[:100].strip("-")
    return slug if slug and SLUG_PATTERN.match(slug) else None


def read_feed(location: str) -> list[FeedEntry]:
    import feedparser

    is_url = location.startswith(("http://", "https://"))
    if not is_url and not Path(location).is_file():
        raise FeedError(f"{location}: no such file (give a feed URL or a file)")
    parsed = feedparser.parse(location)
    if parsed.get("bozo") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise FeedError(f"{location}: not a readable RSS or Atom feed ({problem})")
    entries = []
    for entry in parsed.entries:
        url = entry.get("link")
        slug = slug_from_url(url) if url else None
        if slug is None:
            continue
        entries.append(FeedEntry(slug=slug, title=entry.get("title"), url=url))
    if not entries and not parsed.entries:
        raise FeedError(f"{location}: the feed has no entries")
    return entries
