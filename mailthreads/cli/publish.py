"""Publishing with consent, and keeping a copy: ``export``, ``consent``, ``backup``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .app import App
from .output import echo, echo_bytes

if TYPE_CHECKING:
    import sqlite3

    from ..db.store import Thread

CONSENT_WORDS = {None: "never asked", "asked": "asked, no answer recorded",
                 "granted": "granted", "revoked": "revoked"}


def consent_line(thread: Thread) -> str:
    """'granted on 2026-11-20': the thread's consent to publish, in words."""
    words = CONSENT_WORDS.get(thread.consent, thread.consent or "")
    return f"{words} on {thread.consent_at[:10]}" if thread.consent_at else words


def write_private(path: str, data: bytes, *, database: Path, force: bool = False) -> None:
    """Write ``data`` to ``path`` (``-``: standard output), readable by its owner only (0600).

    Never over the database or its -wal/-shm files, never over an existing file without
    ``force``, and never half-written: the bytes go to a temporary file renamed into place."""
    if path == "-":
        echo_bytes(data)
        return
    target = Path(path)
    if _is_database_file(target, database):
        raise click.ClickException(f"{path} is the mailthreads database: choose another file")
    if target.exists() and not force:
        raise click.ClickException(f"{path} exists: --force replaces it")
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent or ".",
                                                 prefix=f".{target.name}.")
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, target)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror}") from None


def _is_database_file(target: Path, database: Path) -> bool:
    resolved, base = target.resolve(), database.resolve()
    return resolved in {base, *(base.with_name(base.name + suffix)
                                for suffix in ("-wal", "-shm", "-journal"))}


def _threads_to_export(conn: sqlite3.Connection, thread_ids: tuple[int, ...],
                       posts: tuple[str, ...]) -> list[Thread]:
    from ..db import store

    ids = list(thread_ids)
    for slug in posts:
        if store.post_by_slug(conn, slug) is None:
            raise click.ClickException(f"no post with slug {slug!r}: see 'mailthreads posts "
                                       "list'")
        rows = store.list_threads(conn, post=slug, include_archived=True)
        ids.extend(row["id"] for row in reversed(rows))  # oldest discussion first
    if not ids:
        raise click.UsageError("name a THREAD, or a post with --post SLUG")
    threads = []
    for thread_id in dict.fromkeys(ids):
        try:
            threads.append(store.get_thread(conn, thread_id))
        except store.NotFound as error:
            raise click.ClickException(f"{error}: see 'mailthreads threads --all'") from None
    return threads


@click.command()
@click.argument("thread_ids", metavar="[THREAD]...", nargs=-1, type=int)
@click.option("--post", "posts", metavar="SLUG", multiple=True,
              help="Every discussion of this post (repeatable)")
@click.option("-f", "--format", "fmt", type=click.Choice(["markdown", "html", "json", "mbox"]),
              default="markdown", show_default=True)
@click.option("-o", "--output", metavar="FILE", default="-",
              help="Write to FILE (made 0600); - or none: standard output")
@click.option("--signatures", is_flag=True, help="Keep the signatures")
@click.option("--addresses", is_flag=True, help="Show email addresses next to names")
@click.option("--quotes", is_flag=True, help="Keep quoted history instead of folding it")
@click.option("--without-consent", is_flag=True,
              help="Export even discussions whose correspondent has not granted consent")
@click.option("--force", is_flag=True, help="Replace FILE if it exists")
@click.pass_obj
def export(app: App, thread_ids: tuple[int, ...], posts: tuple[str, ...], fmt: str,
           output: str, signatures: bool, addresses: bool, quotes: bool,
           without_consent: bool, force: bool) -> None:
    """Export discussions to publish (Markdown, HTML) or keep (JSON, mbox).

    Markdown and HTML read as a conversation: names, dates in your time zone (TZ, else the
    system's), the visible text, quoted history folded; signatures and addresses are left out
    unless asked. The HTML is one self-contained file in which nothing from mail is markup.
    mbox holds the exact messages as received (mboxrd), for any mail client. A discussion
    whose consent is not 'granted' (see 'mailthreads consent') is refused unless
    --without-consent.

    \b
    Examples:
        mailthreads export 3 > discussion.md
        mailthreads export 3 --format html -o discussion.html
        mailthreads export --post why-i-blog --format mbox -o why-i-blog.mbox
    """
    from .. import export as exporting
    from ..db import store

    conn = app.reader()
    threads = _threads_to_export(conn, thread_ids, posts)
    missing = [thread for thread in threads if thread.consent != "granted"]
    for thread in missing:
        echo(f"Thread {thread.id} ({thread.correspondent_name or thread.correspondent_address}"
             f"): consent to publish {consent_line(thread)}", multiline=False, err=True)
    if missing and not without_consent:
        ids = " ".join(str(thread.id) for thread in missing)
        raise click.ClickException(
            f"not exported: no consent for thread {ids} ('mailthreads consent THREAD ask' "
            "drafts the question; --without-consent exports anyway)")
    if fmt == "mbox":
        data = b"".join(exporting.mbox_message(row["raw"], row["from_address"], row["date"])
                        for thread in threads
                        for row in store.thread_raw_messages(conn, thread.id))
        write_private(output, data, database=app.database_path, force=force)
        return
    options = exporting.Options(author=app.config.author.name or "Me",
                                signatures=signatures, addresses=addresses, quotes=quotes)
    discussions = [exporting.discussion(thread, store.thread_messages(conn, thread.id),
                                        options) for thread in threads]
    if fmt == "markdown":
        text = exporting.markdown(discussions)
    elif fmt == "html":
        first = threads[0]
        text = exporting.html_document(discussions,
                                       first.post_title or first.subject or first.post)
    else:
        text = exporting.json_text(discussions)
    write_private(output, text.encode("utf-8"), database=app.database_path, force=force)


ASK_TEXT = """Hello{name},

Thank you again for writing to me about "{title}". I would like to quote our exchange on my
blog. May I? If so, tell me how you would like to be named: your name, your initials, or
not at all.

If you would rather not, just say so: nothing will be published.

{author}
"""


@click.command()
@click.argument("thread_id", metavar="THREAD", type=int)
@click.argument("state", type=click.Choice(["granted", "revoked", "ask"]))
@click.pass_obj
def consent(app: App, thread_id: int, state: str) -> None:
    """Record whether a correspondent agreed to be quoted, or draft the question.

    'ask' drafts a short answer asking whether the exchange may be quoted, and records that
    you asked. The draft waits in the outbox: 'outbox send' (cron) never sends a draft;
    'mailthreads outbox edit ID' changes it, 'mailthreads outbox send ID' sends it. 'granted'
    and 'revoked' record the answer, with today's date; 'export' needs 'granted'.

    \b
    Examples:
        mailthreads consent 3 ask
        mailthreads consent 3 granted
        mailthreads consent 3 revoked
    """
    from ..db import store

    conn = app.database().conn
    try:
        thread = store.get_thread(conn, thread_id)
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads threads --all'") from None
    if state == "ask":
        entry_id = _draft_question(app, conn, thread)
    with conn:
        when = store.set_thread_consent(conn, thread_id, "asked" if state == "ask" else state)
    if state == "ask":
        click.echo(f"Thread {thread_id}: the question is drafted as reply {entry_id} (not "
                   f"sent). 'mailthreads outbox edit {entry_id}' changes it, 'mailthreads "
                   f"outbox send {entry_id}' sends it.")
    else:
        click.echo(f"Thread {thread_id}: consent to publish {state} on {when[:10]}.")


def _draft_question(app: App, conn: sqlite3.Connection, thread: Thread) -> int:
    """Compose the consent question as an answer to the thread, kept as an outbox draft."""
    from ..db import store
    from ..mail import compose
    from ..outgoing import outbox as outbox_module

    problems = outbox_module.reply_problems(app.config, sending=False)
    if problems:
        raise click.ClickException(problems[0])
    messages = store.reply_candidates(conn, thread.id)
    try:
        target = compose.choose_target(messages, None)
        draft = outbox_module.draft_reply(app.config, thread, messages, target.message)
        first_name = (thread.correspondent_name or "").split()
        body = ASK_TEXT.format(name=f" {first_name[0]}" if first_name else "",
                               title=thread.post_title or thread.subject or thread.post,
                               author=app.config.author.name or "")
        raw = compose.compose(draft, body)
    except (LookupError, compose.UnsafeHeader) as error:
        raise click.ClickException(f"thread {thread.id}: {error}") from None
    return outbox_module.queue(
        conn, thread_id=thread.id, message_id=draft.message_id, in_reply_to=draft.in_reply_to,
        to_address=draft.to_address, subject=compose.answer_subject(draft.subject), body=body,
        raw=raw, draft=True)


@click.command()
@click.argument("target", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--pages", type=click.IntRange(1), default=1000, show_default=True,
              help="Database pages copied per step")
@click.option("--pause", type=click.FloatRange(0, 10), default=0.005, show_default=True,
              help="Seconds to rest between steps")
@click.pass_obj
def backup(app: App, target: str, pages: int, pause: float) -> None:
    """Copy the database to FILE, consistently, while serve and poll keep running.

    SQLite's online backup reads one snapshot of the database in steps, pausing between
    them; in WAL mode a reader never blocks the writer, so no mail is refused meanwhile.
    FILE is made 0600 and replaced only when the copy is whole and checked. Restoring: see
    the README ("Backup").

    \b
    Examples:
        mailthreads backup ~/backups/mailthreads.db
        mailthreads -d ~/backups/mailthreads.db threads
    """
    from ..db.backup import BackupError, backup_database

    try:
        result = backup_database(app.database_path, Path(target).expanduser(), pages=pages,
                                 pause=pause)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backed up {app.database_path} to {target}: {result.pages:,} pages "
               f"({result.size / 1e6:.1f} MB) in {result.seconds:.1f} s.")
