"""Bulk ingest: analysis in worker processes, filing in this one, batched commits.

Parsing is the expensive, pure part of the pipeline, so it runs on every core while the main
process files messages in arrival order (threading depends on that order only for ghosts, and
they are order-independent anyway). A bounded number of messages is in flight at any time, so
memory does not grow with the size of the mailbox. Each analysis runs under the budget of
``budget.Analyser``, and a batch's write transaction starts only once the batch is analysed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .. import db
from ..config import Config
from . import Analysed, Context, Envelope, Outcome, Pipeline, sha256_of
from .budget import Analyser
from .values import Tally

COMMIT_EVERY = 500
COMMIT_BYTES = 64 * 1024 * 1024
# A batch is written once it is this old and the next analysis is not in yet, so progress
# shows (and is kept) about every second even when analyses come in slowly.
COMMIT_SECONDS = 1.0
# Below this many messages a worker pool costs more than it saves.
POOL_THRESHOLD = 64

Job = tuple[str, bytes]
Result = tuple[str, bytes, str, Analysed]


@dataclass(kw_only=True)
class Summary(Tally):
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        super().add(outcome)
        if outcome.status == "stored" and outcome.kind:
            self.by_kind[outcome.kind] = self.by_kind.get(outcome.kind, 0) + 1


def _batches(items: Iterable[Job], config: Config, workers: int,
             expected: int | None) -> Iterator[list[Result]]:
    """Analysed messages, in input order and in batches: a batch is complete before its write
    transaction starts, so that transaction never waits for a parse (which may take up to
    ``[limits] max_parse_seconds``) and other writers such as ``serve`` are not kept waiting.
    A batch ends at ``COMMIT_EVERY`` messages or ``COMMIT_BYTES``, or where the next analysis
    is not in by the time the batch is ``COMMIT_SECONDS`` old: a slow parse does not keep the
    messages before it from being filed. (Ending every batch where the next analysis was not
    in yet made a commit, an fsync, every two or three messages whenever the workers were the
    slower side, as they are on a busy machine.)"""
    if expected is not None and expected < POOL_THRESHOLD:
        workers = 1
    batch: list[Result] = []
    size = 0
    started = time.monotonic()
    with Analyser(config, workers) as analyser:
        run = analyser.analyse_all(((origin, raw), raw, None) for origin, raw in items)
        for (origin, raw), analysis in run:
            if not batch:
                started = time.monotonic()
            batch.append((origin, raw, sha256_of(raw), analysis))
            size += len(raw)
            if len(batch) >= COMMIT_EVERY or size >= COMMIT_BYTES or not run.ready(
                    max(0.0, started + COMMIT_SECONDS - time.monotonic())):
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


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
    for batch in _batches(items, config, workers, expected):
        # Spam scans before the write lock is taken (see Pipeline.judge).
        judgements = [pipeline.judge(raw, analysis) for _, raw, _, analysis in batch]
        # A batch cut short (Ctrl-C, a bug) must not be half filed: it is rolled back, and a
        # new run takes it in again.
        with db.transaction(conn, immediate=True):
            for (origin, raw, sha256, analysis), judgement in zip(batch, judgements,
                                                                  strict=True):
                delivery_id, _ = pipeline.receive(raw, source, origin=origin,
                                                  post_hint=post_hint, commit=False,
                                                  sha256=sha256)
                outcome = pipeline.process(delivery_id, sha256, raw, context, analysis,
                                           origin=origin, judgement=judgement)
                summary.add(outcome)
                if on_outcome:
                    on_outcome(outcome)
    return summary
