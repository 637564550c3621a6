"""`posts sync` from real RSS and Atom files into a real database: slugs, links, collisions."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from mailfactory import message
from test_cli import env, run, run_json  # noqa: F401  (env: the config and database fixture)

pytestmark = pytest.mark.usefixtures("env")


def rss(directory: Path, items: list[tuple[str | None, str | None]],
        site: str | None = "https://blog.example/") -> str:
    """An RSS 2.0 file with one <item> per (title, link); None leaves the element out."""
    body = "".join(
        "<item>" + (f"<title>{escape(title)}</title>" if title is not None else "")
        + (f"<link>{escape(link)}</link>" if link is not None else "") + "</item>\n"
        for title, link in items)
    channel_link = f"<link>{site}</link>" if site else ""
    path = directory / "feed.xml"
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
                    f"<title>Blog</title>{channel_link}\n{body}</channel></rss>\n",
                    encoding="utf-8")
    return str(path)


def sync(feed: str) -> dict:
    return run_json("posts", "sync", feed)


def slugs(report: dict) -> list[tuple[str | None, str]]:
    return [(entry["post"], entry["result"]) for entry in report["entries"]]


def test_index_html_links_name_their_folder_and_never_overwrite_each_other(tmp_path):
    feed = rss(tmp_path, [("One", "https://blog.example/2026/one/index.html"),
                          ("Two", "https://blog.example/2026/two/index.php"),
                          ("Three", "https://blog.example/2026/three/")])
    assert slugs(sync(feed)) == [("one", "added"), ("two", "added"), ("three", "added")]
    posts = {post["slug"]: post for post in run_json("posts", "list")}
    assert posts["one"]["url"] == "https://blog.example/2026/one/index.html"
    assert posts["two"]["title"] == "Two"
    assert slugs(sync(feed)) == [("one", "unchanged"), ("two", "unchanged"),
                                 ("three", "unchanged")]


def test_non_ascii_slugs_are_decoded_and_transliterated(tmp_path):
    feed = rss(tmp_path, [("Über das Schreiben",
                           "https://blog.example/posts/%C3%BCber-das-schreiben/"),
                          ("Café", "https://blog.example/café.html")])
    assert slugs(sync(feed)) == [("uber-das-schreiben", "added"), ("cafe", "added")]


def test_links_without_a_path_take_the_title_and_relative_links_are_resolved(tmp_path):
    feed = rss(tmp_path, [("Hello, World!", "https://blog.example/?p=123"),
                          ("Relative", "/posts/relative-one/"),
                          ("Sibling", "posts/sibling/")])
    report = sync(feed)
    assert slugs(report) == [("hello-world", "added"), ("relative-one", "added"),
                             ("sibling", "added")]
    urls = {post["slug"]: post["url"] for post in run_json("posts", "list")}
    assert urls == {"hello-world": "https://blog.example/?p=123",
                    "relative-one": "https://blog.example/posts/relative-one/",
                    "sibling": "https://blog.example/posts/sibling/"}


def test_entries_sharing_a_slug_get_a_suffix_and_every_entry_is_accounted_for(tmp_path):
    feed = rss(tmp_path, [("Hello 2025", "https://blog.example/2025/hello/"),
                          ("Hello 2026", "https://blog.example/2026/hello/"),
                          ("Again", "https://blog.example/2025/hello/"),
                          ("No link", None),
                          (None, "https://blog.example/"),
                          ("🎉", "https://blog.example/index.html")])
    report = sync(feed)
    assert slugs(report) == [("hello", "added"), ("hello-2", "added"), (None, "skipped"),
                             (None, "skipped"), (None, "skipped"), (None, "skipped")]
    notes = [entry["note"] for entry in report["entries"]]
    assert "slug hello is taken by https://blog.example/2025/hello/" in notes[1]
    assert notes[2] == "same link as entry 1"
    assert notes[3] == "no link"
    assert "no usable path" in notes[4] and "no title" in notes[4]
    assert "title gives no slug" in notes[5]
    summary = report["summary"]
    assert summary == {"entries": 6, "added": 2, "updated": 0, "unchanged": 0, "skipped": 4,
                       "renamed": 1}
    text = run("posts", "sync", feed)
    assert "6 entries in feed: 0 added, 0 updated, 2 unchanged, 4 skipped" in text
    assert "same link as entry 1" in text
    # Synced again, each link keeps the slug it was given.
    assert slugs(sync(feed))[:2] == [("hello", "unchanged"), ("hello-2", "unchanged")]
    assert "-2" in run("posts", "sync", rss(tmp_path, [("Hello", "https://x.example/hello")]))


def test_relative_link_without_any_base_is_reported(tmp_path):
    feed = rss(tmp_path, [("Lost", "/posts/lost/")], site=None)
    [entry] = sync(feed)["entries"]
    assert entry["result"] == "skipped"
    assert "relative link '/posts/lost/'" in entry["note"]
    assert run_json("posts", "list") == []


def test_known_posts_keep_their_slug_and_reply_address(tmp_path):
    # A post named by an older sync (or by hand) under a slug the link would not give today.
    run("posts", "add", "index", "--url", "https://blog.example/a/index.html")
    run("posts", "add", "hello", "--title", "Hello")  # no URL yet: the feed's entry is it
    report = sync(rss(tmp_path, [("A", "https://blog.example/a/index.html"),
                                 ("Hello", "https://blog.example/hello/")]))
    assert slugs(report) == [("index", "updated"), ("hello", "updated")]
    assert "keeps slug index" in report["entries"][0]["note"]
    shown = run_json("posts", "show", "a")  # the new slug reaches the same post
    assert shown["slug"] == "index" and shown["aliases"] == ["a"]
    # Mail to either address is filed under the one post.
    for address in ("reply+index@blog.example", "reply+a@blog.example"):
        path = tmp_path / "reply.eml"
        path.write_bytes(message(to=address, message_id=f"<{address}>"))
        assert "1 stored" in run("ingest", str(path))
    assert [p["threads"] for p in run_json("posts", "list") if p["slug"] == "index"] == [1]
    assert [p["slug"] for p in run_json("posts", "list")] == ["hello", "index"]
