"""What the analysis of one raw message gives: an ``Analysis``, or ``Unparsed`` with the reason.

The pipeline quarantines an ``Unparsed`` message with its raw bytes and that reason. Budget
workers run ``analyse_or_unparsed`` and send its result back, so this module sits below both the
pipeline and ``budget``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..mail.analysis import Analysis, analyse
from ..mail.parse import Unparseable


@dataclass(frozen=True)
class Unparsed:
    """A message the analysis gave up on (or that is over a limit): why, in one line."""

    reason: str


Analysed = Analysis | Unparsed


def analyse_or_unparsed(raw: bytes, config: Config, envelope_sender: str | None) -> Analysed:
    try:
        return analyse(raw, config.limits, envelope_sender)
    except Unparseable as error:
        return Unparsed(str(error))
    except RecursionError:
        return Unparsed("message structure too deeply nested to analyse")
    except MemoryError:
        raise  # over the memory budget: budget.Analyser reports it
    except Exception as error:  # a parser bug must not lose the message: quarantine it
        return Unparsed(f"could not analyse the message: {type(error).__name__}: {error}")
