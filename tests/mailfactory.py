"""Build test messages as raw bytes, the way a mail client would send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

_BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def message(
    *,
    sender: str = "Jane Reader <jane@example.com>",
    to: str = "reply+why-i-blog@blog.example",
    subject: str = "Re: Why I blog",
    body: str = "I enjoyed this post.\n",
    message_id: str | None = "<m1@example.com>",
    in_reply_to: str | None = None,
    references: str | None = None,
    minutes: int = 0,
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(_BASE + timedelta(minutes=minutes))
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)
