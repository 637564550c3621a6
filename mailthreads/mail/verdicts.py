"""The value types of sender trust (issue 12): what a spam scan and the trusted
Authentication-Results say about one message. Pure: no DB, no network.

Producers: ``mail.upstream`` (upstream headers and Authentication-Results, read only from the
user's own servers) and ``ingest.screening`` (a SpamAssassin ``spamd`` scan when the message is
filed). The precedence between these values and block/allow lists, trusted correspondents and
unknown posts is decided elsewhere (the ``trust`` side of issue 12).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SpamLabel = Literal["spam", "ham", "unscanned"]
# Where a verdict came from, in words for ``explain`` and ``messages.verdict_source``.
#   "spamd 127.0.0.1:783"                         a scan by our own spamd
#   "upstream X-Spam-Status (by mx.example.org)"  a header added by the user's own server
#   "none"                                         nothing scanned it (scanner off or down)
DmarcAction = Literal["quarantine", "spam"]


@dataclass(frozen=True)
class SpamVerdict:
    """One spam judgement. ``score``/``threshold`` are None when the source gives none."""

    label: SpamLabel
    source: str
    score: float | None = None
    threshold: float | None = None
    reasons: tuple[str, ...] = ()  # rule names or plain words, e.g. ("GTUBE",)

    @property
    def is_spam(self) -> bool:
        return self.label == "spam"

    def describe(self) -> str:
        """One line for ``explain``: "spam (score 1000.0 / 5.0, spamd 127.0.0.1:783: GTUBE)"."""
        numbers = ""
        if self.score is not None:
            numbers = f"score {self.score:g}"
            if self.threshold is not None:
                numbers += f" / {self.threshold:g}"
            numbers += ", "
        rules = f": {', '.join(self.reasons)}" if self.reasons else ""
        return f"{self.label} ({numbers}{self.source}{rules})"


UNSCANNED = SpamVerdict("unscanned", "none", reasons=("no scanner configured",))


@dataclass(frozen=True)
class Authentication:
    """The DMARC/DKIM/SPF results of the topmost trusted Authentication-Results header(s).

    Results are the RFC 8601 words (pass, fail, none, neutral, temperror, permerror, ...) or
    None when the header does not report that method. ``dmarc_policy`` is the policy the
    header says the From domain publishes (``p=REJECT`` comment or ``policy.dmarc=reject``),
    lower case, or None when it does not say. No DNS is consulted.
    """

    authserv_id: str
    dmarc: str | None = None
    dmarc_policy: str | None = None
    header_from: str | None = None
    dkim: str | None = None
    spf: str | None = None

    @property
    def forged(self) -> bool:
        """DMARC failed for a domain that asks receivers to reject or quarantine such mail."""
        return self.dmarc == "fail" and self.dmarc_policy in ("reject", "quarantine")

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in
                 (("dmarc", self.dmarc), ("dkim", self.dkim), ("spf", self.spf)) if value]
        policy = f" (p={self.dmarc_policy})" if self.dmarc_policy else ""
        domain = f" for {self.header_from}" if self.header_from else ""
        return f"{' '.join(parts) or 'no results'}{policy}{domain}, by {self.authserv_id}"
