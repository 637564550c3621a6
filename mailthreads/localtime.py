"""Stored times (ISO 8601 UTC, ``timestamps``) as people read them, in their own time zone
(``TZ``, else the system's): relative in tables ("2 h ago", "Mon 14:05"), absolute in ``show``.
JSON, CSV and the database keep ISO 8601 UTC; only the display changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse(stored: str | None) -> datetime | None:
    """A stored time in the user's zone; None when missing or not a time."""
    if not stored:
        return None
    try:
        moment = datetime.fromisoformat(stored.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone()  # no argument: the local zone, which honours TZ


def relative(stored: str | None, now: datetime | None = None) -> str:
    """At most 11 characters: "just now", "5 min ago", "2 h ago", "Mon 14:05", "3 Nov",
    "3 Nov 2024". A time ahead of the clock (a sender's wrong clock) shows as a date."""
    moment = parse(stored)
    if moment is None:
        return stored or ""
    now = (now or datetime.now(UTC)).astimezone()
    age = now - moment
    if timedelta(0) <= age < timedelta(minutes=1):
        return "just now"
    if timedelta(0) <= age < timedelta(hours=1):
        return f"{age.seconds // 60} min ago"
    if timedelta(0) <= age < timedelta(hours=12):
        return f"{age.seconds // 3600} h ago"
    if timedelta(0) <= age < timedelta(days=6):
        return moment.strftime("%a %H:%M")
    if moment.year == now.year:
        return f"{moment.day} {moment:%b}"
    return f"{moment.day} {moment:%b %Y}"


def absolute(stored: str | None) -> str:
    """"Mon 2 Nov 2026 10:00 CET": the day, the date, the time and the zone."""
    moment = parse(stored)
    if moment is None:
        return stored or ""
    zone = moment.strftime("%Z") or moment.strftime("%z")
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M} {zone}"
