"""``posts``: the blog posts that replies are about."""

from __future__ import annotations

import html
import json
import sqlite3
from urllib.parse import quote

import click

from .app import App
from .output import chosen_format, confirm, dumps, echo, emit, output_options


def _slug(value: str) -> str:
    from ..config import SLUG_PATTERN

    if not SLUG_PATTERN.match(value):
        raise click.BadParameter(
            f"{value!r}: a slug is lowercase letters, digits and hyphens, e.g. why-i-blog")
    return value


@click.group()
def posts() -> None:
    """Add, list and link the posts that replies are about."""


@posts.command(name="add")
@click.argument("slug", callback=lambda ctx, param, value: _slug(value))
@click.option("--title", help="The post's title")
@click.option("--url", help="The post's URL")
@click.pass_obj
def posts_add(app: App, slug: str, title: str | None, url: str | None) -> None:
    """Add a post (or update its title and URL).

    \b
    Example:
        mailthreads posts add why-i-blog --title "Why I blog" --url https://blog.example/why-i-blog
    """
    from ..db import store

    db = app.database(create=True)
    with db.conn:
        result = store.upsert_post(db.conn, slug, title, url)
    click.echo(f"{slug}: {result}")
    if filed := _file_held(app, db.conn):
        click.echo(filed)


def _file_held(app: App, conn: sqlite3.Connection) -> str:
    """Replies held because their post was unknown are filed now that it is known; what was
    filed, in words ("" for nothing)."""
    from ..ingest.held import file_held_for_known_posts

    outcomes = file_held_for_known_posts(conn, app.config)
    filed = [outcome for outcome in outcomes if outcome.status in ("stored", "duplicate")]
    if not filed:
        return ""
    return (f"Filed {len(filed)} held repl{'y' if len(filed) == 1 else 'ies'} to "
            f"{', '.join(sorted({str(outcome.post) for outcome in filed}))}")


@posts.command(name="list")
@output_options
@click.pass_obj
def posts_list(app: App, as_json: bool, as_nl: bool, as_csv: bool) -> None:
    """List posts with their number of threads, newest first.

    --json, --nl and --csv add each post's reply address, its mailto: link and an HTML
    snippet (as 'posts link' prints them), for a static site's build to read.

    \b
    Example:
        mailthreads posts list --json
    """
    from ..db import store

    fmt = chosen_format(as_json, as_nl, as_csv)
    rows = store.list_posts(app.reader())
    if fmt != "table":
        for row in rows:
            link = _link_with_snippet(app, row["slug"], row["title"])
            row.update(reply_address=link["address"], mailto=link["mailto"], html=link["html"])
    emit(rows, fmt,
         ["slug", "title", "threads", "needs_reply", "last_activity", "url"],
         empty="No posts yet. Add one with: mailthreads posts add SLUG --title TITLE")


def _link(app: App, slug: str) -> dict[str, str]:
    from ..mail.routing import reply_address

    address = reply_address(slug, app.config.addresses)
    return {"post": slug, "address": address, "mailto": f"mailto:{quote(address, safe='@+')}"}


def _link_with_snippet(app: App, slug: str, title: str | None) -> dict[str, str]:
    """The reply address, a mailto: link with the subject, and an HTML snippet."""
    link = _link(app, slug)
    link["mailto"] += "?subject=" + quote(f"Re: {title or slug}")
    link["html"] = (f'<a href="{html.escape(link["mailto"])}">Reply by email</a>')
    return link


@posts.command(name="show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Output JSON")
@click.pass_obj
def posts_show(app: App, slug: str, as_json: bool) -> None:
    """Show a post, its reply address and its threads.

    \b
    Example:
        mailthreads posts show why-i-blog
    """
    from ..db import store

    conn = app.reader()
    post = store.post_by_slug(conn, slug)
    if post is None:
        raise click.ClickException(f"no post with slug {slug!r}")
    threads = store.list_threads(conn, post=post["slug"], include_archived=True)
    post["aliases"] = json.loads(post["aliases"] or "[]")
    post["reply_address"] = _link(app, post["slug"])["address"]
    if as_json:
        click.echo(dumps({**post, "threads": threads}))
        return
    echo(f"{post['slug']}: {post['title'] or '(no title)'}", multiline=False)
    for key in ("url", "reply_address", "created_at"):
        if post[key]:
            echo(f"  {key.replace('_', ' ')}: {post[key]}", multiline=False)
    if post["closed"]:
        click.echo("  closed: new first replies are quarantined")
    click.echo()
    emit(threads, "table", ["id", "correspondent_name", "correspondent_address", "state",
                            "unread", "messages", "last_activity"], empty="No threads yet.")


@posts.command(name="close")
@click.argument("slug")
@click.pass_obj
def posts_close(app: App, slug: str) -> None:
    """Close a post to new discussions: first replies to it are quarantined from now on.

    Discussions already started go on.

    \b
    Example:
        mailthreads posts close why-i-blog
    """
    _set_closed(app, slug, True)


@posts.command(name="reopen")
@click.argument("slug")
@click.pass_obj
def posts_reopen(app: App, slug: str) -> None:
    """Open a closed post to new discussions again.

    \b
    Example:
        mailthreads posts reopen why-i-blog
    """
    _set_closed(app, slug, False)


def _set_closed(app: App, slug: str, closed: bool) -> None:
    from ..db import store

    db = app.database()
    try:
        with db.conn:
            store.set_post_closed(db.conn, slug, closed)
    except store.NotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{slug}: {'closed to new discussions' if closed else 'open'}")


@posts.command(name="link")
@click.argument("slug", callback=lambda ctx, param, value: _slug(value))
@click.option("--json", "as_json", is_flag=True, help="Output JSON")
@click.pass_obj
def posts_link(app: App, slug: str, as_json: bool) -> None:
    """Print a post's reply address, a mailto: link and an HTML snippet for the post.

    \b
    Example:
        mailthreads posts link why-i-blog
    """
    from ..db import store

    post = store.post_by_slug(app.reader(), slug)
    link = _link_with_snippet(app, slug, (post or {}).get("title"))
    if as_json:
        click.echo(dumps(link))
        return
    if post is None:
        click.echo(f"(no post {slug!r} yet: " + (
            "the first reply will create it)" if app.config.posts.create_on_first_reply
            else f"replies are held until you add it: 'mailthreads posts add {slug}')"),
            err=True)
    click.echo(f"address: {link['address']}")
    click.echo(f"mailto:  {link['mailto']}")
    click.echo(f"html:    {link['html']}")


@posts.command(name="sync")
@click.argument("feed")
@click.option("--json", "as_json", is_flag=True,
              help="Output a JSON object: the summary and every entry")
@click.pass_obj
def posts_sync(app: App, feed: str, as_json: bool) -> None:
    """Add or update posts from an RSS or Atom feed (a URL or a file).

    The slug is the last meaningful part of each entry's link (index.html and final slashes
    ignored), transliterated to ASCII, or the title when the link has no path. A post already
    known by its URL keeps its slug and reply address. Two entries never share a slug: the
    second gets -2. Every entry not added says why.

    \b
    Examples:
        mailthreads posts sync https://blog.example/feed.xml
        mailthreads posts sync ./public/atom.xml --json
    """
    from .. import feeds

    try:
        entries = feeds.read_feed(feed)
    except feeds.FeedError as error:
        raise click.ClickException(str(error)) from None
    db = app.database(create=True)
    with db.conn:
        results = feeds.sync_posts(db.conn, entries)
    filed = _file_held(app, db.conn)
    counts = {kind: sum(r.result == kind for r in results)
              for kind in ("added", "updated", "unchanged", "skipped")}
    renamed = sum(r.renamed for r in results)
    if as_json:
        summary = {"entries": len(results), **counts, "renamed": renamed}
        click.echo(dumps({"summary": summary, "entries": [r.as_dict() for r in results]}))
        return
    for row in results:
        echo(f"{row.result:9}  {row.post or '#' + str(row.entry)}  {row.title or ''}",
             multiline=False)
        if row.note:
            echo(f"           {row.note}", multiline=False)
    line = (f"{len(results)} entries in feed: {counts['added']} added, {counts['updated']} "
            f"updated, {counts['unchanged']} unchanged, {counts['skipped']} skipped")
    if renamed:
        line += f"; {renamed} added with -2 (or -3...) because their slug was taken"
    click.echo(line)
    if filed:
        echo(filed, multiline=False)


@posts.command(name="delete")
@click.argument("slug")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("--purge", is_flag=True,
              help="Also remove the raw mail and wipe the database pages it used, so that "
                   "nothing of it stays on disk")
@click.pass_obj
def posts_delete(app: App, slug: str, yes: bool, purge: bool) -> None:
    """Delete a post with every discussion and message filed under it.

    Tombstones (hashes, no content) keep a rescan or a poll from filing the deleted mail
    again. New mail to the post's address starts over (or is held for review, as for any
    unknown post). To stop new discussions but keep the old ones: 'posts close'.

    \b
    Examples:
        mailthreads posts delete old-post
        mailthreads posts delete old-post --yes --purge
    """
    from ..db import store

    conn = app.database().conn
    post = store.post_by_slug(conn, slug)
    if post is None:
        raise click.ClickException(f"no post with slug {slug!r}: see 'mailthreads posts list'")
    if not yes:
        count = len(store.threads_of_post(conn, post["id"]))
        confirm(f"Delete post {post['slug']} and its {count} thread{'s' * (count != 1)}? "
                "This cannot be undone")
    if purge:
        store.overwrite_deleted_content(conn)
    with conn:
        threads, messages = store.delete_post(conn, post["slug"], "posts delete", purge=purge)
    if purge and not store.wipe_deleted_content(conn):
        from .triage import PURGE_BUSY

        click.echo(PURGE_BUSY, err=True)
    click.echo(f"Deleted post {post['slug']} ({threads} threads, {messages} messages"
               f"{', raw mail purged' if purge else ''}).")
