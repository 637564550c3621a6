"""Reading discussions: ``threads``, ``show``, ``archive``, ``search``, ``stats``, and
``review``: everything that waits for the author's decision, in one list.

These are the commands people run all day, so they use the plain sqlite3 read path.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from .app import App
from .output import (
    chosen_format,
    dumps,
    echo,
    emit,
    output_options,
    page,
    styled,
    terminal_width,
)

if TYPE_CHECKING:
    from ..db.store import MessageRow, Thread

TABLE_PAGE = 50
# Table states in at most 9 characters, so that an 80-column table keeps room for subjects.
STATE_LABELS = {"needs_reply": "to answer", "answered": "answered", "archived": "archived"}
THREAD_HEADERS = {"correspondent": "from", "pending_decision": "waits on", "unread": "new",
                  "messages": "msgs", "last_activity": "last"}
STATE_NAMES = {"needs-reply": "needs_reply", "answered": "answered", "archived": "archived"}
KIND_LABELS = {"auto_reply": "auto-reply", "bounce": "bounce",
               "feedback_report": "feedback report", "other": "automatic message"}



def person(name: str | None, address: str | None) -> str:
    return f"{name} <{address}>" if name else address or ""


def _correspondent(row: dict[str, Any], prefix: str = "correspondent") -> str:
    return person(row.get(f"{prefix}_name"), row.get(f"{prefix}_address"))


def pending_decision(row: dict[str, Any]) -> str | None:
    """The question a thread waits on, in words: "same person as Jane <jane@…>?", or None."""
    if row.get("possibly_same_as") is None:
        return None
    return f"same person as {_correspondent(row, 'possibly_same_as')}?"


def decision_hint(row: dict[str, Any]) -> str:
    return (f"Thread {row['id']}: is {row['correspondent_address']} the "
            f"{pending_decision(row)} 'mailthreads correspondents merge {row['id']}' if so, "
            f"'mailthreads correspondents separate {row['id']}' if not.")


@click.command()
@click.option("--post", metavar="SLUG", help="Only threads about this post")
@click.option("--state", type=click.Choice([*sorted(STATE_NAMES), *sorted(
              name for name in STATE_NAMES.values() if name not in STATE_NAMES)]),
              help="Only threads in this state (needs-reply or needs_reply, answered, "
                   "archived)")
@click.option("--unread", is_flag=True, help="Only threads with unread replies")
@click.option("--undelivered", is_flag=True,
              help="Only threads where one of your answers was not delivered")
@click.option("-a", "--all", "include_archived", is_flag=True, help="Include archived threads")
@click.option("-n", "--limit", type=click.IntRange(0),
              help=f"At most this many threads; 0 for all. Default: {TABLE_PAGE} in the table, "
                   "all with --json, --nl or --csv")
@output_options
@click.pass_obj
def threads(app: App, post: str | None, state: str | None, unread: bool,
            undelivered: bool, include_archived: bool, limit: int | None, as_json: bool,
            as_nl: bool, as_csv: bool) -> None:
    """List discussions, newest activity first.

    Archived threads are hidden unless --all or --state archived. The table shows the newest
    50 and says how many more there are.

    \b
    Examples:
        mailthreads threads
        mailthreads threads --state needs-reply --unread
        mailthreads threads --post why-i-blog --json
        mailthreads threads --undelivered
        mailthreads threads delete 3
    """
    from ..db import store
    from .annotations import undelivered_notes

    fmt = chosen_format(as_json, as_nl, as_csv)
    if limit is None:
        limit = TABLE_PAGE if fmt == "table" else 0
    conn = app.reader()
    filters = {"post": post, "state": STATE_NAMES.get(state or "", state), "unread": unread,
               "include_archived": include_archived}
    if undelivered:  # rare: filtered here, over the few threads a bounce names
        notes = undelivered_notes(conn)
        rows = [row for row in store.list_threads(conn, **filters) if row["id"] in notes]
        rows, hidden = (rows[:limit], max(len(rows) - limit, 0)) if limit else (rows, 0)
    else:
        # One row more than shown tells whether to count the rest.
        rows = store.list_threads(conn, **filters, limit=limit + 1 if limit else None)
        hidden = 0
        if limit and len(rows) > limit:
            rows = rows[:limit]
            hidden = store.count_threads(conn, **filters) - limit
        notes = undelivered_notes(conn, [row["id"] for row in rows])
    for row in rows:
        row["correspondent"] = _correspondent(row)
        row["pending_decision"] = pending_decision(row)
        row["undelivered"] = notes.get(row["id"])
    if fmt == "table":
        for row in rows:
            row["state"] = STATE_LABELS.get(row["state"], row["state"])
            row["unread"] = row["unread"] or ""
    columns = ["id", "post", "correspondent", "state", "unread", "messages", "last_activity",
               "subject"]
    if fmt == "table" and any(row["pending_decision"] for row in rows):
        columns.insert(3, "pending_decision")
        for row in rows:  # the whole question goes to standard error below
            row["pending_decision"] = "same person?" if row["pending_decision"] else ""
    emit(rows, fmt, columns,
         empty="No threads. Replies arrive with: mailthreads ingest PATH (or serve, or poll)",
         shrink=[("subject", 16), ("correspondent", 12), ("post", 10), ("subject", 6)],
         headers=THREAD_HEADERS, bold=lambda row: bool(row["unread"]))
    if hidden:
        click.echo(f"… and {hidden:,} older threads: -n 0 shows all", err=True)
    if fmt == "table":
        for row in rows:
            if row["possibly_same_as"] is not None:
                echo(decision_hint(row), multiline=False, err=True)
            if row["undelivered"]:
                echo(f"Thread {row['id']}: {row['undelivered']}", multiline=False, err=True)


# The review queue's classes of quarantined mail (quarantine.reason_class; NULL is "quarantine":
# a message that could not be parsed or routed) and the command that settles each. "spam" is
# listed like the others; "blocked" is quiet: only with --all.
REVIEW_DECISIONS = {
    "quarantine": "mailthreads review accept {id} (or quarantine delete {id})",
    "unknown_post": "mailthreads posts add {post} (or review accept {id}, or quarantine "
                    "delete {id})",
    "spam": "mailthreads review accept {id} (or quarantine delete {id})",
    "blocked": "mailthreads unblock, then review accept {id} (or quarantine delete {id})",
}
QUIET_CLASSES = {"blocked"}


@click.group(invoke_without_command=True)
@click.option("-a", "--all", "include_quiet", is_flag=True,
              help="Also list mail from blocked senders (kept raw, never shown otherwise)")
@output_options
@click.pass_context
def review(ctx: click.Context, include_quiet: bool, as_json: bool, as_nl: bool,
           as_csv: bool) -> None:
    """List everything waiting for your decision, oldest first, with the commands that decide.

    Classes: 'quarantine' (a message that could not be parsed or routed: release or delete
    it), 'unknown_post' (a reply to a post you have not added: 'posts add SLUG' files it),
    'spam' (a forged sender or a spam score), 'same_person' (a thread started from a new
    address that claimed to be another correspondent: merge or separate it) and, with --all,
    'blocked' (a blocked sender's mail, kept raw). 'review accept ID' files a held message.

    \b
    Examples:
        mailthreads review
        mailthreads review --json
        mailthreads review --all
        mailthreads review accept 4
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..db import store

    app: App = ctx.obj
    conn = app.reader()
    rows, quiet = [], 0
    for entry in store.list_quarantine(conn):
        kind = entry["reason_class"] or "quarantine"
        if kind in QUIET_CLASSES and not include_quiet:
            quiet += 1
            continue
        decide = REVIEW_DECISIONS.get(kind, REVIEW_DECISIONS["quarantine"])
        rows.append({"class": kind, "id": entry["id"], "from_address": entry["from_address"],
                     "subject": entry["subject"], "reason": entry["reason"],
                     "since": entry["created_at"],
                     "decide": decide.format(id=entry["id"], post=entry["post_slug"])})
    # Spam waits in its own table (ids of 'mailthreads spam'); quiet like blocked mail, since
    # a harvested address can bring a lot of it.
    for entry in store.list_spam(conn):
        if not include_quiet:
            quiet += 1
            continue
        rows.append({"class": "spam", "id": entry["id"], "from_address": entry["from_address"],
                     "subject": entry["subject"],
                     "reason": f"spam score {entry['score']} ({entry['verdict_source']})",
                     "since": entry["created_at"],
                     "decide": f"mailthreads spam release {entry['id']} "
                               f"(or spam delete {entry['id']})"})
    rows += [{"class": "same_person", "id": thread["id"],
              "from_address": thread["correspondent_address"], "subject": thread["subject"],
              "reason": pending_decision(thread), "since": thread["created_at"],
              "decide": f"mailthreads correspondents merge {thread['id']} (or separate)"}
             for thread in store.threads_awaiting_identity(conn)]
    rows.sort(key=lambda row: (row["since"] or "", row["class"], row["id"]))
    fmt = chosen_format(as_json, as_nl, as_csv)
    if fmt == "table" and rows:
        echo(_decisions(rows))
    else:
        emit(rows, fmt, ["class", "id", "since", "from_address", "subject", "reason", "decide"],
             empty="Nothing waits for your decision.")
    if quiet and fmt == "table":
        click.echo(f"({quiet} spam or from blocked senders not listed: 'mailthreads review "
                   "--all')", err=True)


def _decisions(rows: list[dict[str, Any]]) -> str:
    """What waits, a block each: what and from whom, why, and the command that decides. A
    table column 80 characters wide would cut the reason and the command, the two that
    matter."""
    from ..localtime import relative
    from ..printable import clip_to_width, display_width, neutralise

    width = terminal_width()
    blocks = []
    for row in rows:
        head = " · ".join([f"{row['class']} {row['id']}", relative(row["since"]),
                           row["from_address"] or "(no sender)", row["subject"] or "(no subject)"])
        decide = "    → " + neutralise(row["decide"], multiline=False)
        if display_width(decide) > width and " (or " in decide:
            # Commands are never cut (they are copied); the alternatives go below.
            decide = decide.replace(" (or ", "\n      (or ", 1)
        blocks.append("\n".join([
            clip_to_width(neutralise(head, multiline=False), width),
            clip_to_width("    " + neutralise(row["reason"] or "", multiline=False), width),
            decide]))
    return "\n\n".join(blocks)


@review.command(name="accept")
@click.argument("entry_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.pass_obj
def review_accept(app: App, entry_ids: tuple[int, ...]) -> None:
    """File held messages: a reply to an unknown post creates the post (as 'posts add' would);
    any other held message runs through the pipeline again, as 'quarantine release' does.

    A blocked sender's message stays held while the sender is blocked: unblock first.

    \b
    Examples:
        mailthreads review accept 4
        mailthreads review accept 4 5
    """
    from ..db import store
    from ..ingest.quarantine import release

    conn = app.database().conn
    for entry_id in entry_ids:
        try:
            entry = store.get_quarantine(conn, entry_id)
        except store.NotFound as error:
            raise click.ClickException(f"{error}: see 'mailthreads review --all'") from None
        if entry["reason_class"] == "unknown_post" and entry["post_slug"]:
            with conn:
                store.create_post(conn, entry["post_slug"])
        outcome = release(conn, app.config, entry_id)
        where = f" in thread {outcome.thread}" if outcome.thread else ""
        echo(f"{entry_id}: {outcome.status}{where}"
             + (f" ({outcome.reasons[-1]})" if outcome.status == "quarantined" else ""),
             multiline=False)


@click.command()
@click.argument("thread_id", metavar="THREAD", type=int)
@click.option("--quotes", is_flag=True, help="Show quoted history instead of folding it")
@click.option("--json", "as_json", is_flag=True, help="Output the thread and its messages")
@click.option("--no-pager", is_flag=True, help="Do not page the output on a terminal")
@click.option("--keep-unread", is_flag=True, help="Do not mark the thread read")
@click.option("--mark-read", is_flag=True,
              help="With --json: mark the thread read too (output for scripts does not)")
@click.pass_obj
def show(app: App, thread_id: int, quotes: bool, as_json: bool, no_pager: bool,
         keep_unread: bool, mark_read: bool) -> None:
    """Show one discussion as a conversation, and mark it read (--json does not, unless
    --mark-read).

    Attachments are listed under their message ('mailthreads attachments save MESSAGE'
    writes them); an answer of yours that bounced is named at the top.

    Quoted history is folded to one line unless --quotes; signatures are set apart.

    \b
    Examples:
        mailthreads show 3
        mailthreads show 3 --quotes --no-pager
        mailthreads show 3 --json
    """
    from ..db import store
    from .annotations import attachments_by_message, thread_notes, undelivered_notes

    conn = app.reader()
    try:
        thread = store.get_thread(conn, thread_id)
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads threads --all'") from None
    messages = store.thread_messages(conn, thread_id)
    attachments = attachments_by_message(conn, messages)
    notes = thread_notes(conn, thread_id)
    if as_json:
        row = thread._asdict()
        click.echo(dumps({**row, "correspondent": _correspondent(row),
                          "pending_decision": pending_decision(row),
                          "undelivered": undelivered_notes(conn, [thread_id]).get(thread_id),
                          "notes": notes,
                          "messages": [{**message._asdict(),
                                        "attachments": attachments.get(message.id, [])}
                                       for message in messages]}))
    else:
        text = render_thread(thread, messages, quotes=quotes, author=app.config.author.name,
                             notes=notes, attachments=attachments)
        if sys.stdout.isatty() and not no_pager:
            page(text)
        else:
            click.echo(text)
    if (mark_read or not (as_json or keep_unread)) and thread.unread:
        from ..db import transaction

        with transaction(conn, immediate=True):  # the quick connection's one small write
            store.mark_thread_read(conn, thread_id)


def render_thread(thread: Thread, messages: list[MessageRow], *, quotes: bool,
                  author: str, notes: Sequence[str] = (),
                  attachments: Mapping[int, list[dict[str, Any]]] | None = None) -> str:
    from ..localtime import absolute
    from .annotations import attachment_lines

    # Every piece from mail is neutralised (styled(..., multiline=False) for one-line fields)
    # before the program's own colours go around it.
    row = thread._asdict()
    lines = [
        styled(f"Thread {thread.id} · {thread.post} · {_correspondent(row)} · "
               f"{thread.state.replace('_', ' ')}", multiline=False, bold=True),
        styled(f"Subject: {thread.subject or '(none)'}", multiline=False),
    ]
    if pending_decision(row):
        lines.append(styled(decision_hint(row), multiline=False, fg="yellow"))
    if thread.consent:
        from .publish import consent_line

        lines.append(f"Consent to publish: {consent_line(thread)}")
    lines.extend(styled(note[:1].upper() + note[1:], multiline=False, fg="red") for note in notes)
    for message in messages:
        lines.append("")
        who = "You" if message.direction == "out" else (
            f"{message.from_name} <{message.from_address}>" if message.from_name
            else message.from_address or "(unknown sender)")
        when = absolute(message.date)
        label = KIND_LABELS.get(message.kind)
        heading = f"── {who} · {when}"
        if label:
            heading += f" · {label}, not part of the discussion"
        lines.append(styled(heading + " ", multiline=False,
                            fg="cyan" if not label else "yellow"))
        if label and message.kind_reasons:
            lines.append(styled(f"   ({message.kind_reasons[0]})", multiline=False,
                                dim=True))
        lines.append(styled((message.visible_text or "").rstrip() or "(no text)"))
        # The signature belongs to the words above it; the quoted history comes after both,
        # folded to one line, or (--quotes) as a block set apart by a blank line and a label.
        signature = (message.signature or "").strip("\n").rstrip()
        if signature:
            lines.append(styled(signature, dim=True))
        quoted = (message.quoted_text or "").strip("\n").rstrip()
        if quoted:
            count = quoted.count("\n") + 1
            if quotes:
                lines += ["", click.style(f"[{count} quoted line{'s' if count != 1 else ''}:]",
                                          dim=True),
                          styled(quoted, dim=True)]
            else:
                lines.append(click.style(f"[… {count} quoted line{'s' if count != 1 else ''} "
                                         "hidden: --quotes shows them]", dim=True))
        lines.extend(attachment_lines((attachments or {}).get(message.id, [])))
    return "\n".join(lines)


def _set_archived(app: App, thread_ids: tuple[int, ...], archived: bool) -> None:
    from ..db import store, transaction

    conn = app.quick_writer()
    with transaction(conn, immediate=True):
        for thread_id in thread_ids:
            try:
                store.set_archived(conn, thread_id, archived)
            except store.NotFound as error:
                raise click.ClickException(str(error)) from None
    verb = "Archived" if archived else "Unarchived"
    click.echo(f"{verb} {', '.join(map(str, thread_ids))}")


@click.command()
@click.argument("thread_ids", metavar="THREAD...", nargs=-1, required=True, type=int)
@click.pass_obj
def archive(app: App, thread_ids: tuple[int, ...]) -> None:
    """Hide threads from the listing until a new reply arrives.

    \b
    Example:
        mailthreads archive 3 7
    """
    _set_archived(app, thread_ids, True)


@click.command()
@click.argument("thread_ids", metavar="THREAD...", nargs=-1, required=True, type=int)
@click.pass_obj
def unarchive(app: App, thread_ids: tuple[int, ...]) -> None:
    """Bring archived threads back.

    \b
    Example:
        mailthreads unarchive 3
    """
    _set_archived(app, thread_ids, False)


@click.command()
@click.argument("words", metavar="QUERY...", nargs=-1, required=True)
@click.option("--post", metavar="SLUG", help="Only messages about this post (as post:SLUG)")
@click.option("--fts", "raw_fts", is_flag=True,
              help="QUERY is SQLite FTS5 syntax (AND, OR, NEAR, column:word), passed as is")
@click.option("-n", "--limit", type=click.IntRange(1), default=50, show_default=True)
@output_options
@click.pass_obj
def search(app: App, words: tuple[str, ...], post: str | None, raw_fts: bool, limit: int,
           as_json: bool, as_nl: bool, as_csv: bool) -> None:
    """Full-text search over visible text, subject and correspondent, newest first.

    Type words as they come: every word must match (bob@example.org, don't and other
    punctuation are fine); "two words" for a phrase; word* for a prefix. Filters:
    from:ADDRESS-OR-NAME, post:SLUG, after:YYYY-MM-DD, before:YYYY-MM-DD,
    state:needs-reply|answered|archived, kind:reply|auto-reply|bounce. Filters alone are
    fine too.

    \b
    Examples:
        mailthreads search typewriter
        mailthreads search "don't panic" from:bob@example.org after:2026-01-01
        mailthreads search '"first draft"' --post why-i-blog
        mailthreads search --fts 'subject:blog AND (draft OR ribbon)'
    """
    import sqlite3

    from ..db import store
    from ..search_query import QueryError, parse

    text = " ".join(words)
    try:
        query = parse(text, raw_fts=raw_fts)
    except QueryError as error:
        raise click.ClickException(f"bad search filter {error}") from None
    if post:
        query.post = post
    if query.empty:
        raise click.ClickException(f"nothing to search for in {text!r}: give a word or a "
                                   "filter (from:, post:, after:, before:, state:, kind:)")
    try:
        rows = store.find_messages(app.reader(), match=query.match, from_=query.from_,
                                   post=query.post, after=query.after, before=query.before,
                                   state=query.state, kind=query.kind,
                                   contains=query.contains, limit=limit)
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_ERROR:
            raise  # a lock, a damaged file: the top-level handler explains those
        hint = "" if raw_fts else " (this is a bug: please report the query)"
        raise click.ClickException(f"bad search query {text!r}: {error}{hint}") from None
    fmt = chosen_format(as_json, as_nl, as_csv)
    for row in rows:
        row["from"] = row.pop("from_name") or row["from_address"]
    if fmt == "table":
        from ..localtime import relative

        for row in rows:
            row["date"] = relative(row["date"])
    emit(rows, fmt, ["thread", "post", "from", "date", "snippet"], empty="No matches.",
         shrink=[("snippet", 30), ("from", 12), ("post", 10), ("snippet", 12)],
         highlight=["snippet"], headers={"thread": "id"})


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Output JSON")
@click.pass_obj
def stats(app: App, as_json: bool) -> None:
    """Counts of posts, threads, messages by kind, quarantine and outbox.

    \b
    Example:
        mailthreads stats --json
    """
    from ..db import store

    counts = store.stats(app.reader())
    counts["database"] = str(app.database_path)
    if as_json:
        click.echo(dumps(counts))
        return
    for key, value in counts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "none"
        click.echo(f"{key.replace('_', ' ') + ':':24}{value}")
