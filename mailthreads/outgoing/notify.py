"""The [notify] command: run once per new human reply that came by SMTP or IMAP.

The pipeline only queues the reply (``store.queue_notification``, in the transaction that
files it); this module runs the command later, outside any filing transaction, with a JSON
description of the reply on standard input. A run that fails (non-zero exit, a timeout, a
command that cannot start) is logged and tried again later, with a growing pause, up to
``MAX_ATTEMPTS`` times. Each run first takes a lease on its notification (``next_attempt_at``
moved past the run's timeout), so two processes never run the command for the same reply at
once, and a process killed mid-run leaves it to be tried again when the lease ends.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import Notify
from ..db import store
from ..timestamps import iso

log = logging.getLogger("mailthreads.notify")

MAX_ATTEMPTS = 8  # 1, 2, 4... minutes apart: about two hours in all
MAX_AGE_SECONDS = 24 * 3600.0
FIRST_RETRY_SECONDS = 60.0
LONGEST_RETRY_SECONDS = 3600.0
# A runner thread also looks for due retries this often without being woken.
CHECK_SECONDS = 30.0
BATCH = 20


def description(row: dict[str, Any]) -> dict[str, Any]:
    """What the command reads on standard input, as JSON."""
    return {"thread": row["thread"], "post": row["post"], "from": row["from_address"],
            "from_name": row["from_name"] or "", "subject": row["subject"] or "",
            "visible_text": row["visible_text"] or "", "received_at": row["received_at"]}


def run_due(conn: sqlite3.Connection, notify: Notify) -> int:
    """Run the command for every notification due now; each result is committed on its own.
    Returns how many runs succeeded. Notifications queued more than ``MAX_AGE_SECONDS`` ago
    (while no command was configured, say) are settled unrun: old news."""
    if not notify.command:
        return 0
    if store.next_notification_attempt(conn) is not None:  # something is pending
        with conn:
            store.expire_notifications(conn, _at(-MAX_AGE_SECONDS))
    succeeded = 0
    while rows := store.due_notifications(conn, _at(0), BATCH):
        for row in rows:
            with conn:
                claimed = store.claim_notification(conn, row["id"], _at(0),
                                                   _at(notify.timeout + 60))
            if claimed:
                succeeded += _run_one(conn, notify, row)
    return succeeded


def _run_one(conn: sqlite3.Connection, notify: Notify, row: dict[str, Any]) -> int:
    error = _run(notify, description(row))
    attempts = row["attempts"] + 1
    retry_at = None
    if error is not None and attempts < MAX_ATTEMPTS:
        retry_at = _at(min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), LONGEST_RETRY_SECONDS))
    if error is None:
        log.info("notified thread=%s notification=%s", row["thread"], row["id"])
    elif retry_at:
        log.warning("notify command failed (attempt %d, retried after %s) thread=%s: %s",
                    attempts, retry_at, row["thread"], error)
    else:
        log.error("notify command failed %d times, giving up on thread=%s: %s",
                  attempts, row["thread"], error)
    with conn:
        store.finish_notification(conn, row["id"], error=error, retry_at=retry_at)
    return error is None


def _run(notify: Notify, payload: dict[str, Any]) -> str | None:
    """None when the command succeeded, else why not (one line)."""
    try:
        done = subprocess.run(notify.command or "", shell=True, timeout=notify.timeout,
                              input=json.dumps(payload, ensure_ascii=False).encode(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        return f"timed out after {notify.timeout:g} s"
    except OSError as error:
        return f"cannot run it: {error}"
    if done.returncode != 0:
        said = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
        return f"exit status {done.returncode}" + (f": {said}" if said else "")
    return None


def _at(seconds_from_now: float) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds_from_now))


class Runner:
    """A thread with its own connection that runs due notifications when woken (after a
    filing commit) and every ``CHECK_SECONDS`` (retries), so that no command ever runs in, or
    holds up, the filing loop."""

    def __init__(self, database_path: Path, notify: Notify):
        self._database_path = database_path
        self._notify = notify
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mailthreads-notify",
                                        daemon=True)

    def start(self) -> Runner:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the run at hand (at most its command's timeout)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(self._notify.timeout + 5 if timeout is None else timeout)

    def _loop(self) -> None:
        from ..db import open_database

        conn = open_database(self._database_path, durable=False, create=False).conn
        try:
            while not self._stop.is_set():
                try:
                    run_due(conn, self._notify)
                except sqlite3.Error as error:  # locked too long, disk full: try again later
                    log.error("cannot run notifications now, will retry: %s", error)
                self._wake.wait(CHECK_SECONDS)
                self._wake.clear()
        finally:
            conn.close()
