"""Every message's analysis under a budget of time and memory, in worker processes.

The byte-level caps in ``mail.parse`` reject the hostile shapes we know of before anything
parses them; this is the guarantee for the ones we do not. Each message is analysed in a worker
process whose address space is capped (``RLIMIT_AS``: what it holds when it starts, plus
``[limits] max_parse_memory``), and waited for at most ``[limits] max_parse_seconds``. A worker
over either is killed and replaced, and the message gets the reason as its analysis, so it is
quarantined like any other unparseable message (and can be released after raising the limit).
A slow message thus holds up the ones behind it for at most the budget.

The SMTP filer, bulk ingest, the IMAP poller, ``explain`` and quarantine release all analyse
through here. Workers are forked when this process runs a single thread (fast, and the modules
are already imported) and come from a fork server otherwise (forking a threaded process is
unsafe); either way a worker says it is ready before the clock of its first message starts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any, Generic, TypeVar

from ..config import Config
from .analysed import Analysed, Unparsed, analyse_or_unparsed

Result = Analysed
Key = TypeVar("Key")

# A worker that cannot even start in this long is a broken system, not a hostile message.
START_SECONDS = 120.0
# What a worker answers when its analysis ran out of memory (it exits after that).
_OUT_OF_MEMORY = "out of memory"
_READY = "ready"
_PR_SET_PDEATHSIG = 1
_PARENT_CHECK_SECONDS = 1.0


def _context() -> BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _cap_memory(extra: int) -> None:
    """Cap this process's address space at what it uses now plus ``extra`` bytes."""
    try:
        import resource
    except ImportError:  # not a Unix: the time budget still holds
        return
    in_use = _address_space_bytes()
    if in_use is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = in_use + extra if hard == resource.RLIM_INFINITY else min(in_use + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _die_with_parent() -> int:
    """A worker must not outlive the process it works for (killed with SIGKILL, say): its
    siblings hold copies of its pipe, so the pipe alone would not tell it. Linux kills it at
    once; elsewhere the idle loop notices a new parent. Returns the parent's pid."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    return parent


def _next_task(conn: Connection, parent: int) -> tuple[bytes, str | None] | None:
    while not conn.poll(_PARENT_CHECK_SECONDS):
        if os.getppid() != parent:
            return None
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _serve(conn: Connection, config: Config) -> None:
    """A worker: analyse each (raw, envelope sender) it is sent, until its pipe closes."""
    parent = _die_with_parent()
    # Ctrl-C is the parent's to handle; it stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent kills a worker over its time; should the parent die first (SIGKILL), the
    # alarm ends the worker a little later all the same.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    backstop = 2 * config.limits.max_parse_seconds + 5
    _cap_memory(config.limits.max_parse_memory)
    conn.send(_READY)
    while True:
        task = _next_task(conn, parent)
        if task is None:
            return
        raw, sender = task
        signal.setitimer(signal.ITIMER_REAL, backstop)
        try:
            result: Result | str = analyse_or_unparsed(raw, config, sender)
        except MemoryError:
            result = _OUT_OF_MEMORY
        signal.setitimer(signal.ITIMER_REAL, 0)
        del raw
        try:
            conn.send(result)
        except MemoryError:
            conn.send(_OUT_OF_MEMORY)
        if result == _OUT_OF_MEMORY:
            return  # its heap may be fragmented past use: the parent starts a fresh one


class _Worker:
    def __init__(self, context: BaseContext, config: Config):
        here, there = context.Pipe()
        self.process = context.Process(target=_serve, args=(there, config), daemon=True,
                                       name="mailthreads-analysis")
        self.process.start()
        there.close()
        self.conn = here
        self.jobs_done = 0
        if not here.poll(START_SECONDS) or here.recv() != _READY:
            self.stop()
            raise RuntimeError("the analysis worker process did not start")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()

    def how_it_ended(self) -> str:
        self.process.join(1)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"killed by signal {-code}"
        return f"exit code {code}"


class _Job(Generic[Key]):
    def __init__(self, index: int, key: Key, raw: bytes, sender: str | None):
        self.index = index
        self.key = key
        self.raw = raw
        self.sender = sender
        self.deadline = 0.0
        self.retried = False


class Analyser:
    """``analyse(raw)`` for one message; ``analyse_all`` for many, on ``workers`` processes,
    results in input order. ``close()`` (or ``with``) stops the workers; so does dropping it."""

    def __init__(self, config: Config, workers: int = 1):
        self.config = config
        self.workers = max(1, workers)
        self._context = _context()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        weakref.finalize(self, _stop_all, self._all)

    def __enter__(self) -> Analyser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        _stop_all(self._all)
        self._idle.clear()

    def analyse(self, raw: bytes, envelope_sender: str | None = None) -> Result:
        """The analysis of one message, or the reason it cannot be had (for quarantine)."""
        return next(self.analyse_all([(None, raw, envelope_sender)]))[1]

    def analyse_all(self, items: Iterable[tuple[Key, bytes, str | None]]) -> Run[Key]:
        """(key, analysis) for each (key, raw, envelope sender), in order; read lazily."""
        return Run(self, items)

    def start_workers(self) -> None:
        """Start the workers now (a later ``analyse_all`` may run in another thread)."""
        while len(self._all) < self.workers:
            self._give_back(self._new_worker())

    # Used by Run
    def _new_worker(self) -> _Worker:
        worker = _Worker(self._context, self.config)
        self._all.append(worker)
        return worker

    def _take_worker(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        return self._new_worker()

    def _give_back(self, worker: _Worker) -> None:
        self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.stop()
        with contextlib.suppress(ValueError):
            self._all.remove(worker)


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()
    workers.clear()


class Run(Iterator[tuple[Key, Result]], Generic[Key]):
    """One ``analyse_all``: keeps every worker busy, a bounded number of messages ahead."""

    def __init__(self, analyser: Analyser, items: Iterable[tuple[Key, bytes, str | None]]):
        self._analyser = analyser
        self._items = iter(items)
        self._exhausted = False
        self._submitted = 0
        self._next_out = 0
        self._done: dict[int, tuple[Key, Result]] = {}
        self._busy: dict[Connection, tuple[_Worker, _Job[Key]]] = {}
        # Messages read ahead of the one the caller waits for: bounds the memory they hold.
        self._window = analyser.workers * 8
        self._limits = analyser.config.limits

    def __next__(self) -> tuple[Key, Result]:
        while self._next_out not in self._done:
            self._fill()
            if not self._busy:
                raise StopIteration
            self._collect(self._seconds_to_next_deadline())
        result = self._done.pop(self._next_out)
        self._next_out += 1
        return result

    def ready(self, timeout: float = 0.0) -> bool:
        """True when ``next()`` would not wait for an analysis; waits up to ``timeout``
        seconds for that."""
        give_up = time.monotonic() + timeout
        while True:
            if self._next_out not in self._done:
                self._fill()
                if self._busy:
                    self._collect(max(0.0, min(give_up - time.monotonic(),
                                               self._seconds_to_next_deadline())))
            if self._next_out in self._done or (self._exhausted and not self._busy):
                return True
            if time.monotonic() >= give_up:
                return False

    def _fill(self) -> None:
        while (not self._exhausted and len(self._busy) < self._analyser.workers
               and self._submitted - self._next_out < self._window):
            try:
                key, raw, sender = next(self._items)
            except StopIteration:
                self._exhausted = True
                return
            self._start(self._analyser._take_worker(), _Job(self._submitted, key, raw, sender))
            self._submitted += 1

    def _start(self, worker: _Worker, job: _Job[Key]) -> None:
        try:
            worker.conn.send((job.raw, job.sender))
        except (OSError, ValueError):  # the worker died while idle: use a fresh one
            self._analyser._discard(worker)
            worker = self._analyser._take_worker()
            worker.conn.send((job.raw, job.sender))
        job.deadline = time.monotonic() + self._limits.max_parse_seconds
        self._busy[worker.conn] = (worker, job)

    def _seconds_to_next_deadline(self) -> float:
        return max(0.0, min(job.deadline for _, job in self._busy.values()) - time.monotonic())

    def _collect(self, timeout: float) -> None:
        for conn in wait(list(self._busy), timeout):
            worker, job = self._busy.pop(conn)  # type: ignore[arg-type]
            try:
                result: Any = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                self._analyser._discard(worker)
                self._finish(job, f"the analysis process died ({worker.how_it_ended()})")
                continue
            worker.jobs_done += 1
            if result == _OUT_OF_MEMORY:
                self._out_of_memory(worker, job)
                continue
            self._analyser._give_back(worker)
            self._finish(job, result)
        now = time.monotonic()
        for conn, (worker, job) in list(self._busy.items()):
            if now >= job.deadline:
                del self._busy[conn]
                self._analyser._discard(worker)
                self._finish(job, Unparsed(f"analysis took over "
                                           f"{self._limits.max_parse_seconds:g} s "
                                           "([limits] max_parse_seconds)"))

    def _out_of_memory(self, worker: _Worker, job: _Job[Key]) -> None:
        self._analyser._discard(worker)
        if worker.jobs_done > 1 and not job.retried:
            # What earlier messages left behind counts against the cap too: only a fresh
            # worker's verdict is the message's own.
            job.retried = True
            self._start(self._analyser._take_worker(), job)
            return
        megabytes = self._limits.max_parse_memory / (1024 * 1024)
        self._finish(job, Unparsed(f"analysis needed over {megabytes:,.0f} MiB of memory "
                                   "([limits] max_parse_memory)"))

    def _finish(self, job: _Job[Key], result: Result) -> None:
        self._done[job.index] = (job.key, result)
