"""The author's daily loop: ``next`` (one thread at a time, one key per decision),
``mark-unread``, ``threads delete``, ``attachments``, and the notes that say an answer was not
delivered.

``threads`` is a group here so that ``threads delete`` exists, while ``mailthreads threads``
and its options still list, as ``review.threads`` does.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .annotations import attachments_by_message, human_size, thread_notes
from .app import App
from .output import confirm, echo, emit, output_options
from .review import render_thread
from .review import threads as listing

if TYPE_CHECKING:
    pass

KEYS = {"r": "reply", "a": "archive", "s": "skip", "q": "quit"}
PROMPT = "[r]eply  [a]rchive  [s]kip  [q]uit "
MAX_FILENAME = 120
PURGE_BUSY = ("Note: another process (serve, poll?) was reading the database, so its "
              "write-ahead log may hold the deleted mail until that process stops (the last "
              "one to close the database empties the log)")


# threads (a group: the listing, and delete) -------------------------------------------------


@click.pass_context
def _list_or_subcommand(ctx: click.Context, **options: Any) -> None:
    if ctx.invoked_subcommand is None:
        ctx.invoke(listing, **options)


threads = click.Group(
    "threads", params=list(listing.params), callback=_list_or_subcommand,
    invoke_without_command=True, help=listing.help, short_help=listing.short_help)


@threads.command(name="delete")
@click.argument("thread_ids", metavar="THREAD...", nargs=-1, required=True, type=int)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("--purge", is_flag=True,
              help="Also remove the raw mail and wipe the database pages it used, so that "
                   "nothing of it stays on disk")
@click.pass_obj
def threads_delete(app: App, thread_ids: tuple[int, ...], yes: bool, purge: bool) -> None:
    """Delete discussions: their messages, attachments and unsent answers.

    A tombstone (the messages' hashes, no content) stays, so that a rescan, an IMAP re-read or
    a new ingest of the same mail does not bring them back. 'archive' is the gentle option: it
    only hides a thread until the next reply.

    \b
    Examples:
        mailthreads threads delete 3
        mailthreads threads delete 3 7 --yes --purge
    """
    from ..db import store

    conn = app.database().conn
    found = []
    for thread_id in thread_ids:
        try:
            found.append(store.get_thread(conn, thread_id))
        except store.NotFound as error:
            raise click.ClickException(f"{error}: see 'mailthreads threads --all'") from None
    if not yes:
        described = "; ".join(f"thread {t.id} with {t.correspondent_address} about "
                              f"{t.post} ({t.messages} messages)" for t in found)
        confirm(f"Delete {described}? This cannot be undone")
    if purge:
        store.overwrite_deleted_content(conn)
    with conn:
        deleted = sum(store.delete_thread(conn, t.id, "threads delete", purge=purge)
                      for t in found)
    if purge and not store.wipe_deleted_content(conn):
        click.echo(PURGE_BUSY, err=True)
    click.echo(f"Deleted thread {', '.join(map(str, thread_ids))} ({deleted} messages"
               f"{', raw mail purged' if purge else ''}).")


# next ---------------------------------------------------------------------------------------


@click.command(name="next")
@click.option("--newest", is_flag=True, help="Start with the newest question, not the oldest")
@click.pass_context
def next_thread(ctx: click.Context, newest: bool) -> None:
    """Go through the discussions that wait for an answer, one key per decision.

    The one that has waited longest comes first (--newest: the latest). Each is shown as
    'show' shows it and marked read; then press r to reply (the editor opens, as with
    'reply'), a to archive, s to skip it for now, q to stop. No Enter needed. A summary
    follows at the end.

    \b
    Examples:
        mailthreads next
        mailthreads next --newest
    """
    from ..db import store, transaction
    from .answer import reply

    app: App = ctx.obj
    conn = app.quick_writer()
    done: list[int] = []  # seen in this run, whatever was decided: never shown twice
    tally: Counter[str] = Counter()
    while (thread_id := store.next_thread_to_answer(conn, newest=newest, skip=done)) is not None:
        done.append(thread_id)
        click.echo(thread_text(app, conn, thread_id))
        with transaction(conn, immediate=True):
            store.mark_thread_read(conn, thread_id)
        action = _ask()
        if action == "quit":
            break
        if action == "reply":
            try:
                ctx.invoke(reply, thread_id=thread_id)
            except click.exceptions.Exit:
                tally["not sent"] += 1  # reply said why; the answer waits in the outbox
                continue
            except (click.ClickException, click.Abort) as error:
                click.echo(f"Not answered: {getattr(error, 'message', 'aborted')}", err=True)
                tally["skipped"] += 1
                continue
            tally["replied"] += 1
        elif action == "archive":
            with conn:
                store.set_archived(conn, thread_id, True)
            click.echo(f"Archived {thread_id}.")
            tally["archived"] += 1
        else:
            tally["skipped"] += 1
        click.echo()
    click.echo(_summary(tally, store.count_threads(conn, state="needs_reply")))


def _ask() -> str:
    """One keypress: reply, archive, skip or quit (Ctrl-C and end of input quit)."""
    click.echo(PROMPT, nl=False)
    while True:
        try:
            key = read_key()
        except (KeyboardInterrupt, EOFError, click.Abort):
            key = "q"
        except OSError:  # no terminal to read a key from (cron, a pipe without /dev/tty)
            click.echo("")
            raise click.ClickException("next asks one key at a time: run it in a terminal "
                                       "('mailthreads threads --state needs-reply' lists "
                                       "the same)") from None
        action = KEYS.get(key.lower())
        if action:
            click.echo(action)
            return action
        click.echo(f"\n{PROMPT}", nl=False)


def read_key() -> str:
    """One key, without Enter and without echo.

    ``click.getchar`` on a terminal, but keeping type-ahead: click switches to raw mode with
    TCSAFLUSH, which throws away a key pressed while the thread was being printed. Here the
    terminal goes to cbreak mode at once (TCSANOW), and an escape sequence (an arrow key) is
    read whole and ignored, so that its last letter is not taken for a choice.
    """
    import select
    import sys
    import termios
    import tty

    if not sys.stdin.isatty():
        return click.getchar()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        first = os.read(fd, 1)
        if first == b"\x1b":
            while select.select([fd], [], [], 0.05)[0] and os.read(fd, 16):
                pass
            return ""
        if first in (b"", b"\x04"):
            raise EOFError
        if first == b"\x03":
            raise KeyboardInterrupt
        return first.decode("latin-1")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _summary(tally: Counter[str], waiting: int) -> str:
    parts = [f"{word} {tally[word]}" for word in ("replied", "archived", "skipped", "not sent")
             if tally[word]]
    done = (", ".join(parts).capitalize() if parts else "Nothing decided")
    waits = f"{waiting} thread{'s' if waiting != 1 else ''} still wait{'s' if waiting == 1 else ''}"
    return f"{done}; {waits} for an answer." if waiting else f"{done}; nothing waits for an answer."


def thread_text(app: App, conn: sqlite3.Connection, thread_id: int) -> str:
    from ..db import store

    thread = store.get_thread(conn, thread_id)
    messages = store.thread_messages(conn, thread_id)
    return render_thread(thread, messages, quotes=False, author=app.config.author.name,
                         notes=thread_notes(conn, thread_id),
                         attachments=attachments_by_message(conn, messages))


# mark-unread --------------------------------------------------------------------------------


@click.command(name="mark-unread")
@click.argument("thread_ids", metavar="THREAD...", nargs=-1, required=True, type=int)
@click.pass_obj
def mark_unread(app: App, thread_ids: tuple[int, ...]) -> None:
    """Mark a thread's newest reply unread again, to come back to it.

    \b
    Example:
        mailthreads mark-unread 3
    """
    from ..db import store, transaction

    conn = app.quick_writer()
    with transaction(conn, immediate=True):
        for thread_id in thread_ids:
            try:
                if not store.mark_thread_unread(conn, thread_id):
                    raise click.ClickException(f"thread {thread_id} has no reply from its "
                                               "correspondent to mark unread")
            except store.NotFound as error:
                raise click.ClickException(f"{error}: see 'mailthreads threads --all'") \
                    from None
    click.echo(f"Marked unread: {', '.join(map(str, thread_ids))}")


# attachments --------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.pass_context
def attachments(ctx: click.Context) -> None:
    """The files that came with a message: list and save them.

    \b
    Examples:
        mailthreads attachments list 12
        mailthreads attachments save 12 --dir ~/Downloads
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@attachments.command(name="list")
@click.argument("message_id", metavar="MESSAGE", type=int)
@output_options
@click.pass_obj
def attachments_list(app: App, message_id: int, as_json: bool, as_nl: bool,
                     as_csv: bool) -> None:
    """List a message's attachments (MESSAGE: its id in 'show --json').

    \b
    Example:
        mailthreads attachments list 12 --json
    """
    from ..db import store
    from .output import chosen_format

    conn = app.reader()
    try:
        rows = [{key: value for key, value in row.items() if key != "content"}
                for row in store.attachment_contents(conn, message_id)]
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads show THREAD --json'") from None
    emit(rows, chosen_format(as_json, as_nl, as_csv),
         ["id", "filename", "content_type", "size"], empty="No attachments.")


@attachments.command(name="save")
@click.argument("message_id", metavar="MESSAGE", type=int)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Where to write the files")
@click.option("--force", is_flag=True, help="Overwrite files that exist")
@click.pass_obj
def attachments_save(app: App, message_id: int, directory: Path, force: bool) -> None:
    """Save a message's attachments into DIR (MESSAGE: its id in 'show --json').

    File names come from the sender, so they are made safe: no directories, no hidden or
    special names, nothing that leaves DIR. An existing file is not overwritten without
    --force. Files are readable by you only (0600).

    \b
    Examples:
        mailthreads attachments save 12
        mailthreads attachments save 12 --dir ~/Downloads --force
    """
    from ..db import store

    conn = app.reader()
    try:
        files = store.attachment_contents(conn, message_id)
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads show THREAD --json'") from None
    if not files:
        raise click.ClickException(f"message {message_id} has no attachments")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(f"cannot make {directory}: {error.strerror}") from None
    names = unique_names([safe_filename(item["filename"], item["id"]) for item in files])
    targets = [directory / name for name in names]
    existing = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists: --force overwrites it")
    for item, target in zip(files, targets, strict=True):
        try:
            _write_private(target, item["content"] or b"")
        except OSError as error:
            raise click.ClickException(f"cannot write {target}: {error.strerror}") from None
        echo(f"Saved {target} ({human_size(item['size'])})", multiline=False)


def safe_filename(name: str | None, attachment_id: int) -> str:
    """A sender's file name made harmless: its last path component only, no control or
    separator characters, no leading dot or dash, not empty, not too long."""
    text = (name or "").replace("\\", "/").split("/")[-1]
    text = "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in text)
    text = text.strip().lstrip(".-").strip()
    if not text or text in {".", ".."}:
        text = f"attachment-{attachment_id}"
    if len(text) > MAX_FILENAME:
        stem, dot, suffix = text.rpartition(".")
        text = (stem[:MAX_FILENAME - len(suffix) - 1] + "." + suffix
                if dot and len(suffix) <= 10 else text[:MAX_FILENAME])
    return text


def unique_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, number = name, 1
        while candidate.lower() in seen:
            number += 1
            stem, dot, suffix = name.rpartition(".")
            candidate = f"{stem}-{number}.{suffix}" if dot and stem else f"{name}-{number}"
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def _write_private(path: Path, content: bytes) -> None:
    # O_NOFOLLOW: a symlink planted at the name is not followed out of DIR.
    if path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # an existing file overwritten with --force keeps no wider mode
    with os.fdopen(fd, "wb") as file:
        file.write(content)

