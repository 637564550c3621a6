"""``ingest`` and ``explain``: messages from files, and what the pipeline makes of one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..errors import EX_INTERRUPTED
from ..ingest.values import held_and_blocked
from .app import App
from .output import chosen_format, committed_counts, dumps, echo


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
@click.option("-v", "--verbose", is_flag=True,
              help="Name each file in a directory that was skipped, with the reason")
@click.pass_obj
def ingest(app: App, paths: tuple[Path, ...], post_hint: str | None, workers: int | None,
           as_json: bool, as_nl: bool, quiet: bool, verbose: bool) -> None:
    """Take in messages from maildirs, mbox files, .eml files or - (standard input).

    Each message is stored once (copies are reported as duplicates), filed in its thread, or
    quarantined with the reason when it cannot be parsed or routed. Files in a directory that
    are not mail are skipped and counted (-v names them).

    \b
    Examples:
        mailthreads ingest ~/Mail/replies/
        mailthreads ingest old-comments.mbox --post why-i-blog
        mailthreads ingest reply.eml --nl

    Ctrl-C stops it: what is stored stays, it says how much, and exits 130; the same command
    again continues where it stopped.
    """
    from ..db import store
    from ..ingest.bulk import ingest_messages
    from ..ingest.sources import SourceError, classify_path, count_messages, read_messages

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

    skipped: list[dict[str, str]] = []

    def on_skip(path: Path, reason: str) -> None:
        skipped.append({"path": str(path), "reason": reason})
        if verbose:
            echo(f"skipped {path}: {reason}", multiline=False, err=True)

    def messages():
        for source in sources:
            yield from read_messages(source, on_skip)

    outcomes: list[dict] = []

    def on_outcome(outcome):
        if fmt == "nl":
            click.echo(dumps(outcome.as_dict(), indent=None))
        elif fmt == "json":
            outcomes.append(outcome.as_dict())
        if bar is not None:
            bar.update(1)

    db = app.database(durable=False, create=True)
    before = store.last_delivery_id(db.conn)
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
    except KeyboardInterrupt:
        db.conn.rollback()  # a batch cut short is not in: the re-run takes it
        click.echo(f"Interrupted: {committed_counts(store.delivery_counts_since(db.conn, before))}"
                   "; the rest were not taken in. Run the same command again to continue: "
                   "messages already in are not stored twice.", err=True)
        raise click.exceptions.Exit(EX_INTERRUPTED) from None
    totals = {"stored": summary.stored, "duplicate": summary.duplicate,
              "quarantined": summary.quarantined, "held": summary.held,
              "blocked": summary.blocked, "ignored": summary.ignored,
              "deleted": summary.deleted, "spam": summary.spam,
              "by_kind": summary.by_kind, "skipped_files": skipped}
    if fmt == "json":
        click.echo(dumps({"summary": totals, "messages": outcomes}))
    elif fmt == "table":
        line = (f"{summary.total} messages: {summary.stored} stored, {summary.duplicate} "
                f"duplicate, {summary.quarantined} quarantined")
        line += "".join(f", {part}" for part in held_and_blocked(summary.held, summary.blocked))
        machine = sum(n for kind, n in summary.by_kind.items() if kind != "reply")
        if machine:
            line += f" ({machine} of the stored are auto-replies, bounces or reports)"
        if skipped:
            line += f"; {_skipped_files(skipped, verbose)}"
        if summary.deleted:
            line += f"; {summary.deleted} deleted by you before, not filed again"
        if summary.spam:
            line += f"; {summary.spam} spam, kept apart (mailthreads spam list)"
        click.echo(line)
        if summary.quarantined or summary.held:
            click.echo("See them with: mailthreads review (each with the command that "
                       "decides it)", err=True)
    elif skipped and fmt == "nl":
        click.echo(_skipped_files(skipped, verbose), err=True)


def _skipped_files(skipped: list[dict[str, str]], verbose: bool) -> str:
    files = "1 file" if len(skipped) == 1 else f"{len(skipped)} files"
    return f"{files} skipped, not mail" + ("" if verbose else " (-v names them)")


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
    from ..ingest import Context, Envelope, Unparsed, deleted_before, plan, sha256_of
    from ..ingest.budget import Analyser
    from ..ingest.sources import SourceError, classify_path, without_leading_blank_lines

    try:
        if str(file) != "-":
            classify_path(file)  # refuses what ingest refuses: binary files, not mail
        raw = without_leading_blank_lines(
            sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes())
    except SourceError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}") from None
    config = app.config
    reader = app.reader()
    with Analyser(config) as analyser:
        analysis = analyser.analyse(raw)
    if isinstance(analysis, Unparsed):
        result = {"status": "quarantined", "kind": None, "post": None, "thread": None,
                  "reasons": [analysis.reason], "visible_text": None, "quoted_text": None,
                  "signature": None, "message_id": None, "parent_message_id": None}
    else:
        context = Context("file", Envelope(rcpt_to=rcpt_to), post_hint)
        decided = plan(reader, config, analysis, context)
        reasons = list(decided.reasons)
        if decided.status == "duplicate":  # still say what it is and where it went
            reasons += _kind_and_route(analysis, context, config)
        result = {
            "status": decided.outcome_status,
            "new_thread": decided.status == "store" and decided.thread_id is None
            and decided.wants_thread,
            "message_id": analysis.message_id,
            "kind": analysis.kind,
            "direction": decided.direction,
            "post": decided.post_slug,
            "thread": decided.thread_id,
            "parent_message_id": decided.parent,
            "from": analysis.from_address,
            "subject": analysis.subject,
            "reasons": reasons,
            # who is trusted (mail.trust): the sender's decision, and the review class
            "trust": None if decided.trust is None else {
                "action": decided.trust.action, "reason": decided.trust.reason,
                "flag": decided.trust.flag},
            "review_class": decided.review_class,
            "visible_text": analysis.visible_text,
            "quoted_text": analysis.quoted_text,
            "signature": analysis.signature,
        }
    _add_verdict(result, raw, config)
    if deleted := deleted_before(reader, sha256_of(raw), analysis):
        result.update(status="deleted", reasons=[*result["reasons"], deleted])
    if as_json:
        click.echo(dumps(result))
        return
    if result.get("review_class") is None:
        result.pop("review_class", None)
    if result.get("trust"):
        result["sender"] = f"{result['trust']['action']}: {result['trust']['reason']}"
    for key in ("status", "review_class", "message_id", "from", "sender", "subject", "kind",
                "direction", "post", "thread", "parent_message_id", "verdict",
                "authentication"):
        if key in result:
            value = result[key]
            if key == "status":  # explain stores nothing: say what ingest would do
                value = WOULD.get(value, value)
            if key == "thread" and value is None and result["status"] == "stored":
                value = ("(a new thread)" if result["new_thread"]
                         else "(none: kept under the post, in no thread)")
            echo(f"{key.replace('_', ' ') + ':':19}{'' if value is None else value}",
                 multiline=False)
    click.echo("why:")
    for reason in result["reasons"]:
        echo(f"  - {reason}", multiline=False)
    for key in ("visible_text", "quoted_text", "signature"):
        if result.get(key):
            echo(f"\n--- {key.replace('_', ' ')} ---\n{result[key]}")


WOULD = {"stored": "would be stored", "quarantined": "would be quarantined",
         "ignored": "would be ignored", "deleted": "would be dropped (deleted before)",
         "duplicate": "already stored (would not be stored again)"}


def _kind_and_route(analysis: Any, context: Any, config: Any) -> list[str]:
    """For a message already stored: its kind and reply address, in the words of a plan."""
    from ..ingest import recipient_groups
    from ..mail.routing import route_by_address

    reasons = (list(analysis.kind_reasons) if analysis.kind != "reply"
               else ["a human reply: no auto-reply or bounce signs"])
    route = route_by_address(recipient_groups(analysis, context.envelope), config.addresses)
    if route:
        reasons.append(f"{route.found_in} {route.reply_address.address} names post "
                       f"{route.reply_address.slug}")
    return reasons


def _add_verdict(result: dict, raw: bytes, config) -> None:
    """The spam verdict and where it came from (a spamd scan when [spam] is enabled: nothing
    is stored), and what the trusted Authentication-Results say."""
    from ..spam import judge

    judgement = judge(raw, config.spam)
    result["verdict"] = judgement.verdict.describe()
    result["authentication"] = (judgement.authentication.describe()
                                if judgement.authentication else None)
    if result.get("direction") != "in" or result["status"] not in ("stored", "quarantined"):
        return
    if judgement.forged:
        action = config.spam.dmarc_failure
        result["status"] = "spam" if action == "spam" else "quarantined"
        result["reasons"] = [*result["reasons"], "forged: DMARC failed ("
                             f"{judgement.authentication.describe()}): {action}"]
    elif judgement.verdict.is_spam:
        result["status"] = "spam"
        result["reasons"] = [*result["reasons"], "spam: kept apart (mailthreads spam list), "
                             "no post, thread or correspondent"]
