"""The values the pipeline passes around: a message's envelope, where it should go (``Plan``,
the routing decision, made once) and what became of it (``Outcome``). Below the pipeline and
the spam screening, so that both can use them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..mail.trust import TrustDecision

Unrouted = Literal["quarantine", "ignore"]


@dataclass(frozen=True)
class Envelope:
    mail_from: str | None = None  # "" is the null sender <>
    rcpt_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    status: str  # stored, duplicate, quarantined, ignored, deleted (tombstoned: not filed)
    message_id: str | None = None
    thread: int | None = None
    post: str | None = None
    kind: str | None = None
    direction: str | None = None
    reasons: tuple[str, ...] = ()
    origin: str | None = None
    review_class: str | None = None  # quarantined to wait for the author (unknown_post, ...)

    @property
    def tally(self) -> str:
        """The count a run's summary adds it to: ``status``, except that mail kept for the
        author's decision (a reply to a post not added yet, a sender to check) is "held" and
        a blocked sender's mail "blocked", not "quarantined", which says something broke."""
        if self.status != "quarantined" or not self.review_class:
            return self.status
        return "blocked" if self.review_class == "blocked" else "held"

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["reasons"] = list(self.reasons)
        return result


@dataclass(frozen=True)
class Plan:
    """Where a message goes: the routing decision, made once and not changed after. ``None``
    ids (a new post, correspondent or thread) are created when the plan is carried out."""

    status: str  # store, duplicate, quarantine, ignore
    reasons: tuple[str, ...] = ()
    direction: str = "in"
    post_slug: str | None = None
    post_id: int | None = None
    create_post: bool = False
    correspondent_id: int | None = None
    correspondent_name: str = ""
    correspondent_address: str | None = None
    possibly_same_as: int | None = None  # the correspondent a new thread's sender claims to be
    thread_id: int | None = None
    wants_thread: bool = False
    parent: str | None = None
    message_id_reused: bool = False
    trust: TrustDecision | None = None  # the sender's, for incoming mail (mail.trust)
    review_class: str | None = None  # quarantined: the review queue's class, None for a fault
    held_for: str | None = None  # the unknown post's slug an "unknown_post" message waits for

    @property
    def outcome_status(self) -> str:
        """What happened, in the words of ``Outcome.status``."""
        return {"store": "stored", "duplicate": "duplicate", "quarantine": "quarantined",
                "ignore": "ignored"}[self.status]


@dataclass(frozen=True)
class Context:
    source: str
    envelope: Envelope = Envelope()
    post_hint: str | None = None


@dataclass(kw_only=True)
class Tally:
    """What became of the messages of one run, counted by ``Outcome.tally``: the counts of
    the summary of an ingest (``bulk.Summary``) or of a polled folder (``FolderReport``)."""

    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0  # could not be parsed or routed
    held: int = 0  # waiting for the author's decision in 'mailthreads review'
    blocked: int = 0  # from a blocked sender: kept raw, never shown
    ignored: int = 0  # not for mailthreads (IMAP: left alone)
    deleted: int = 0  # deleted by the author before (a tombstone): not filed again
    spam: int = 0  # kept apart as spam: see 'mailthreads spam list'

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.tally, getattr(self, outcome.tally) + 1)

    @property
    def total(self) -> int:
        return sum(getattr(self, field.name) for field in fields(Tally))


def held_and_blocked(held: int, blocked: int) -> list[str]:
    """The words for a run's summary line (ingest, poll) of the mail it kept aside on purpose."""
    parts = [f"{held} held for your review"] if held else []
    if blocked:
        parts.append(f"{blocked} from blocked senders, kept raw")
    return parts
