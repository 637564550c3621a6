"""Answering: ``reply`` and the ``outbox`` (``outbox list``, ``outbox send``).

A failed send is not an error in the author's text: the answer stays in the outbox with the
relay's reason, and the command says so in one line. It exits 75 (EX_TEMPFAIL) when trying
again later can help (the relay is down) and 1 when a setting must change first (a certificate,
TLS on a plain port, a refused login), so cron does not retry a mistake forever.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import click

from ..errors import exit_status
from .app import App
from .output import chosen_format, confirm, echo, echo_bytes, emit, output_options

if TYPE_CHECKING:
    from ..db.store import Thread
    from ..mail.records import ThreadMessage


def _setup_problems(app: App, *, sending: bool) -> list[str]:
    """Everything that would stop the answer, found before the author writes a word."""
    from ..outgoing.outbox import reply_problems

    return reply_problems(app.config, sending=sending)


@click.command()
@click.argument("thread_id", metavar="THREAD", type=int)
@click.option("-m", "--message", "message_text", metavar="TEXT",
              help="The answer's text, instead of opening the editor")
@click.option("-F", "--message-file", type=click.File("r", encoding="utf-8"), metavar="FILE",
              help="Read the answer's text from FILE (- for standard input)")
@click.option("--to-message", metavar="ID",
              help="Answer this message of the thread (its id in 'show --json', or its "
                   "Message-ID) instead of the last one")
@click.option("--subject", metavar="TEXT",
              help="The answer's subject instead of the answered message's ('Re: ' is added)")
@click.option("--dry-run", is_flag=True,
              help="Print the exact message that would be sent; queue and send nothing")
@click.option("-y", "--yes", is_flag=True,
              help="Do not ask before answering machine mail (an auto-reply, a bounce)")
@click.pass_obj
def reply(app: App, thread_id: int, message_text: str | None, message_file: IO[str] | None,
          to_message: str | None, subject: str | None, dry_run: bool, yes: bool) -> None:
    """Answer a discussion by email.

    Opens $VISUAL or $EDITOR on a template, as 'git commit' does: write above the quoted
    message; lines starting with '#' are dropped; an empty answer sends nothing. The answer is
    committed to the outbox, then sent through the [outgoing] relay. Its Reply-To is the
    thread's signed address, so the correspondent's next reply comes back to this thread (from
    an address not yet theirs, it waits for your 'same person?' decision: see 'review').

    If sending fails, the answer stays in the outbox ('mailthreads outbox send' retries it);
    the exit status is 75 when the relay could not be reached, 1 when a setting must change.

    \b
    Examples:
        mailthreads reply 3
        mailthreads reply 3 -m "Thank you, that is a good point."
        mailthreads reply 3 --to-message 17 --dry-run
        mailthreads reply 3 --subject "Your question about typewriters"
    """
    from dataclasses import replace
    from datetime import UTC, datetime

    from ..db import store
    from ..mail import compose
    from ..outgoing import outbox as outbox_module

    if message_text is not None and message_file is not None:
        raise click.UsageError("give -m/--message or -F/--message-file, not both")
    problems = _setup_problems(app, sending=not dry_run)
    if problems:
        raise click.ClickException(problems[0])
    config = app.config
    conn = app.database().conn
    try:
        thread = store.get_thread(conn, thread_id)
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads threads --all'") from None
    messages = store.reply_candidates(conn, thread_id)
    try:
        target = compose.choose_target(messages, to_message)
    except LookupError as error:
        raise click.ClickException(f"thread {thread_id}: {error}") from None
    if target.warning and not yes:
        confirm(f"Thread {thread_id}: {target.warning}. Answer anyway?")

    try:
        draft = outbox_module.draft_reply(config, thread, messages, target.message)
        if subject is not None:
            draft = replace(draft, subject=subject)
        compose.compose(draft, "")  # refuse unsafe headers now, before the author writes
    except compose.UnsafeHeader as error:
        about_subject = subject is None and "the Subject" in str(error)
        hint = ": give the answer's subject with --subject" if about_subject else ""
        raise click.ClickException(f"{error}{hint}") from None

    answered = target.message
    quoted_header = compose.attribution(answered.date, _sender_name(app, answered),
                                        answered.from_address)
    if message_text is not None:
        body = message_text
    elif message_file is not None:
        body = message_file.read()
    else:
        edited = click.edit(
            compose.template(quoted_header, answered.visible_text,
                             _notes(thread, draft)),
            extension=".txt", require_save=True)
        body = compose.body_from_edit(edited or "")
    if not compose.has_new_text(body, quoted_header):
        raise click.ClickException("the answer is empty: nothing was queued or sent")

    draft = replace(draft, date=datetime.now(UTC))
    raw = compose.compose(draft, body)
    if dry_run:
        echo_bytes(raw)
        return

    entry_id = outbox_module.queue(
        conn, thread_id=thread_id, message_id=draft.message_id, in_reply_to=draft.in_reply_to,
        to_address=draft.to_address, subject=compose.answer_subject(draft.subject), body=body,
        raw=raw)
    result = outbox_module.deliver(conn, config, entry_id)
    _report(result)
    if not result.ok:
        raise click.exceptions.Exit(_exit_code([result]))


def _exit_code(results: list[Any]) -> int:
    """1 if a failure needs a setting changed (retrying cannot help), else 75 if any failed."""
    # "sending": a message that may or may not have gone; only a later look can tell.
    return exit_status(result.status == "sending" or result.temporary
                       for result in results if result.status in {"failed", "sending"})


def _sender_name(app: App, message: ThreadMessage) -> str:
    if message.direction == "out":
        return app.config.author.name or "you"
    return message.from_name


def _notes(thread: Thread, draft: Any) -> list[str]:
    from ..mail import compose
    from .review import pending_decision

    to = f"{draft.to_name} <{draft.to_address}>" if draft.to_name else draft.to_address
    notes = [
        f"Thread {thread.id} · {thread.post} · {thread.state.replace('_', ' ')}",
        f"To:       {to}",
        f"Subject:  {compose.answer_subject(draft.subject)}",
        f"Reply-To: {draft.reply_to}",
        "          (signed for this thread: their next reply comes back here)",
    ]
    decision = pending_decision(thread._asdict())
    if decision:
        notes.append(f"Not confirmed as the {decision} This answer goes to "
                     f"{draft.to_address} only.")
    return notes


def _report(result: Any) -> None:
    if result.ok:
        echo(result.text[:1].upper() + result.text[1:])
        if result.sent_copy:
            echo(f"  {result.sent_copy}")
    elif result.status == "sending":
        echo(f"Error: {result.text}", err=True)
    elif result.status == "skipped":
        echo(result.text[:1].upper() + result.text[1:], err=True)
    elif result.temporary:
        echo(f"Error: {result.text}; it stays in the outbox: 'mailthreads outbox send' "
             "retries it", err=True)
    else:
        echo(f"Error: {result.text}; it stays in the outbox: fix that, then "
             "'mailthreads outbox send'", err=True)


@click.group(invoke_without_command=True)
@click.pass_context
def outbox(ctx: click.Context) -> None:
    """Answers waiting to be sent, and the ones that failed; alone, the same as 'outbox list'.

    \b
    Examples:
        mailthreads outbox
        mailthreads outbox send
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(outbox_list)


@outbox.command(name="list")
@click.option("-a", "--all", "include_sent", is_flag=True, help="Include answers already sent")
@output_options
@click.pass_obj
def outbox_list(app: App, include_sent: bool = False, as_json: bool = False,
                as_nl: bool = False, as_csv: bool = False) -> None:
    """List answers not sent yet, with the last error.

    Status: pending (not tried yet), failed (the relay did not take it; 'outbox send' retries
    it), sending (being sent, or the connection broke mid-send: it may have arrived, so only
    'outbox send --force ID' sends it again), draft (written for you, e.g. by 'consent ask':
    only 'outbox send ID' sends it), sent.

    \b
    Examples:
        mailthreads outbox list
        mailthreads outbox list --all --json
    """
    from ..db import store

    fmt = chosen_format(as_json, as_nl, as_csv)
    rows = store.outbox_entries(app.reader(), include_sent=include_sent)
    columns = ["id", "thread_id", "post", "to_address", "status", "attempts", "created_at",
               "subject", "last_error"]
    if fmt != "table":
        emit(rows, fmt, columns)
        return
    # The last error in full, under the table: a column 80 characters wide would cut it.
    emit(rows, fmt, columns[:-1],
         headers={"thread_id": "thread", "to_address": "to", "attempts": "tries",
                  "created_at": "created"},
         shrink=[("subject", 12), ("to_address", 16), ("post", 10)],
         empty="The outbox is empty: every answer has been sent.")
    for row in rows:
        if row["last_error"]:
            echo(f"reply {row['id']}: {row['last_error']}", multiline=False)


@outbox.command(name="send")
@click.argument("entry_ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--force", is_flag=True,
              help="Also send the named answers whose earlier attempt may have arrived")
@click.option("--all", "every_age", is_flag=True,
              help="Also send answers older than the [outgoing] retry window")
@click.pass_obj
def outbox_send(app: App, entry_ids: tuple[int, ...], force: bool, every_age: bool) -> None:
    """Send the answers waiting in the outbox (all of them, or the IDs given).

    Pending and failed answers are sent; sent ones never again. Without IDs (as from cron),
    only answers written within the [outgoing] retry_window_hours (default 24) are retried:
    older ones wait for you, so that an answer never goes out days later by surprise; name
    them, or give --all. A draft goes only when named. Copies owed to the IMAP Sent folder
    are saved too. Exits 75 if anything could not be sent for now (the relay is down), 1 if a
    setting must change first (a certificate, TLS on a plain port, a refused login).

    \b
    Examples:
        mailthreads outbox send
        mailthreads outbox send --all
        mailthreads outbox send 4 --force
    """
    from ..db import store
    from ..outgoing import outbox as outbox_module

    if force and not entry_ids:
        raise click.UsageError("--force sends only the answers you name: give their IDs")
    conn = app.database().conn
    for entry_id in entry_ids:
        try:
            store.outbox_entry(conn, entry_id)
        except store.NotFound as error:
            raise click.ClickException(f"{error}: see 'mailthreads outbox list --all'") \
                from None
    results = outbox_module.deliver_all(conn, app.config, entry_ids or None, force=force,
                                        every_age=every_age)
    if not results:
        click.echo(_nothing_sent(conn))
        return
    for result in results:
        _report(result)
    code = _exit_code(results)
    if code:
        raise click.exceptions.Exit(code)


def _nothing_sent(conn: Any) -> str:
    """Why 'outbox send' sent nothing: an empty outbox, or drafts, which go only when named."""
    from ..db import store

    drafts = [entry["id"] for entry in store.outbox_entries(conn) if entry["status"] == "draft"]
    if not drafts:
        return "The outbox is empty: nothing to send."
    waits = "1 draft waits" if len(drafts) == 1 else f"{len(drafts)} drafts wait"
    return (f"Nothing sent: {waits} to be named ('mailthreads outbox send "
            f"{drafts[0]}' sends it; 'outbox list' shows them all).")


def _unsent_entry(conn: Any, entry_id: int) -> dict[str, Any]:
    """An outbox entry that has not gone out; a one-line error otherwise."""
    from ..db import store

    try:
        entry = store.outbox_entry(conn, entry_id)
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads outbox list --all'") from None
    if entry["status"] == "sent":
        raise click.ClickException(f"reply {entry_id} was sent already ({entry['sent_at']})")
    if entry["status"] == "sending":
        why = entry["last_error"] or "an attempt is running or was interrupted"
        raise click.ClickException(f"reply {entry_id} may have been sent already ({why}); "
                                   "check the recipient's copy first")
    return entry


@outbox.command(name="cancel")
@click.argument("entry_ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.pass_obj
def outbox_cancel(app: App, entry_ids: tuple[int, ...], yes: bool) -> None:
    """Drop answers that were not sent: they will never go out.

    \b
    Examples:
        mailthreads outbox cancel 4
        mailthreads outbox cancel 4 5 --yes
    """
    from ..db import store

    conn = app.database().conn
    entries = [_unsent_entry(conn, entry_id) for entry_id in entry_ids]
    if not yes:
        confirm("Cancel " + "; ".join(f"reply {e['id']} to {e['to_address']} ({e['subject']})"
                                      for e in entries) + "? Its text is deleted")
    with conn:
        for entry in entries:
            store.delete_outbox_entry(conn, entry["id"])
    click.echo(f"Cancelled {', '.join(map(str, entry_ids))}: not sent, and never will be.")


@outbox.command(name="edit")
@click.argument("entry_id", metavar="ID", type=int)
@click.pass_obj
def outbox_edit(app: App, entry_id: int) -> None:
    """Change the text of an answer not sent yet, in $VISUAL or $EDITOR.

    The answer keeps its recipient, subject and Message-ID, and waits in the outbox ('outbox
    send ID' sends it). Saving an empty text changes nothing: 'outbox cancel' drops it.

    \b
    Example:
        mailthreads outbox edit 4
    """
    from datetime import UTC, datetime

    from ..db import store
    from ..mail import compose

    conn = app.database().conn
    entry = _unsent_entry(conn, entry_id)
    edited = click.edit(entry["body"], extension=".txt", require_save=True)
    if edited is None or not compose.has_new_text(edited):
        raise click.ClickException(f"reply {entry_id} unchanged (nothing saved, or no text): "
                                   f"'mailthreads outbox cancel {entry_id}' drops it")
    body = edited.rstrip("\n") + "\n"
    draft = compose.reply_from_raw(entry["raw"], date=datetime.now(UTC))
    raw = compose.compose(draft, body)
    with conn:
        store.replace_outbox_answer(conn, entry_id, body, raw)
    click.echo(f"Reply {entry_id} changed; it waits in the outbox: "
               f"'mailthreads outbox send {entry_id}' sends it.")
