"""``forget`` (a correspondent, on request) and ``digest`` (new replies, by mail)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from .app import App
from .output import confirm, dumps, echo

if TYPE_CHECKING:
    from ..db.store import Forgettable


@click.command(name="forget")
@click.argument("address")
@click.option("--dry-run", is_flag=True, help="List what would go, change nothing")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True, help="Output what goes (or went) as JSON")
@click.pass_obj
def forget(app: App, address: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Forget a correspondent: everything of theirs, for good, and nothing left on disk.

    ADDRESS names the person: all their addresses go (merged ones too), their discussions
    whole (your answers quote them), their other mail, unsent answers, quarantined mail and
    deliveries; then the freed pages are zeroed, the full-text index merged and the
    write-ahead log emptied. A tombstone (hashes only) keeps a rescan from bringing it back.
    The correspondent's row stays, nameless and marked forgotten: signed reply addresses
    name its id, which must never be given to someone new.

    \b
    Examples:
        mailthreads forget jane@example.com --dry-run
        mailthreads forget jane@example.com --yes
    """
    from ..db import store

    conn = app.database().conn
    found = store.forgettable(conn, address.strip())
    if found.empty:
        raise click.ClickException(f"nothing is stored for {address}: see "
                                   "'mailthreads correspondents'")
    if dry_run:
        _describe(found, as_json, "Would forget", err=False)
        return
    if not yes:
        _describe(found, False, "Forget", err=True)
        confirm(f"Forget {', '.join(found.addresses)} and all of the above? This cannot be "
                "undone")
    started = time.monotonic()
    store.overwrite_deleted_content(conn)
    with conn:
        messages = store.forget_person(conn, found, "forget")
    wiped = store.wipe_deleted_content(conn)
    seconds = time.monotonic() - started
    if as_json:
        click.echo(dumps({**found.as_dict(), "messages_deleted": messages,
                          "log_emptied": wiped, "seconds": round(seconds, 3)}))
    else:
        echo(f"Forgot {', '.join(found.addresses)}: {len(found.threads)} threads, {messages} "
             f"messages, {len(found.outbox)} other unsent answers, {len(found.quarantine)} "
             f"quarantined, {len(found.deliveries)} other deliveries, in {seconds:.2f} s.",
             multiline=False)
    if not wiped:
        from .triage import PURGE_BUSY

        click.echo(PURGE_BUSY, err=True)


def _describe(found: Forgettable, as_json: bool, verb: str, *, err: bool) -> None:
    if as_json:
        click.echo(dumps(found.as_dict()))
        return
    names = [p["name"] for p in found.correspondents if p["name"]]
    echo(f"{verb} {', '.join(found.addresses)}"
         + (f" ({', '.join(names)})" if names else "") + ":", multiline=False, err=err)
    for thread in found.threads:
        echo(f"  thread {thread['id']} about {thread['post']} ({thread['messages']} messages)",
             multiline=False, err=err)
    for label, ids in (("other messages", found.other_messages),
                       ("other unsent answers", found.outbox),
                       ("quarantine entries", found.quarantine),
                       ("other deliveries", found.deliveries)):
        if ids:
            echo(f"  {label}: {', '.join(map(str, ids))}", multiline=False, err=err)


@click.command(name="digest")
@click.option("--dry-run", is_flag=True, help="Print the digest instead of mailing it")
@click.pass_obj
def digest(app: App, dry_run: bool) -> None:
    """Mail yourself the replies that arrived since the last digest (for cron).

    Lists each new reply that came by SMTP or IMAP, grouped by discussion, with its visible
    text, and sends it to [notify] digest through the [outgoing] relay. Nothing is listed
    twice, and nothing is sent when nothing is new. A relay that is down (exit 75) costs
    nothing: the next run sends the same replies.

    \b
    Examples:
        mailthreads digest
        mailthreads digest --dry-run
        # crontab: every morning at 7
        0 7 * * * mailthreads digest
    """
    from ..lock import hold, lock_path_for
    from ..outgoing import digest as digests

    config = app.config
    found = digests.problems(config)
    if found and not dry_run:
        raise click.ClickException(found[0])
    conn = app.database().conn
    with hold(lock_path_for(app.database_path, "digest"), "mailthreads digest"):
        replies = digests.pending(conn)
        if not replies:
            click.echo("No new replies since the last digest: nothing sent.")
            return
        if dry_run:
            echo(digests.text(replies))
            return
        sent = digests.send(conn, config, replies)
    click.echo(f"Mailed {len(replies)} new replies to {config.notify.digest} "
               f"(relay {sent.relay}: {sent.response}).")
