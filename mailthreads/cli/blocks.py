"""``block``, ``unblock``, ``blocks``: senders whose mail is kept raw but never shown.

A blocked sender's mail is filed quietly: its raw bytes are kept (in the quarantine, class
``blocked``, which ``review`` lists only with ``--all``), and no post, correspondent or thread
is made for it. Unblocking affects future mail only; ``review accept ID`` (or ``quarantine
release ID``) files one that was held back.
"""

from __future__ import annotations

import click

from .app import App
from .output import chosen_format, dumps, echo, emit, output_options


def _pattern(value: str) -> str:
    from ..mail.trust import normalise_pattern

    try:
        return normalise_pattern(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@click.argument("patterns", metavar="ADDRESS|@DOMAIN...", nargs=-1, required=True,
                callback=lambda ctx, param, values: tuple(map(_pattern, values)))
@click.option("--json", "as_json", is_flag=True, help="Output what was blocked as JSON")
@click.pass_obj
def block(app: App, patterns: tuple[str, ...], as_json: bool) -> None:
    """Block senders: their future mail is kept raw but never shown or answered.

    An address blocks that address; @DOMAIN blocks the domain and its subdomains. The From
    address and the envelope sender are both checked. Blocking comes first, before any other
    rule (see the README, "Who is trusted").

    \b
    Examples:
        mailthreads block spammer@example.net
        mailthreads block @pills.example
    """
    from ..db import store

    db = app.database()  # a block needs your database: a mistyped -d must not make one
    with db.conn:
        added = [store.add_block(db.conn, pattern) for pattern in patterns]
    if as_json:
        click.echo(dumps([{"pattern": pattern, "added": new}
                          for pattern, new in zip(patterns, added, strict=True)]))
        return
    for pattern, new in zip(patterns, added, strict=True):
        echo(f"{pattern}: {'blocked' if new else 'already blocked'}", multiline=False)


@click.command()
@click.argument("patterns", metavar="ADDRESS|@DOMAIN...", nargs=-1, required=True,
                callback=lambda ctx, param, values: tuple(map(_pattern, values)))
@click.pass_obj
def unblock(app: App, patterns: tuple[str, ...]) -> None:
    """Unblock senders: their future mail is filed again.

    Mail held back while they were blocked stays where it is: 'mailthreads review --all'
    lists it, 'mailthreads review accept ID' files it.

    \b
    Examples:
        mailthreads unblock spammer@example.net
        mailthreads unblock @pills.example
    """
    from ..db import store

    db = app.database()
    with db.conn:
        removed = [store.remove_block(db.conn, pattern) for pattern in patterns]
    for pattern, gone in zip(patterns, removed, strict=True):
        if gone:
            echo(f"{pattern}: unblocked", multiline=False)
    if not all(removed):
        raise click.ClickException("not blocked: "
                                   + ", ".join(p for p, gone in zip(patterns, removed,
                                                                    strict=True) if not gone))


@click.command()
@output_options
@click.pass_obj
def blocks(app: App, as_json: bool, as_nl: bool, as_csv: bool) -> None:
    """List blocked addresses and domains.

    \b
    Examples:
        mailthreads blocks
        mailthreads blocks --json
    """
    from ..db import store

    emit(store.list_blocks(app.reader()), chosen_format(as_json, as_nl, as_csv),
         ["pattern", "created_at"], empty="Nobody is blocked.")
