"""``mailthreads poll --watch``: stay connected and file mail as it arrives.

IMAP IDLE watches one selected folder per connection, so every (account, folder) gets its own
thread, connection and database connection. Each one catches up by UID whenever it
(re)connects, whenever the server announces new mail, and whenever it renews IDLE (at least
every 29 minutes: RFC 2177 servers may drop an idle client after 30). A dropped connection is
retried with exponential backoff; a server without IDLE is polled every ``poll_interval``.
Only a problem the user must fix (a rejected login, a missing folder) stops the watch.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

from ...config import Config, ImapAccount
from ...db import open_database
from .connection import (
    NETWORK_ERRORS,
    ConnectionLost,
    FolderPlan,
    ImapFailure,
    close,
    connect,
    describe,
)
from .poll import plan_folders
from .sync import FolderReport, FolderSync, Rescan

MAX_IDLE = 29 * 60.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
# How often an idling thread looks at the stop flag: the bound on how long SIGTERM takes.
STOP_CHECK = 0.5


@dataclass
class Watch:
    """Shared by the watcher threads: the stop flag, the output, and why the watch ended."""

    log: Callable[[str], None]
    on_report: Callable[[FolderReport, ImapAccount], None]
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[ImapFailure | str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rescan: Rescan | None = None  # poll --watch --rescan: each folder's first catch-up

    def give_up(self, reason: ImapFailure | str) -> None:
        with self.lock:
            self.fatal.append(reason)
        self.stop.set()


def watch(database: Path, config: Config, accounts: list[ImapAccount], shared: Watch) -> None:
    """Run until ``shared.stop`` is set (by a signal handler, or by a fatal problem)."""
    threads = [threading.Thread(target=_account_thread, args=(database, config, account, shared),
                                name=f"imap {account.name}", daemon=True)
               for account in accounts]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=STOP_CHECK)


def _account_thread(database: Path, config: Config, account: ImapAccount,
                    shared: Watch) -> None:
    """Find the account's folders (which needs a login), then watch each in its own thread."""
    backoff = Backoff()
    while not shared.stop.is_set():
        try:
            client = connect(account)
        except ImapFailure as failure:
            if not failure.temporary:
                shared.give_up(failure)
                return
            shared.log(f"{failure}; trying again in {backoff.delay:.0f} s")
            shared.stop.wait(backoff.next())
            continue
        try:
            plans, note = plan_folders(client, config, account)
        except NETWORK_ERRORS as error:
            shared.log(f"account {account.name}: connection lost: {describe(error)}")
            shared.stop.wait(backoff.next())
            continue
        finally:
            close(client)
        if note:
            shared.log(f"account {account.name}: {note}")
        break
    else:
        return
    watchers = [threading.Thread(target=FolderWatcher(database, config, account, plan,
                                                      shared).run,
                                 name=f"imap {account.name} {plan.folder}", daemon=True)
                for plan in plans]
    for thread in watchers:
        thread.start()
    for thread in watchers:
        thread.join()


class Backoff:
    def __init__(self) -> None:
        self.delay = BACKOFF_FIRST

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, BACKOFF_MAX)
        return delay

    def reset(self) -> None:
        self.delay = BACKOFF_FIRST


class FolderWatcher:
    def __init__(self, database: Path, config: Config, account: ImapAccount, plan: FolderPlan,
                 shared: Watch):
        self.database = database
        self.config = config
        self.account = account
        self.plan = plan
        self.shared = shared
        self.backoff = Backoff()
        self.rescan = shared.rescan  # until one catch-up got through

    def run(self) -> None:
        try:
            db = open_database(self.database)
        except Exception as error:  # noqa: BLE001 - reported, and the watch ends
            self.shared.give_up(f"cannot open the database: {error}")
            return
        try:
            while not self.shared.stop.is_set():
                self._connected_session(db.conn)
        except Exception as error:  # noqa: BLE001 - a bug must end the watch, not hang it
            self.shared.give_up(f"account {self.account.name} {self.plan.folder}: "
                                f"{type(error).__name__}: {error}")
        finally:
            db.conn.close()

    def _connected_session(self, conn: sqlite3.Connection) -> None:
        """One connection's life: connect, catch up, wait for news, catch up again..."""
        stop = self.shared.stop
        client: IMAPClient | None = None
        try:
            client = connect(self.account)
            sync = FolderSync(client, conn, self.config, self.account, should_stop=stop.is_set)
            self._catch_up(sync)
            self.backoff.reset()  # reset only once a whole catch-up worked
            idle = client.has_capability("IDLE")
            while not stop.is_set():
                if idle:
                    self._idle(client)
                else:
                    stop.wait(self.account.poll_interval)
                    if stop.is_set():
                        break
                if not stop.is_set():
                    self._catch_up(sync)
        except ImapFailure as failure:
            if not failure.temporary:
                self.shared.give_up(failure)
                return
            self._pause(str(failure))
        except sqlite3.OperationalError as error:  # e.g. locked for longer than the timeout
            conn.rollback()
            self._pause(f"account {self.account.name}: database busy: {error}")
        finally:
            if client is not None:
                close(client)

    def _pause(self, text: str) -> None:
        delay = self.backoff.next()
        self.shared.log(f"{text}; reconnecting in {delay:.0f} s")
        self.shared.stop.wait(delay)

    def _catch_up(self, sync: FolderSync) -> None:
        report = sync.sync(self.plan, rescan=self.rescan)
        self.rescan = None
        if report.new or report.rescanned:
            self.shared.on_report(report, self.account)

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until the server reports new mail, renewal is due, or we are told to stop."""
        stop = self.shared.stop
        renew_at = time.monotonic() + min(self.account.idle_timeout, MAX_IDLE)
        try:
            client.idle()
            closed = False
            while not stop.is_set():
                remaining = renew_at - time.monotonic()
                if remaining <= 0:
                    break
                responses = client.idle_check(timeout=min(remaining, STOP_CHECK))
                if any(_says_bye(r) for r in responses):
                    closed = True
                    break
                if any(_new_mail(r) for r in responses):
                    break
            if closed:
                raise ConnectionLost(self.account.name, f"the server closed the connection "
                                     f"in {self.plan.folder}")
            client.idle_done()
        except NETWORK_ERRORS as error:
            raise ConnectionLost(self.account.name, f"connection lost while idling in "
                                 f"{self.plan.folder}: {describe(error)}") from None


def _new_mail(response: tuple) -> bool:
    return len(response) >= 2 and isinstance(response[0], int) and response[1] == b"EXISTS"


def _says_bye(response: tuple) -> bool:
    return bool(response) and response[0] == b"BYE"
