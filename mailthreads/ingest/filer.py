"""The filer: files received deliveries, in small write transactions, analysing outside them.

``Pipeline.receive`` is the durable point of every transport: the raw bytes and a pending
delivery. This files what is pending, whoever received it: serve's filer process runs it after
each of the listener's commits (``transport.smtp.filer``), and so does anything that finds
deliveries left pending by a crash. Each delivery is filed once: its status is read again under
the write lock, and the plan that files it is made under that lock too.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import db
from ..config import Config
from ..db import store
from ..spam import Judgement
from . import Analysed, Context, Envelope, Outcome, Pipeline

log = logging.getLogger(__name__)

BATCH = 32
# Longest time one filing transaction holds SQLite's write lock when nobody waits for it; when
# someone does (``yield_to``), the filer commits after the message at hand.
MAX_HOLD_SECONDS = 0.01
# How long the filer lets a waiting writer go first before it starts a transaction anyway.
YIELD_SECONDS = 0.02
GIVE_UP_REASON = "filing failed (a mailthreads bug): see the serve log"

# A pending delivery with what filing it needs, all made before the write transaction.
_Job = tuple[store.PendingDelivery, bytes, Context, Analysed, Judgement | None]


@dataclass(frozen=True)
class Filed:
    """One delivery filed, and what became of it."""

    delivery: store.PendingDelivery
    outcome: Outcome


class Filer:
    """File pending deliveries until none is left (or ``should_stop()``, asked between
    messages). ``yield_to()`` says that a more urgent writer (the SMTP listener) waits for the
    lock; ``on_commit`` hears of each delivery once its filing is committed."""

    def __init__(self, conn: sqlite3.Connection, config: Config, *,
                 yield_to: Callable[[], bool] = lambda: False,
                 should_stop: Callable[[], bool] = lambda: False,
                 on_commit: Callable[[Filed], None] = lambda filed: None,
                 logger: logging.Logger = log):
        self.conn = conn
        self.log = logger
        self.pipeline = Pipeline(conn, config)
        self.yield_to = yield_to
        self.should_stop = should_stop
        self.on_commit = on_commit

    def file_pending(self) -> list[Outcome]:
        """File until nothing is pending; what became of each delivery filed."""
        outcomes: list[Outcome] = []
        while not self.should_stop():
            pending = store.pending_deliveries(self.conn, BATCH)
            if not pending:
                break
            # The expensive, pure part runs before the write transaction starts.
            jobs = []
            for delivery in pending:
                if self.should_stop():
                    break
                jobs.append(self._analysed(delivery))
            self._file(jobs, outcomes)
        return outcomes

    def _analysed(self, delivery: store.PendingDelivery) -> _Job:
        raw = store.raw_message(self.conn, delivery.raw_sha256) or b""
        context = Context(delivery.source, Envelope(delivery.envelope_from, delivery.envelope_to),
                          delivery.post_hint)
        analysis = self.pipeline.analyse(raw, context)
        return delivery, raw, context, analysis, self.pipeline.judge(raw, analysis)

    def _file(self, jobs: list[_Job], outcomes: list[Outcome]) -> None:
        done: list[Filed] = []
        committed = 0  # jobs[:committed] are settled
        started = 0.0
        try:
            for index, (delivery, raw, context, analysis, judgement) in enumerate(jobs):
                if self.should_stop():
                    break
                if not self.conn.in_transaction:
                    self._let_others_go_first()
                    db.begin(self.conn, immediate=True)
                    started = time.monotonic()
                # Under the write lock: a filer still finishing after its listener died may
                # have filed it (or a new one, after a restart). File each delivery once.
                if store.delivery_status(self.conn, delivery.id) == "pending":
                    done.append(Filed(delivery, self.pipeline.process(
                        delivery.id, delivery.raw_sha256, raw, context, analysis,
                        origin=delivery.origin, judgement=judgement)))
                if self.yield_to() or time.monotonic() - started > MAX_HOLD_SECONDS:
                    self._commit(done, outcomes)
                    committed = index + 1
            if self.conn.in_transaction:
                self._commit(done, outcomes)
        except sqlite3.OperationalError:
            # Locked for longer than the busy timeout, disk full, I/O error: nothing of this
            # transaction stays, the deliveries stay pending, the caller tries again later.
            db.rollback_quietly(self.conn)
            raise
        except Exception:
            db.rollback_quietly(self.conn)
            rest = jobs[committed:]
            if len(rest) == 1:
                self._give_up(rest[0][0])
                return
            for job in rest:  # find the one that fails; file the others
                self._file([job], outcomes)

    def _let_others_go_first(self) -> None:
        deadline = time.monotonic() + YIELD_SECONDS
        while self.yield_to() and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _commit(self, done: list[Filed], outcomes: list[Outcome]) -> None:
        self.conn.commit()
        for filed in done:
            outcomes.append(filed.outcome)
            self.on_commit(filed)
        done.clear()

    def _give_up(self, delivery: store.PendingDelivery) -> None:
        """A message that breaks filing itself (a bug) is quarantined, not retried forever."""
        self.log.exception("filing failed delivery=%s", delivery.id)
        with db.transaction(self.conn, immediate=True):
            if store.delivery_status(self.conn, delivery.id) != "pending":
                return
            store.add_quarantine(self.conn, delivery.raw_sha256, delivery.id, GIVE_UP_REASON,
                                 delivery.source, None, None)
            store.finish_delivery(self.conn, delivery.id, "quarantined", None)
