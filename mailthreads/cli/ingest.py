"""``ingest`` and ``explain``: messages from files, and what the pipeline makes of one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .app import App
from .output import chosen_format


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path,
                                                                  allow_dash=True))
@click.option("--post", "post_hint", metavar="SLUG",
              help="File messages that carry no reply address under this post")
@click.option("--workers", type=click.IntRange(1, 64),
              help="Processes that parse mail (default: one per core)")
@click.option("--json", "as_json", is_flag=True,
              help="Output a JSON object: the summary and every message")
@click.option("--nl", "as_nl", is_flag=True, help="Output one JSON object per message per line")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar")
@click.pass_obj
def ingest(app: App, paths: tuple[Path, ...], post_hint: str | None, workers: int | None,
           as_json: bool, as_nl: bool, quiet: bool) -> None:
    """Take in messages from maildirs, mbox files, .eml files or - (standard input).

    Each message is stored once (copies are reported as duplicates), filed in its thread, or
    quarantined with the reason when it cannot be parsed or routed.

    \b
    Examples:
        mailthreads ingest ~/Mail/replies/
        mailthreads ingest old-comments.mbox --post why-i-blog
        mailthreads ingest reply.eml --nl
    """
    from ..bulk import ingest_messages
    from ..sources import SourceError, classify_path, count_messages, read_messages

    fmt = chosen_format(as_json, as_nl)
    if post_hint:
        from .posts import _slug

        try:
            _slug(post_hint)
        except click.BadParameter as error:
            raise click.UsageError(f"--post: {error.message}") from None
    try:
        sources = [classify_path(path) for path in paths]
    except SourceError as error:
        raise click.ClickException(str(error)) from None
    counts = [count_messages(source) for source in sources]
    expected = None if None in counts else sum(c or 0 for c in counts)

    def messages():
        for source in sources:
            yield from read_messages(source)

    outcomes: list[dict] = []

    def on_outcome(outcome):
        if fmt == "nl":
            click.echo(json.dumps(outcome.as_dict(), ensure_ascii=False))
        elif fmt == "json":
            outcomes.append(outcome.as_dict())
        if bar is not None:
            bar.update(1)

    db = app.database(durable=False)
    show_bar = not quiet and fmt == "table" and sys.stderr.isatty()
    bar = None
    try:
        if show_bar:
            with click.progressbar(length=expected or 0, label="Ingesting",
                                   file=sys.stderr, show_pos=True) as bar:
                summary = ingest_messages(db.conn, app.config, messages(), post_hint=post_hint,
                                          workers=workers, expected=expected,
                                          on_outcome=on_outcome)
        else:
            summary = ingest_messages(db.conn, app.config, messages(), post_hint=post_hint,
                                      workers=workers, expected=expected, on_outcome=on_outcome)
    except (OSError, SourceError) as error:
        raise click.ClickException(f"cannot read: {error}") from None
    totals = {"stored": summary.stored, "duplicate": summary.duplicate,
              "quarantined": summary.quarantined, "ignored": summary.ignored,
              "by_kind": summary.by_kind}
    if fmt == "json":
        click.echo(json.dumps({"summary": totals, "messages": outcomes}, indent=2,
                              ensure_ascii=False))
    elif fmt == "table":
        line = (f"{summary.total} messages: {summary.stored} stored, {summary.duplicate} "
                f"duplicate, {summary.quarantined} quarantined")
        machine = sum(n for kind, n in summary.by_kind.items() if kind != "reply")
        if machine:
            line += f" ({machine} of the stored are auto-replies, bounces or reports)"
        click.echo(line)
        if summary.quarantined:
            click.echo("See them with: mailthreads quarantine list", err=True)


@click.command()
@click.argument("file", type=click.Path(path_type=Path, allow_dash=True, dir_okay=False))
@click.option("--post", "post_hint", metavar="SLUG",
              help="As ingest --post: the post for messages with no reply address")
@click.option("--envelope-to", "rcpt_to", multiple=True, metavar="ADDRESS",
              help="Pretend the message came with this SMTP recipient (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="Output a JSON object")
@click.pass_obj
def explain(app: App, file: Path, post_hint: str | None, rcpt_to: tuple[str, ...],
            as_json: bool) -> None:
    """Show what the pipeline would do with a message, without storing it.

    Post, thread, kind and why, and the visible, quoted and signature parts. FILE may be -
    for standard input.

    \b
    Examples:
        mailthreads explain reply.eml
        mailthreads explain - --json < reply.eml
    """
    from ..budget import Analyser
    from ..ingest import Context, Envelope, plan

    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}") from None
    config = app.config
    with Analyser(config) as analyser:
        analysis = analyser.analyse(raw)
    if isinstance(analysis, str):
        result = {"status": "quarantined", "kind": None, "post": None, "thread": None,
                  "reasons": [analysis], "visible_text": None, "quoted_text": None,
                  "signature": None, "message_id": None, "parent_message_id": None}
    else:
        context = Context("file", Envelope(rcpt_to=rcpt_to), post_hint)
        decided = plan(app.reader(), config, analysis, context)
        result = {
            "status": decided.outcome_status,
            "message_id": analysis.message_id,
            "kind": analysis.kind,
            "direction": decided.direction,
            "post": decided.post_slug,
            "thread": decided.thread_id,
            "parent_message_id": decided.parent,
            "from": analysis.from_address,
            "subject": analysis.subject,
            "reasons": decided.reasons,
            "visible_text": analysis.visible_text,
            "quoted_text": analysis.quoted_text,
            "signature": analysis.signature,
        }
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for key in ("status", "message_id", "from", "subject", "kind", "direction", "post",
                "thread", "parent_message_id"):
        if key in result:
            value = result[key]
            if key == "thread" and value is None and result["status"] == "stored":
                value = "(a new thread)"
            click.echo(f"{key.replace('_', ' ') + ':':19}{'' if value is None else value}")
    click.echo("why:")
    for reason in result["reasons"]:
        click.echo(f"  - {reason}")
    for key in ("visible_text", "quoted_text", "signature"):
        if result.get(key):
            click.echo(f"\n--- {key.replace('_', ' ')} ---\n{result[key]}")
