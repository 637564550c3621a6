"""Analysis of fetched mail, in worker processes when a catch-up is long.

Parsing, trimming and classifying are pure and take most of a poll's time (the IMAP fetch and
the SQLite writes take the rest), so on a first poll of a big folder they run on every core
while this process talks to the server and files the results in order. Short batches, the
usual case of a scheduled or live poll, use one worker. Either way every message is analysed
under the time and memory budget of ``[limits]`` (``budget.Analyser``).
"""

from __future__ import annotations

import os

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

    def analyse(self, raws: list[bytes]) -> list[Analysed]:
        analyser = self._one
        if self.workers > 1 and len(raws) >= POOL_THRESHOLD:
            if self._many is None:
                self._many = BudgetedAnalyser(self.config, self.workers)
            analyser = self._many
        return [result for _, result in analyser.analyse_all((None, raw, None) for raw in raws)]

    def close(self) -> None:
        self._one.close()
        if self._many is not None:
            self._many.close()
            self._many = None
