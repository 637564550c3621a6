"""Who is trusted: the pure decisions about a sender (no database, no network).

The facts are gathered by the pipeline's planning step (``ingest.plan``), which reads the
store; everything here only decides. The order of the rules is the documented precedence
(README, "Who is trusted"):

1. a blocked sender (``mailthreads block``): filed quietly, kept raw, shown nowhere;
2. a DMARC failure: the From domain's owner says this mail is not theirs, so not even a
   trusted correspondent's address saves it;
3. a trusted correspondent (one the author has answered, from a confirmed address): never sent
   to spam by a score alone; a spam or borderline score is shown as a flag;
4. the spam score, for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What a spam scanner concluded, in the words this module needs; None when nothing scanned.
SpamLevel = Literal["ham", "borderline", "spam"]
# What the DMARC check of the From domain concluded; None or "none" when there is no policy.
DmarcResult = Literal["pass", "fail", "none"]
Action = Literal["accept", "blocked", "spam"]

# The review queue's class of each held action (``mailthreads review``). "blocked" is quiet:
# listed only with ``review --all``.
REVIEW_CLASS: dict[str, str] = {"blocked": "blocked", "spam": "spam"}


@dataclass(frozen=True)
class TrustFacts:
    blocked_by: str | None = None  # the block pattern that matches the sender
    dmarc: DmarcResult | None = None
    trusted: bool = False
    spam: SpamLevel | None = None


@dataclass(frozen=True)
class TrustDecision:
    action: Action
    reason: str
    flag: str | None = None  # shown beside a filed message: "borderline spam score"

    @property
    def review_class(self) -> str | None:
        """The review-queue class the message waits in; None when it is filed."""
        return REVIEW_CLASS.get(self.action)


def decide(facts: TrustFacts) -> TrustDecision:
    """Where the sender's mail goes, and why: block, then DMARC, then trust, then the score."""
    if facts.blocked_by is not None:
        return TrustDecision("blocked", f"sender blocked ({facts.blocked_by}): kept raw, "
                             "not shown ('mailthreads unblock' to stop)")
    if facts.dmarc == "fail":
        return TrustDecision("spam", "DMARC failed: the From domain does not vouch for this "
                             "mail (forged sender)")
    if facts.trusted:
        flag = None if facts.spam in (None, "ham") else f"{facts.spam} spam score"
        reason = "trusted correspondent (you answered them)"
        if flag:
            reason += f": {flag}, shown with a flag, not sent to spam"
        return TrustDecision("accept", reason, flag)
    if facts.spam == "spam":
        return TrustDecision("spam", "spam score over the threshold, from a sender you have "
                             "not answered")
    if facts.spam == "borderline":
        return TrustDecision("accept", "borderline spam score: shown with a flag",
                             "borderline spam score")
    return TrustDecision("accept", "not blocked" + ("" if facts.spam is None else
                                                  ", spam score low"))


def normalise_pattern(text: str) -> str:
    """A block pattern as stored: ``name@domain`` or ``@domain``, lowercase; ValueError if it
    is neither (a bare domain is taken as ``@domain``)."""
    pattern = text.strip().lower()
    if pattern and "@" not in pattern:
        pattern = "@" + pattern
    local, _, domain = pattern.rpartition("@")
    if not domain or "." not in domain or any(c.isspace() or c in "<>,;\"\\" for c in pattern) \
            or domain.startswith(".") or domain.endswith(".") or "@" in local:
        raise ValueError(f"{text!r} is neither an address (name@domain) nor a domain (@domain)")
    return pattern


def block_candidates(addresses: tuple[str | None, ...]) -> list[str]:
    """Every pattern that would block one of ``addresses``, most precise first: the address,
    then ``@domain`` for its domain and each parent domain (not the bare top-level domain)."""
    candidates: list[str] = []
    for address in addresses:
        if not address or "@" not in address:
            continue
        address = address.strip().lower()
        parts = address.rpartition("@")[2].split(".")
        candidates.append(address)
        candidates.extend("@" + ".".join(parts[start:]) for start in range(len(parts) - 1))
    return candidates


def matching_block(addresses: tuple[str | None, ...], patterns: set[str]) -> str | None:
    """The first block pattern that matches one of ``addresses``: an exact address, or
    ``@domain`` for that domain and its subdomains; None when none does."""
    return next((pattern for pattern in block_candidates(addresses) if pattern in patterns),
                None)
