"""Analysis of fetched mail, in worker processes when a catch-up is long.

Parsing, trimming and classifying are pure and take most of a poll's time (the IMAP fetch and
the SQLite writes take the rest), so on a first poll of a big folder they run on every core
while this process talks to the server and files the results in order. Short batches, the
usual case of a scheduled or live poll, stay in this process: a pool costs more than it saves.
"""

from __future__ import annotations

import os
from multiprocessing.pool import Pool

from ..bulk import analysis_pool, analyze_in_worker
from ..config import Config
from ..ingest import analyze_or_reason
from ..mail.analysis import Analysis

POOL_THRESHOLD = 64
CHUNK = 8


class Analyser:
    """``analyse(raws)`` -> analyses in the same order. ``workers=1`` never starts a pool
    (the ``--watch`` threads use that: forking a threaded process is unsafe)."""

    def __init__(self, config: Config, workers: int | None = None):
        self.config = config
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: Pool | None = None

    def analyse(self, raws: list[bytes]) -> list[Analysis | str]:
        if self.workers <= 1 or len(raws) < POOL_THRESHOLD:
            return [analyze_or_reason(raw, self.config, None) for raw in raws]
        if self._pool is None:
            self._pool = analysis_pool(self.config, self.workers)
        return self._pool.map(analyze_in_worker, raws, chunksize=CHUNK)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
