"""``spam`` and ``rescan``: mail kept apart by the spam verdict (issue 12)."""

from __future__ import annotations

import click

from .app import App
from .output import chosen_format, dumps, echo, emit, output_options, show_kept_message


@click.group()
def spam() -> None:
    """List, show, release or delete the messages kept apart as spam.

    Spam never becomes a post, a correspondent or a thread, and never needs a reply.

    \b
    Examples:
        mailthreads spam list
        mailthreads spam release 4
    """


@spam.command(name="list")
@output_options
@click.pass_obj
def spam_list(app: App, as_json: bool, as_nl: bool, as_csv: bool) -> None:
    """List the messages kept as spam, with the score and where the verdict came from.

    \b
    Example:
        mailthreads spam list --json
    """
    from ..db import store

    emit(store.list_spam(app.reader()), chosen_format(as_json, as_nl, as_csv),
         ["id", "created_at", "score", "from_address", "subject", "verdict_source"],
         empty="No spam.")


@spam.command(name="show")
@click.argument("entry_id", metavar="ID", type=int)
@click.option("--raw", is_flag=True, help="Print the raw message bytes")
@click.option("--json", "as_json", is_flag=True, help="Output JSON (without the raw bytes)")
@click.pass_obj
def spam_show(app: App, entry_id: int, raw: bool, as_json: bool) -> None:
    """Show a spam message: its verdict, the rules that hit and the start of the message.

    \b
    Examples:
        mailthreads spam show 2
        mailthreads spam show 2 --raw > message.eml
    """
    from ..db import store

    try:
        entry = store.get_spam(app.reader(), entry_id)
    except store.NotFound as error:
        raise click.ClickException(str(error)) from None
    if not as_json:
        entry["reasons"] = ", ".join(entry["reasons"])
    show_kept_message(entry, raw, as_json, ("id", "score", "threshold", "verdict_source",
                                            "reasons", "source", "origin", "from_address",
                                            "subject", "envelope_from", "envelope_to",
                                            "created_at", "raw_sha256"))


@spam.command(name="release")
@click.argument("entry_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--post", "post_hint", metavar="SLUG",
              help="File the message under this post if it has no route of its own")
@click.pass_obj
def spam_release(app: App, entry_ids: tuple[int, ...], post_hint: str | None) -> None:
    """File messages wrongly kept as spam as normal replies (no scan this time).

    \b
    Examples:
        mailthreads spam release 4
        mailthreads spam release 4 5 --post why-i-blog
    """
    from ..db import store
    from ..ingest import spam as spam_module

    db = app.database()
    for entry_id in entry_ids:
        try:
            outcome = spam_module.release(db.conn, app.config, entry_id, post_hint)
        except store.NotFound as error:
            raise click.ClickException(str(error)) from None
        where = f" in thread {outcome.thread}" if outcome.thread else ""
        echo(f"{entry_id}: {outcome.status}{where}"
             + (f" ({outcome.reasons[-1]})" if outcome.status == "quarantined" else ""))


@spam.command(name="delete")
@click.argument("entry_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.pass_obj
def spam_delete(app: App, entry_ids: tuple[int, ...]) -> None:
    """Delete spam for good. A tombstone (hashes, no content) keeps it from coming back.

    \b
    Example:
        mailthreads spam delete 4 5
    """
    from ..db import store
    from ..ingest import spam as spam_module

    db = app.database()
    with db.conn:
        for entry_id in entry_ids:
            try:
                spam_module.delete(db.conn, app.config, entry_id)
            except store.NotFound as error:
                raise click.ClickException(str(error)) from None
    click.echo(f"Deleted {', '.join(map(str, entry_ids))}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Output a JSON object")
@click.pass_obj
def rescan(app: App, as_json: bool) -> None:
    """Scan the messages filed while the spam scanner was off or down.

    Spam found now leaves its thread for the spam list. Exits 75 (try again later) when the
    scanner is still down.

    \b
    Example:
        mailthreads rescan
    """
    from ..errors import EX_TEMPFAIL
    from ..ingest import spam as spam_module

    if not app.config.spam.enabled:
        raise click.ClickException("the spam scanner is off: set enabled = true under [spam] "
                                   f"in {app.config.path or 'the config file'}")
    db = app.database()
    counts = {"ham": 0, "spam": 0, "unscanned": 0}
    down = None
    for rescanned in spam_module.rescan(db.conn, app.config):
        counts[rescanned.verdict.label] += 1
        if rescanned.stopped:
            down = rescanned.verdict.reasons[0] if rescanned.verdict.reasons else "scanner down"
    if as_json:
        click.echo(dumps({**counts, "scanner_down": down}))
    else:
        click.echo(f"{counts['ham'] + counts['spam']} scanned: {counts['ham']} ham, "
                   f"{counts['spam']} spam (see mailthreads spam list)"
                   + (f"; {counts['unscanned'] - bool(down)} refused by spamd, still unscanned"
                      if counts["unscanned"] > bool(down) else ""))
    if down:
        echo(f"Stopped: {down}. Run mailthreads rescan again later.", err=True)
        raise click.exceptions.Exit(EX_TEMPFAIL)
