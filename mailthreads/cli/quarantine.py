"""``quarantine``: messages that could not be parsed or routed, kept raw with the reason."""

from __future__ import annotations

import click

from .app import App
from .output import chosen_format, echo, emit, output_options, show_kept_message


@click.group()
def quarantine() -> None:
    """Review, release or delete quarantined messages."""


@quarantine.command(name="list")
@output_options
@click.pass_obj
def quarantine_list(app: App, as_json: bool, as_nl: bool, as_csv: bool) -> None:
    """List quarantined messages with the reason, and the mail held there for your decision.

    Class: 'quarantine' (could not be parsed or routed, or forged), 'unknown_post' (a reply
    to a post not added yet), 'blocked' (a blocked sender's): 'mailthreads review' lists the
    same with the command that decides each.

    \b
    Example:
        mailthreads quarantine list
    """
    from ..db import store

    rows = store.list_quarantine(app.reader())
    fmt = chosen_format(as_json, as_nl, as_csv)
    if fmt == "table":
        for row in rows:
            row["reason_class"] = row["reason_class"] or "quarantine"
    emit(rows, fmt,
         ["id", "reason_class", "created_at", "source", "from_address", "subject", "reason"],
         headers={"reason_class": "class", "created_at": "since", "from_address": "from"},
         shrink=[("subject", 12), ("from_address", 12), ("reason", 24), ("subject", 6),
                 ("from_address", 8), ("reason", 12)],
         empty="The quarantine is empty.")


@quarantine.command(name="show")
@click.argument("entry_id", metavar="ID", type=int)
@click.option("--raw", is_flag=True, help="Print the raw message bytes")
@click.option("--json", "as_json", is_flag=True, help="Output JSON (without the raw bytes)")
@click.pass_obj
def quarantine_show(app: App, entry_id: int, raw: bool, as_json: bool) -> None:
    """Show a quarantined message: the reason, its envelope and the start of the raw message.

    \b
    Examples:
        mailthreads quarantine show 2
        mailthreads quarantine show 2 --raw > message.eml
    """
    from ..db import store

    try:
        entry = store.get_quarantine(app.reader(), entry_id)
    except store.NotFound as error:
        raise click.ClickException(str(error)) from None
    show_kept_message(entry, raw, as_json, ("id", "reason", "source", "origin", "from_address",
                                            "subject", "envelope_from", "envelope_to",
                                            "created_at", "raw_sha256"))


@quarantine.command(name="release")
@click.argument("entry_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--post", "post_hint", metavar="SLUG",
              help="File the message under this post if it still has no route")
@click.pass_obj
def quarantine_release(app: App, entry_ids: tuple[int, ...], post_hint: str | None) -> None:
    """Run quarantined messages through the pipeline again (after a fix, or with --post).

    Released messages leave the quarantine; one that fails again stays under the same id and
    date, with the new reason. (A message stored later by any other way, such as ingesting it
    again after `posts reopen`, leaves the quarantine too.)

    \b
    Examples:
        mailthreads quarantine release 2
        mailthreads quarantine release 2 3 --post why-i-blog
    """
    from ..db import store
    from ..ingest import quarantine as release_module

    db = app.database()
    for entry_id in entry_ids:
        try:
            outcome = release_module.release(db.conn, app.config, entry_id, post_hint)
        except store.NotFound as error:
            raise click.ClickException(str(error)) from None
        where = f" in thread {outcome.thread}" if outcome.thread else ""
        echo(f"{entry_id}: {outcome.status}{where}"
                   + (f" ({outcome.reasons[-1]})" if outcome.status == "quarantined" else ""))


@quarantine.command(name="delete")
@click.argument("entry_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.pass_obj
def quarantine_delete(app: App, entry_ids: tuple[int, ...]) -> None:
    """Delete quarantined messages for good (the raw bytes too, unless stored elsewhere).

    A tombstone (the message's SHA-256 hashes, no content) stays, so that a poll that reads
    a folder again, or a copy of the message, does not bring it back.

    \b
    Example:
        mailthreads quarantine delete 2 3
    """
    from ..db import store
    from ..ingest import quarantine as quarantine_module

    db = app.database()
    with db.conn:
        for entry_id in entry_ids:
            try:
                quarantine_module.delete(db.conn, app.config, entry_id)
            except store.NotFound as error:
                raise click.ClickException(str(error)) from None
    click.echo(f"Deleted {', '.join(map(str, entry_ids))}")
