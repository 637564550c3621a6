"""``mailthreads poll --once``: every configured account, every folder, once.

One account's trouble does not stop the others: each failure is collected as one line and the
caller picks the exit code (1 when something needs the user, 75 when trying later may work).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from imapclient import IMAPClient

from ...config import Config, ImapAccount
from ...errors import exit_status
from .analyse import Analyser
from .connection import (
    FolderPlan,
    FolderProblem,
    ImapFailure,
    StoreBusy,
    close,
    connect,
    folders_to_poll,
)
from .sync import FolderReport, FolderSync, Progress, Rescan

LOOPBACK = {"localhost", "127.0.0.1", "::1"}
# (label, total) -> (advance, finish): the CLI draws a progress bar per folder.
ProgressFactory = Callable[[str, int], tuple[Progress, Callable[[], None]]]


@dataclass
class PollResult:
    reports: list[FolderReport] = field(default_factory=list)
    failures: list[ImapFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_status(failure.temporary for failure in self.failures)


def plan_folders(client: IMAPClient, config: Config,
                 account: ImapAccount) -> tuple[list[FolderPlan], str]:
    plans, note = folders_to_poll(client, account)
    if not config.author.addresses and any(plan.role == "sent" for plan in plans):
        plans = [plan for plan in plans if plan.role != "sent"]
        note = ("Sent folder not polled: [author] addresses is empty, so no message there can "
                "be recognised as yours")
    return plans, note


def poll_accounts(conn: sqlite3.Connection, config: Config, accounts: Iterable[ImapAccount], *,
                  on_report: Callable[[FolderReport, ImapAccount], None] | None = None,
                  progress: ProgressFactory | None = None,
                  workers: int | None = None, rescan: Rescan | None = None) -> PollResult:
    """Poll each account in turn; ``workers`` processes analyse long catch-ups (default:
    one per core); ``rescan`` reads every folder's older mail again too."""
    result = PollResult()
    analyser = Analyser(config, workers)
    try:
        for account in accounts:
            _poll_account(conn, config, account, analyser, result, on_report, progress,
                          rescan)
    finally:
        analyser.close()
    return result


def _poll_account(conn: sqlite3.Connection, config: Config, account: ImapAccount,
                  analyser: Analyser, result: PollResult,
                  on_report: Callable[[FolderReport, ImapAccount], None] | None,
                  progress: ProgressFactory | None, rescan: Rescan | None) -> None:
    try:
        client = connect(account)
    except ImapFailure as failure:
        result.failures.append(failure)
        return
    if account.security == "none" and account.host not in LOOPBACK:
        result.notes.append(f"account {account.name}: security = \"none\": the password "
                            f"went to {account.host} unencrypted")
    try:
        plans, note = plan_folders(client, config, account)
        if note:
            result.notes.append(f"account {account.name}: {note}")
        sync = FolderSync(client, conn, config, account, analyser=analyser)
        for plan in plans:
            bar = _Bar(progress, f"{account.name} {plan.folder}")
            try:
                report = sync.sync(plan, on_total=bar.start, on_message=bar.step,
                                   rescan=rescan)
            except FolderProblem as failure:
                result.failures.append(failure)
                continue
            finally:
                bar.close()
            result.reports.append(report)
            if on_report:
                on_report(report, account)
    except ImapFailure as failure:
        result.failures.append(failure)
    except sqlite3.OperationalError as error:  # nothing advanced: the next poll takes it again
        conn.rollback()
        result.failures.append(StoreBusy(account.name, f"the database: {error}"))
    finally:
        close(client)


class _Bar:
    """Progress for one folder, started once the number of new messages is known."""

    def __init__(self, factory: ProgressFactory | None, label: str):
        self.factory = factory
        self.label = label
        self.advance: Progress | None = None
        self.finish: Callable[[], None] | None = None

    def start(self, total: int) -> None:
        if self.factory is not None and total:
            self.advance, self.finish = self.factory(self.label, total)

    def step(self, count: int) -> None:
        if self.advance is not None:
            self.advance(count)

    def close(self) -> None:
        if self.finish is not None:
            self.finish()
