"""Bulk ingest: analysis in worker processes, filing in this one, batched commits.

Parsing is the expensive, pure part of the pipeline, so it runs on every core while the main
process files messages in arrival order (threading depends on that order only for ghosts, and
they are order-independent anyway). A bounded number of chunks is in flight at any time, so
memory does not grow with the size of the mailbox.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import Pool

from .config import Config
from .ingest import Context, Envelope, Outcome, Pipeline, analyze_or_reason, sha256_of
from .mail.analysis import Analysis

CHUNK_SIZE = 32
COMMIT_EVERY = 500
# Below this many messages a worker pool costs more than it saves.
POOL_THRESHOLD = 64

Job = tuple[str, bytes]
Result = tuple[str, bytes, str, "Analysis | str"]


@dataclass
class Summary:
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0
    ignored: int = 0
    deleted: int = 0  # tombstoned: deleted by the author before, not filed again
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.status == "stored" and outcome.kind:
            self.by_kind[outcome.kind] = self.by_kind.get(outcome.kind, 0) + 1

    @property
    def total(self) -> int:
        return (self.stored + self.duplicate + self.quarantined + self.ignored
                + self.deleted)


_worker_config: Config | None = None


def _init_worker(config: Config) -> None:
    global _worker_config
    _worker_config = config
    # Ctrl-C is the parent's to handle (it stops the pool); workers printing their own
    # KeyboardInterrupt tracebacks would only bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def analysis_pool(config: Config, workers: int) -> Pool:
    """Worker processes that analyse raw messages under ``config``: ``analyze_in_worker``."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers, initializer=_init_worker,
                                                    initargs=(config,))


def analyze_in_worker(raw: bytes) -> Analysis | str:
    assert _worker_config is not None, "only inside an analysis_pool worker"
    return analyze_or_reason(raw, _worker_config, None)


def _analyze_chunk(raws: list[bytes]) -> list[tuple[str, Analysis | str]]:
    return [(sha256_of(raw), analyze_in_worker(raw)) for raw in raws]


def _joined(chunk: list[Job], analysed: list[tuple[str, Analysis | str]]) -> list[Result]:
    return [(origin, raw, sha256, analysis)
            for (origin, raw), (sha256, analysis) in zip(chunk, analysed, strict=True)]


def _chunks(items: Iterable[Job], size: int) -> Iterator[list[Job]]:
    chunk: list[Job] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _analysed(items: Iterable[Job], config: Config, workers: int,
              expected: int | None) -> Iterator[Result]:
    if workers <= 1 or (expected is not None and expected < POOL_THRESHOLD):
        for chunk in _chunks(items, CHUNK_SIZE):
            yield from _joined(chunk, [(sha256_of(raw), analyze_or_reason(raw, config, None))
                                       for _, raw in chunk])
        return
    with analysis_pool(config, workers) as pool:
        # The raw bytes stay here too: only the analysis travels back from the workers.
        in_flight: deque = deque()
        for chunk in _chunks(items, CHUNK_SIZE):
            raws = [raw for _, raw in chunk]
            in_flight.append((chunk, pool.apply_async(_analyze_chunk, (raws,))))
            if len(in_flight) >= workers * 4:
                done, result = in_flight.popleft()
                yield from _joined(done, result.get())
        while in_flight:
            done, result = in_flight.popleft()
            yield from _joined(done, result.get())


def ingest_messages(
    conn: sqlite3.Connection,
    config: Config,
    items: Iterable[Job],
    *,
    source: str = "file",
    post_hint: str | None = None,
    workers: int | None = None,
    expected: int | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    pipeline = Pipeline(conn, config)
    summary = Summary()
    workers = workers if workers is not None else (os.cpu_count() or 1)
    context = Context(source, Envelope(), post_hint)
    since_commit = 0
    try:
        for origin, raw, sha256, analysis in _analysed(items, config, workers, expected):
            delivery_id, _ = pipeline.receive(raw, source, origin=origin, post_hint=post_hint,
                                              commit=False, sha256=sha256)
            outcome = pipeline.process(delivery_id, sha256, raw, context, analysis,
                                       origin=origin)
            summary.add(outcome)
            since_commit += 1
            if since_commit >= COMMIT_EVERY:
                conn.commit()
                since_commit = 0
            if on_outcome:
                on_outcome(outcome)
    except BaseException:
        # A message cut short (Ctrl-C, a bug) must not be half filed: drop the open batch, which
        # a new run takes in again.
        conn.rollback()
        raise
    conn.commit()
    return summary
