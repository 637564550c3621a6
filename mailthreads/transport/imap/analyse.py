"""Analysis of fetched mail, in worker processes when a catch-up is long.

Parsing, trimming and classifying are pure and take most of a poll's time (the IMAP fetch and
the SQLite writes take the rest), so on a first poll of a big folder they run on every core
while this process talks to the server and files the results in order. Short batches, the
usual case of a scheduled or live poll, use one worker. Either way every message is analysed
under the time and memory budget of ``[limits]`` (``budget.Analyser``).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from ...config import Config
from ...ingest.analysed import Analysed
from ...ingest.budget import Analyser as BudgetedAnalyser

POOL_THRESHOLD = 64


class Analyser:
    """``analyse(raws)`` -> analyses (or quarantine reasons) in the same order."""

    def __init__(self, config: Config, workers: int | None = None):
        self.config = config
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._one = BudgetedAnalyser(config, 1)
        self._many: BudgetedAnalyser | None = None
        self._background: ThreadPoolExecutor | None = None

    def analyse(self, raws: list[bytes]) -> list[Analysed]:
        return self._analyse_with(self._analyser_for(raws), raws)

    def analyse_later(self, raws: list[bytes]) -> Future[list[Analysed]]:
        """``analyse(raws)`` in a background thread, after the batches asked for before: the
        poller fetches the next batch and files the last one meanwhile."""
        analyser = self._analyser_for(raws)
        # Workers are started here, in the calling thread: forking from a process while
        # another of its threads may hold a lock is unsafe.
        analyser.start_workers()
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="mailthreads-analyse")
        return self._background.submit(self._analyse_with, analyser, raws)

    def _analyser_for(self, raws: list[bytes]) -> BudgetedAnalyser:
        if self.workers > 1 and len(raws) >= POOL_THRESHOLD:
            if self._many is None:
                self._many = BudgetedAnalyser(self.config, self.workers)
            return self._many
        return self._one

    @staticmethod
    def _analyse_with(analyser: BudgetedAnalyser, raws: list[bytes]) -> list[Analysed]:
        return [result for _, result in analyser.analyse_all((None, raw, None) for raw in raws)]

    def close(self) -> None:
        if self._background is not None:
            self._background.shutdown(wait=True, cancel_futures=True)
            self._background = None
        self._one.close()
        if self._many is not None:
            self._many.close()
            self._many = None
