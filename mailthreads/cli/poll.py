"""``poll``: fetch replies from IMAP mailboxes, once (cron, systemd timers) or live (IDLE)."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import click

from .app import App

if TYPE_CHECKING:
    from ..config import ImapAccount
    from ..transport.imap_sync import FolderReport

from ..lock import EX_TEMPFAIL


@click.command()
@click.option("--once", "mode", flag_value="once", default=True,
              help="Poll every account once and exit (the default; for cron and timers)")
@click.option("--watch", "mode", flag_value="watch",
              help="Stay connected and file mail as it arrives (IMAP IDLE)")
@click.option("-a", "--account", "names", multiple=True, metavar="NAME",
              help="Only this [[imap]] account (repeatable). Default: all of them")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars and no summary lines; errors are still reported")
@click.pass_obj
def poll(app: App, mode: str, names: tuple[str, ...], quiet: bool) -> None:
    """Fetch new mail from the [[imap]] accounts in the config and file it.

    Reads each configured folder (default INBOX) and the Sent folder, by UID, without marking
    anything seen. Mail to a reply address, mail that answers a stored message and mail from
    a known correspondent to your address is filed; everything else is left alone. Your own
    answers in Sent join their threads. The next poll fetches only what is new.

    Exit status: 0 done; 1 a problem you must fix (login, config); 75 try again later (server
    unreachable, or another poller is running on this database).

    \b
    Examples:
        mailthreads poll
        mailthreads poll --account fastmail -q
        mailthreads poll --watch
    """
    from ..lock import LockHeld, hold, lock_path_for

    accounts = _chosen_accounts(app, names)
    try:
        with hold(lock_path_for(app.database_path, "poll"), "mailthreads poll"):
            run = _watch if mode == "watch" else _once
            code = run(app, accounts, quiet)
    except LockHeld as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EX_TEMPFAIL)
    except KeyboardInterrupt:
        click.echo("Interrupted: what was filed so far is kept.", err=True)
        sys.exit(130)
    sys.exit(code)


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


def _summary(report: FolderReport, account: ImapAccount) -> str:
    return report.line(account.after if report.role == "inbox" else "leave")


def _once(app: App, accounts: list[ImapAccount], quiet: bool) -> int:
    from ..transport.imap_poll import poll_accounts

    config = app.config
    database = app.database(create=True)
    show_bars = not quiet and sys.stderr.isatty()
    result = poll_accounts(
        database.conn, config, accounts,
        on_report=None if quiet else lambda r, a: click.echo(_summary(r, a)),
        progress=_progress_bar if show_bars else None,
    )
    database.conn.close()
    if not quiet:
        for note in result.notes:
            click.echo(f"Note: {note}", err=True)
    for failure in result.failures:
        click.echo(f"Error: {failure}", err=True)
    return result.exit_code


def _progress_bar(label: str, total: int):
    bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
    bar.__enter__()
    return bar.update, lambda: bar.__exit__(None, None, None)


def _watch(app: App, accounts: list[ImapAccount], quiet: bool) -> int:
    import threading

    from ..transport.imap_watch import Watch, watch

    config = app.config
    app.database(create=True).conn.close()  # create or migrate once, before the threads open it
    output = threading.Lock()

    def log(line: str) -> None:
        with output:
            click.echo(line, err=True)

    def report(folder_report: FolderReport, account: ImapAccount) -> None:
        if not quiet:
            with output:
                click.echo(_summary(folder_report, account))

    shared = Watch(log=log, on_report=report)

    def stop(_signum: int, _frame: object) -> None:
        shared.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not quiet:
        log(f"watching {len(accounts)} account(s); stop with Ctrl-C or SIGTERM")
    watch(app.database_path, config, accounts, shared)
    for reason in shared.fatal:
        click.echo(f"Error: {reason}", err=True)
    return 1 if shared.fatal else 0
