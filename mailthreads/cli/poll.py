"""``poll``: fetch replies from IMAP mailboxes, once (cron, systemd timers) or live (IDLE)."""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

from ..errors import EX_INTERRUPTED, exit_status
from .app import App
from .output import committed_counts, echo

if TYPE_CHECKING:
    from ..config import ImapAccount
    from ..transport.imap.sync import FolderReport, Rescan


@click.command()
@click.option("--once", "mode", flag_value="once", default=True,
              help="Poll every account once and exit (the default; for cron and timers)")
@click.option("--watch", "mode", flag_value="watch",
              help="Stay connected and file mail as it arrives (IMAP IDLE)")
@click.option("-a", "--account", "names", multiple=True, metavar="NAME",
              help="Only this [[imap]] account (repeatable). Default: all of them")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars and no summary lines; errors are still reported")
@click.option("--rescan", is_flag=True,
              help="Also read again older mail that earlier polls left alone; nothing is "
                   "stored twice and mail you deleted stays deleted")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="With --rescan: only mail that arrived on or after this day")
@click.pass_obj
def poll(app: App, mode: str, names: tuple[str, ...], quiet: bool, rescan: bool,
         since: datetime | None) -> None:
    """Fetch new mail from the [[imap]] accounts in the config and file it.

    Reads each configured folder (default INBOX) and the Sent folder, by UID, without marking
    anything seen. Mail to a reply address, mail that answers a stored message and mail from
    a known correspondent to your address is filed; everything else is left alone. Your own
    answers in Sent join their threads. The next poll fetches only what is new.

    When [addresses] or [author] addresses changed since the last poll, the older mail that
    was left alone is read again by itself (the summary says so). --rescan does that on
    demand, e.g. after a correspondent became known. A rescan never flags or moves older
    mail, and mail you deleted (quarantine delete) does not come back.

    Exit status: 0 done; 1 a problem you must fix (login, config, TLS settings); 75 try again
    later (server unreachable, or another poller is running on this database); 130 interrupted
    (what was filed is kept; the next poll continues from there). --watch stops with 0 on
    Ctrl-C or SIGTERM and says what it filed.

    \b
    Examples:
        mailthreads poll
        mailthreads poll --account fastmail -q
        mailthreads poll --watch
        mailthreads poll --rescan --since 2026-11-01
    """
    from ..lock import hold, lock_path_for

    accounts = _chosen_accounts(app, names)
    asked = _asked_rescan(rescan, since)
    try:  # a LockHeld (another poller) goes to the top-level handler: exit 75
        with hold(lock_path_for(app.database_path, "poll"), "mailthreads poll"):
            run = _watch if mode == "watch" else _once
            code = run(app, accounts, quiet, asked)
    except KeyboardInterrupt:  # before polling started, or after it ended
        click.echo("Interrupted: what was filed so far is kept.", err=True)
        raise click.exceptions.Exit(EX_INTERRUPTED) from None
    raise click.exceptions.Exit(code)


def _chosen_accounts(app: App, names: tuple[str, ...]) -> list[ImapAccount]:
    accounts = list(app.config.imap)
    if not accounts:
        raise click.ClickException(f"no [[imap]] accounts in {app.config_path}: add one (see "
                                   "the example config) or name a config with -c")
    if not names:
        return accounts
    known = {account.name: account for account in accounts}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.ClickException(f"no [[imap]] account named {unknown[0]!r}; the config has "
                                   + ", ".join(sorted(known)))
    return [known[name] for name in dict.fromkeys(names)]


def _asked_rescan(rescan: bool, since: datetime | None) -> Rescan | None:
    from ..transport.imap.sync import Rescan

    if since is not None and not rescan:
        raise click.UsageError("--since works only with --rescan")
    return Rescan(since.date() if since else None) if rescan else None


def _summary(report: FolderReport, account: ImapAccount) -> str:
    return report.line(account.after if report.role == "inbox" else "leave")


def _once(app: App, accounts: list[ImapAccount], quiet: bool, rescan: Rescan | None) -> int:
    from ..db import store
    from ..outgoing.notify import run_due
    from ..transport.imap.poll import poll_accounts

    config = app.config
    database = app.database(create=True)
    before = store.last_delivery_id(database.conn)
    show_bars = not quiet and sys.stderr.isatty()
    try:
        result = poll_accounts(
            database.conn, config, accounts,
            on_report=None if quiet else lambda r, a: echo(_summary(r, a)),
            progress=_progress_bar if show_bars else None,
            rescan=rescan,
        )
    except KeyboardInterrupt:
        # A batch cut short is not checkpointed either: the next poll fetches it again.
        database.conn.rollback()
        filed = committed_counts(store.delivery_counts_since(database.conn, before))
        click.echo(f"Interrupted: {filed}; the next poll continues from there.", err=True)
        raise click.exceptions.Exit(EX_INTERRUPTED) from None
    # After the batches' commits: a [notify] command never holds up filing.
    run_due(database.conn, config.notify)
    database.conn.close()
    if not quiet:
        for note in result.notes:
            echo(f"Note: {note}", err=True)
    for failure in result.failures:
        echo(f"Error: {failure}", err=True)
    return result.exit_code


def _progress_bar(label: str, total: int):
    bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
    bar.__enter__()
    return bar.update, lambda: bar.__exit__(None, None, None)


def _watch(app: App, accounts: list[ImapAccount], quiet: bool, rescan: Rescan | None) -> int:
    import threading

    from ..db import store
    from ..outgoing.notify import Runner
    from ..transport.imap.watch import Watch, watch

    config = app.config
    database = app.database(create=True)  # create or migrate once, before the threads open it
    before = store.last_delivery_id(database.conn)
    database.conn.close()
    output = threading.Lock()

    def log(line: str) -> None:
        with output:
            echo(line, err=True)

    def report(folder_report: FolderReport, account: ImapAccount) -> None:
        if not quiet:
            with output:
                echo(_summary(folder_report, account))

    shared = Watch(log=log, on_report=report, rescan=rescan)
    stopped_by: list[str] = []

    def stop(signum: int, _frame: object) -> None:
        stopped_by.append(signal.Signals(signum).name)
        shared.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not quiet:
        log(f"watching {len(accounts)} account(s); stop with Ctrl-C or SIGTERM")
    notifier = Runner(app.database_path, config.notify).start() if config.notify.command \
        else None  # looks every CHECK_SECONDS
    watch(app.database_path, config, accounts, shared)
    if notifier:
        notifier.stop()
    if stopped_by and not quiet:
        filed = committed_counts(store.delivery_counts_since(app.reader(), before))
        log(f"stopped ({stopped_by[0]}): {filed} while watching")
    for reason in shared.fatal:
        echo(f"Error: {reason}", err=True)
    return exit_status([False] * len(shared.fatal))  # each fatal failure needs a person
