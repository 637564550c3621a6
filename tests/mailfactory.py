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


def bounce_of(original_id: str) -> bytes:
    """A delivery status notification for ``original_id``, as Postfix writes one."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        "To: me@blog.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce1@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; jane@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: me@blog.example\r\nTo: jane@example.com\r\nMessage-ID: <{original_id}>\r\n"
        "Subject: Re: Why I blog\r\n"
        "--B--\r\n"
    ).encode()


# Hostile shapes (issue 8): each is cheap to build at any size, so tests can keep them small
# and benchmarks/hostile_parse.py can measure them at the size limit.
_HOSTILE_HEADER = (
    "From: Mallory <mallory@example.com>\r\nTo: reply+why-i-blog@blog.example\r\n"
    "Subject: Re: Why I blog\r\nMessage-ID: <hostile@example.com>\r\nMIME-Version: 1.0\r\n"
)


def parts_without_content_type(size: int) -> bytes:
    """A multipart message of tiny parts that have no Content-Type header of their own."""
    head = (_HOSTILE_HEADER + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n').encode()
    part = b"--b\r\n\r\nx\r\n"
    return head + part * max(1, (size - len(head)) // len(part)) + b"--b--\r\n"


def nested_html(size: int) -> bytes:
    head = (_HOSTILE_HEADER + "Content-Type: text/html; charset=utf-8\r\n\r\n").encode()
    return head + b"<div>" * max(1, (size - len(head)) // 5) + b"hi\r\n"


def quote_lines(size: int) -> bytes:
    head = (_HOSTILE_HEADER + "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Thanks!\r\n\r\n").encode()
    line = b">\n"
    return head + line * max(1, (size - len(head)) // len(line))


def semicolon_content_type(length: int) -> bytes:
    """A Content-Type of ``length`` semicolons: CPython splits its parameters in quadratic time."""
    return (_HOSTILE_HEADER + "Content-Type: text/plain" + ";" * length
            + "\r\n\r\nhello\r\n").encode()
