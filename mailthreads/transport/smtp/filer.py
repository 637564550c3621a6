"""The filer: a second process that files the messages the listener has accepted.

The listener only commits raw bytes and a pending delivery before it answers ``250``; parsing,
classifying and threading happen here (``ingest.filer.Filer``, the filing path of every
source), off the accepting path and on the second core. Because
the listener's commit is the durability point, this process can die at any moment (every
filing is one transaction): whatever is still pending is filed when it starts again, which is
also how messages accepted before a crash are finished.

The listener starts it as ``python -m mailthreads.transport.smtp.filer`` and wakes it through a
pipe after each commit; the end of the pipe (the listener exited or was killed) tells it to
file what is left and stop.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pickle
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ... import db
from ...config import Config
from ...db import store
from ...ingest.filer import Filed, Filer
from ...outgoing.notify import Runner
from .commit import WriteTurn
from .log import LOGGER, configure, fields

log = logging.getLogger(LOGGER)

# Also look for pending deliveries this often without a wake-up (other writers, retries).
POLL_SECONDS = 5.0
RETRY_SECONDS = 2.0
# At shutdown, file what is pending for at most this long; the rest is filed at the next start.
DRAIN_SECONDS = 20.0
# Filing can lag behind; accepting is what clients wait on. Yield the CPU to the listener.
NICENESS = 10
# Messages filed 'unscanned' (spamd was down) scanned again per turn: new mail comes first.
RESCANS_PER_TURN = 20


def _log_filed(filed: Filed) -> None:
    delivery, outcome = filed.delivery, filed.outcome
    log.info("filed %s", fields(
        delivery=delivery.id, source=delivery.source, origin=delivery.origin,
        mail_from=_angle(delivery.envelope_from),
        to=",".join(_angle(a) for a in delivery.envelope_to) or None,
        status=outcome.status, kind=outcome.kind, post=outcome.post,
        thread=outcome.thread,
        message_id=f"<{outcome.message_id}>" if outcome.message_id else None,
        reason=outcome.reasons[-1] if outcome.status == "quarantined" else None))


class _Rescans:
    """Scans again, as ``mailthreads rescan`` does, what was filed 'unscanned' while spamd was
    down (not what was filed before spam scanning was turned on: 'mailthreads rescan' does
    that when asked): at start, then every ``[spam] rescan_seconds``, a batch at a time
    between filings (spam found leaves its thread for the spam list)."""

    def __init__(self, conn: sqlite3.Connection, config: Config):
        self.conn, self.config = conn, config
        self.due = time.monotonic() if config.spam.enabled else float("inf")

    def run_due(self, should_stop: Callable[[], bool]) -> bool:
        """Scan a batch if one is due; True when more wait (spamd answers and the batch was
        full), so that the caller comes back without waiting."""
        if time.monotonic() < self.due:
            return False
        from ...ingest.spam import rescan

        self.due = time.monotonic() + self.config.spam.rescan_seconds
        for count, done in enumerate(rescan(self.conn, self.config, missed_only=True), start=1):
            verdict = done.verdict
            if done.stopped:  # still down: the next turn tries again
                log.info("rescan stopped %s", fields(reason=verdict.describe()))
                return False
            log.info("rescanned %s", fields(message_id=f"<{done.message_id}>",
                                            verdict=verdict.label, score=verdict.score))
            if count == RESCANS_PER_TURN or should_stop():
                self.due = time.monotonic()
                return True
        return False


def _angle(address: str | None) -> str | None:
    if address is None:
        return None
    return f"<{address}>"


class _Stop(Exception):
    """SIGTERM while waiting for work."""


class _Control:
    """When to stop: the listener's end of the wake-up pipe closed, or SIGTERM.

    Then the filer goes on filing for up to ``DRAIN_SECONDS`` (``draining``), and stops. A
    second SIGTERM (the listener's, once that time is up) stops it at once: the filing at hand
    is rolled back with the process, and stays pending.
    """

    def __init__(self, wake: int):
        self.wake = wake
        self.ended = False  # the listener closed the pipe
        self.terminated = False  # SIGTERM
        self.waiting = False
        self.deadline: float | None = None
        signal.signal(signal.SIGTERM, self._on_term)
        # Ctrl-C in a terminal reaches the whole process group: the listener decides.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _on_term(self, signum: int, frame: object) -> None:
        if self.terminated:
            raise SystemExit(0)
        self.terminated = True
        if self.waiting:
            raise _Stop

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    def drain(self) -> None:
        self.deadline = time.monotonic() + DRAIN_SECONDS

    def asked_to_stop(self) -> bool:
        if not self.ended and not self.terminated:
            readable, _, _ = select.select([self.wake], [], [], 0)
            if readable:
                self._read()
        return self.ended or self.terminated

    def should_stop(self) -> bool:
        """Checked between messages: stop filing (to start draining, or for good)."""
        if self.deadline is not None:
            return time.monotonic() > self.deadline
        return self.asked_to_stop()

    def wait(self) -> None:
        """Until a wake-up, the poll interval, or a request to stop."""
        self.waiting = True
        try:
            if not self.terminated:
                readable, _, _ = select.select([self.wake], [], [], POLL_SECONDS)
                if readable:
                    self._read()
        except _Stop:
            pass
        finally:
            self.waiting = False

    def _read(self) -> None:
        if not os.read(self.wake, 65536):  # b"": the listener is gone
            self.ended = True


def run(database_path: Path, config: Config, wake: int, turn: WriteTurn | None,
        verbosity: int) -> None:
    """The filer process: file, then wait for a wake-up; stop when the pipe closes."""
    control = _Control(wake)
    configure(verbosity)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    # synchronous=NORMAL: a filing lost to a power cut leaves its delivery pending, and it is
    # simply filed again; the listener's own commits stay FULL.
    database = db.open_database(database_path, durable=False)
    # [notify] commands run in a thread of their own, after the commits: never in filing.
    notifier = Runner(database_path, config.notify).start() if config.notify.command else None

    def on_commit(filed: Filed) -> None:
        _log_filed(filed)
        if notifier:
            notifier.wake()

    # The listener waits for the write lock (or holds it): the filer steps aside.
    filer = Filer(database.conn, config, yield_to=turn.claimed if turn else lambda: False,
                  should_stop=control.should_stop, on_commit=on_commit, logger=log)
    rescans = _Rescans(database.conn, config)
    while True:
        try:
            filer.file_pending()
            more = not control.draining and rescans.run_due(control.should_stop)
        except sqlite3.OperationalError as error:
            log.error("cannot file now, will retry: %s", error)
            time.sleep(RETRY_SECONDS)
            continue
        if control.draining:
            break
        if not more and not control.asked_to_stop():
            control.wait()
        if control.asked_to_stop():
            control.drain()
    if store.pending_deliveries(database.conn, 1):
        log.info("stopping with deliveries still pending: they are filed at the next start")
    if notifier:
        notifier.stop()
    database.conn.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m mailthreads.transport.smtp.filer``, as the listener starts it.

    The config comes pickled on standard input (it is the listener's, with its command-line
    overrides); the wake-up pipe and the write-turn memory are inherited file descriptors.
    """
    parser = argparse.ArgumentParser(prog="mailthreads-filer")
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--wake-fd", type=int, required=True)
    parser.add_argument("--turn-fd", type=int)
    parser.add_argument("--verbosity", type=int, default=0)
    args = parser.parse_args(argv)
    config = pickle.loads(sys.stdin.buffer.read())
    turn = WriteTurn(args.turn_fd) if args.turn_fd is not None else None
    run(args.database, config, args.wake_fd, turn, args.verbosity)


class FilerProcess:
    """The listener's handle on the filer: start, wake (from any thread), stop."""

    def __init__(self, database_path: Path, config: Config, verbosity: int,
                 turn: WriteTurn | None = None):
        self._database_path = database_path
        self._config = config
        self._verbosity = verbosity
        self._turn = turn
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._wake: int | None = None

    def start(self) -> None:
        # A new program (not a fork): the listener has threads and an event loop by now.
        reader, writer = os.pipe()
        fds = [reader] + ([self._turn.fd] if self._turn is not None else [])
        command = [sys.executable, "-m", __name__, "--database", str(self._database_path),
                   "--wake-fd", str(reader), "--verbosity", str(self._verbosity)]
        if self._turn is not None:
            command += ["--turn-fd", str(self._turn.fd)]
        # The filer imports mailthreads from wherever this process did.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{path}" if path
               else package_root}
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=fds, env=env)
        finally:
            os.close(reader)  # the child holds the only read end: our exit is its end-of-file
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(pickle.dumps(self._config))
        os.set_blocking(writer, False)
        with self._lock:
            old, self._process, self._wake = self._wake, process, writer
        if old is not None:
            os.close(old)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exitcode(self) -> int | None:
        """None while it runs."""
        return self._process.poll() if self._process else None

    def notify(self) -> None:
        with self._lock:
            if self._wake is None:
                return
            # A full pipe already holds a wake-up; a broken one means the filer died, which
            # the listener notices and handles on its own.
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(self._wake, b"\0")

    def stop(self, timeout: float = DRAIN_SECONDS + 5) -> int | None:
        """Let the filer finish (bounded by ``timeout``), then make sure it is gone."""
        with self._lock:
            wake, self._wake = self._wake, None
        if wake is not None:
            os.close(wake)
        process = self._process
        if process is None:
            return None
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("filer did not stop in %.0f s: stopping it", timeout)
        # Safe at any moment: an interrupted filing is rolled back and done at the next start.
        process.terminate()
        try:
            return process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


if __name__ == "__main__":
    main()
