"""``correspondents``: who writes to you, and the "same person?" decisions only you can make.

Mail that claims a correspondent's thread (their signed reply address, or an answer to your
message to them) from an address that is not theirs starts a thread of its own, marked "same
person as Jane <jane@…>?". Nothing is merged until you say so: ``merge`` makes the two one
person for good, ``separate`` keeps them apart and clears the mark. ``mailthreads review``
lists these threads together with the quarantine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .app import App
from .output import chosen_format, dumps, echo, emit, output_options
from .review import person

if TYPE_CHECKING:
    from ..db.store import Thread


@click.group(invoke_without_command=True)
@click.pass_context
def correspondents(ctx: click.Context) -> None:
    """The people who write to you, and your "same person?" decisions about new addresses.

    Alone, the same as 'correspondents list'. 'mailthreads review' lists the threads that wait
    for a decision.

    \b
    Examples:
        mailthreads correspondents
        mailthreads correspondents merge 5
        mailthreads correspondents separate 6
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(correspondents_list)


@correspondents.command(name="list")
@output_options
@click.pass_obj
def correspondents_list(app: App, as_json: bool = False, as_nl: bool = False,
                        as_csv: bool = False) -> None:
    """List correspondents with their addresses and number of discussions.

    \b
    Examples:
        mailthreads correspondents list
        mailthreads correspondents list --json
    """
    from ..db import store

    emit(store.list_correspondents(app.reader()), chosen_format(as_json, as_nl, as_csv),
         ["id", "name", "addresses", "threads", "created_at"], empty="No correspondents yet.")


@correspondents.command(name="merge")
@click.argument("thread_id", metavar="THREAD", type=int)
@click.option("--json", "as_json", is_flag=True, help="Output what was merged as JSON")
@click.pass_obj
def correspondents_merge(app: App, thread_id: int, as_json: bool) -> None:
    """Yes, the same person: THREAD's correspondent joins the one it is marked as.

    Their addresses become one person's, for good; THREAD's messages are filed into that
    person's thread about the same post (or THREAD becomes theirs if there is none), and so
    are their other threads. From then on, 'reply' answers whichever of the addresses wrote
    last in the thread.

    \b
    Example:
        mailthreads correspondents merge 5
    """
    from ..db import store

    conn = app.database().conn
    thread = _awaiting(conn, thread_id)
    into = thread.possibly_same_as
    addresses = store.correspondent_addresses(conn, thread.correspondent_id)
    with conn:
        joined = store.merge_correspondent(conn, thread.correspondent_id, into)
    result = {"thread": thread_id, "correspondent": into, "addresses": addresses,
              "threads": joined}
    if as_json:
        click.echo(dumps(result))
        return
    echo(f"{', '.join(addresses)}: now {_label(conn, into)}, for good; their messages "
         f"are in thread {', '.join(map(str, joined))}.", multiline=False)


@correspondents.command(name="separate")
@click.argument("thread_id", metavar="THREAD", type=int)
@click.option("--json", "as_json", is_flag=True, help="Output the decision as JSON")
@click.pass_obj
def correspondents_separate(app: App, thread_id: int, as_json: bool) -> None:
    """No, someone else: THREAD stays apart and loses its "same person?" mark.

    Later mail from THREAD's correspondent keeps going to their own threads.

    \b
    Example:
        mailthreads correspondents separate 5
    """
    from ..db import store

    conn = app.database().conn
    thread = _awaiting(conn, thread_id)
    with conn:
        store.clear_possibly_same(conn, thread_id)
    if as_json:
        click.echo(dumps({"thread": thread_id, "correspondent": thread.correspondent_id,
                          "not_same_as": thread.possibly_same_as}))
        return
    echo(f"Thread {thread_id} stays apart: {thread.correspondent_address} is not "
         f"{_label(conn, thread.possibly_same_as)}.", multiline=False)


def _label(conn: Any, correspondent_id: int) -> str:
    from ..db import store

    found = store.correspondent(conn, correspondent_id)
    return person(found["name"], found["address"])


def _awaiting(conn: Any, thread_id: int) -> Thread:
    """The thread, if it waits for a same-person decision; else a one-line error."""
    from ..db import store

    try:
        thread = store.get_thread(conn, thread_id)
    except store.NotFound as error:
        raise click.ClickException(f"{error}: see 'mailthreads threads --all'") from None
    if thread.possibly_same_as is None:
        raise click.ClickException(f"thread {thread_id} is not waiting for a same-person "
                                   "decision: see 'mailthreads review'")
    return thread
