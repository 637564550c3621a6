"""Group commit: one durable SQLite commit shared by the messages of concurrent sessions.

The listener may answer ``250`` only once a message is on disk, and with ``synchronous=FULL``
every commit waits for an fsync. Doing that on the event loop would stall every session for
each message. Instead one writer thread owns the database connection: messages that arrive
while a commit is on its way to disk queue up and go to disk together in the next commit, and
each waiting session gets its answer as soon as the commit that holds its message returns.

SQLite has one write lock per database, and the filer process writes too. Waiting for it the
usual way (the busy handler) sleeps in growing steps, up to 100 ms at a time, long after the
lock is free. So the writer asks for the lock itself, in short steps, and says that it is
waiting (``WriteTurn``): the filer, which checks between messages, then commits and steps
aside. Accepting is what clients wait on; filing can wait.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ... import db
from ...config import Config
from ...ingest import Envelope, Pipeline
from .log import LOGGER

log = logging.getLogger(LOGGER)

# How long the writer tries to get the write lock before the messages get 451.
LOCK_TIMEOUT_SECONDS = 30.0
LOCK_RETRY_SECONDS = 0.0005
# Checkpoints (copying the WAL into the database, with an fsync) are the filer's job, off the
# accepting path; this connection runs one only if the WAL grows this large (pages) anyway.
WAL_BACKSTOP_PAGES = 10_000


class StorageError(Exception):
    """The message could not be committed; the client should try again later."""


class WriteTurn:
    """A byte of shared memory: set while the listener waits for (or holds) the write lock.

    The memory is a memfd, so that the filer (another program, started with ``exec``) can map
    it from an inherited file descriptor. No lock around it: one writer, and a reader that only
    polls it.
    """

    def __init__(self, fd: int | None = None):
        if fd is None:
            fd = os.memfd_create("mailthreads-write-turn", os.MFD_CLOEXEC)
            os.ftruncate(fd, mmap.PAGESIZE)
        self.fd = fd
        self._memory = mmap.mmap(fd, mmap.PAGESIZE)

    def claim(self) -> None:
        self._memory[0] = 1

    def release(self) -> None:
        self._memory[0] = 0

    def claimed(self) -> bool:
        return self._memory[0] != 0


@dataclass
class _Item:
    raw: bytes
    envelope: Envelope
    origin: str
    future: asyncio.Future[int] = field(repr=False)


class GroupCommitter:
    """Commit raw messages and their pending deliveries from a thread, many per commit."""

    def __init__(self, conn: sqlite3.Connection, config: Config,
                 on_commit: Callable[[], None] = lambda: None, *, source: str = "smtp",
                 turn: WriteTurn | None = None):
        self._pipeline = Pipeline(conn, config)
        self._conn = conn
        # This connection waits for the lock in ``_begin``, not in SQLite's busy handler.
        db.wait_for_locks_myself(conn, wal_backstop_pages=WAL_BACKSTOP_PAGES)
        self._turn = turn or WriteTurn()
        self._on_commit = on_commit
        self._source = source
        self._queue: list[_Item] = []
        self._ready = threading.Condition()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.messages = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="mailthreads-commit", daemon=True)
        self._thread.start()

    async def store(self, raw: bytes, envelope: Envelope, origin: str) -> int:
        """Commit ``raw`` durably; the delivery id once it is on disk, or ``StorageError``."""
        assert self._loop is not None, "start() first"
        future: asyncio.Future[int] = self._loop.create_future()
        with self._ready:
            if self._closing:
                raise StorageError("shutting down")
            self._queue.append(_Item(raw, envelope, origin, future))
            self._ready.notify()
        return await future

    def close(self) -> None:
        """Commit what is queued, then stop the thread (blocking: call it off the loop)."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            results = self._commit(batch)
            assert self._loop is not None
            # One wake-up of the event loop per commit, not one per message.
            self._loop.call_soon_threadsafe(_settle, batch, results)
            if any(isinstance(result, int) for result in results):
                self._on_commit()

    def _commit(self, batch: list[_Item]) -> list[int | Exception]:
        self._turn.claim()
        try:
            self._begin()
            ids = [self._receive(item) for item in batch]
            self._conn.commit()
        except Exception as error:  # whatever went wrong, the answer is 451: never lose the thread
            self._rollback()
            if len(batch) == 1 or db.is_locked(error):
                return [StorageError(str(error) or type(error).__name__)] * len(batch)
            # One message must not cost the others their place: try each one alone.
            return [result for item in batch for result in self._commit([item])]
        finally:
            self._turn.release()
        self.commits += 1
        self.messages += len(batch)
        return list(ids)

    def _begin(self) -> None:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                db.begin(self._conn, immediate=True)
                return
            except sqlite3.OperationalError as error:
                if not db.is_locked(error) or time.monotonic() > deadline:
                    raise
            time.sleep(LOCK_RETRY_SECONDS)

    def _receive(self, item: _Item) -> int:
        delivery_id, _ = self._pipeline.receive(item.raw, self._source, item.envelope,
                                                origin=item.origin, commit=False)
        return delivery_id

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except sqlite3.Error as error:  # the connection is in trouble; the next commit says so
            log.debug("rollback failed: %s", error)


def _settle(batch: list[_Item], results: list[int | Exception]) -> None:
    for item, result in zip(batch, results, strict=True):
        if item.future.done():  # the session went away while its message was committed
            continue
        if isinstance(result, Exception):
            item.future.set_exception(result)
        else:
            item.future.set_result(result)
