"""Compose the author's answer: the editor template, the reply's headers, the message bytes.

Pure: values in, text or bytes out; no database, no network, no clock (the caller passes the
date and the Message-ID, so that a composed message is reproducible and testable).

Everything taken from received mail reaches a header only through ``header_text`` (subjects,
display names: control characters are taken out, so a stray NUL never blocks an answer) or
``check_header`` (addresses, message ids: refused if unsafe). The parser already folds
whitespace, but a value that reached the database some other way, or an encoded word that
decodes to a line break, must not be able to add a header (``Bcc:``) or a body.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime

from .classify import MACHINE_KINDS
from .records import ThreadMessage

KIND_NAMES = {"auto_reply": "an auto-reply", "bounce": "a bounce",
              "feedback_report": "a feedback (abuse) report", "other": "an automatic message"}

# References keeps the thread's root and the newest ancestors: enough for every client's
# threading (they need the root or the parent), short enough for relays that cap header size.
MAX_REFERENCES = 12
# RFC 3676: lines longer than 78 characters are sent as format=flowed, wrapped at 72.
FLOW_THRESHOLD = 78
FLOW_WIDTH = 72
COMMENT = "#"
SIGNATURE_SEPARATOR = "-- "

_UNSAFE = re.compile(r"[\r\n\0]")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x1c-\x1f\x85\u2028\u2029]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Encoded words inside encoded words: each level is decoded (the email package would decode
# the next one when it writes the header); deeper than this is no honest mail.
MAX_ENCODED_WORD_NESTING = 4
_MESSAGE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
# Reply prefixes in the languages mail clients most often use, with optional counters
# ("Re[2]:", "AW:", "SV:", "Antw:", "Odp:"): one "Re: " replaces all of them. Forward prefixes
# ("Fwd:", "WG:", "TR:", "RV:") stay in a reply's subject, but not in ``bare_subject``.
_REPLY_WORDS = r"re|aw|sv|vs|antw|odp|ynt|r"
_FORWARD_WORDS = r"fwd?|wg|tr|rv"
_COUNTER = r"(?:\[\d+\]|\(\d+\))?"
_PREFIXES = re.compile(rf"^(?:\s*(?:{_REPLY_WORDS})\s*{_COUNTER}\s*[:：])+\s*", re.IGNORECASE)
_REPLY_OR_FORWARD_PREFIXES = re.compile(
    rf"^(?:\s*(?:{_REPLY_WORDS}|{_FORWARD_WORDS})\s*{_COUNTER}\s*[:：])+\s*", re.IGNORECASE)


class UnsafeHeader(ValueError):
    """A header value would carry a line break (header injection) or is not well formed."""


@dataclass(frozen=True)
class Reply:
    """The headers of one answer. ``subject`` is the answered message's; "Re:" is added here."""

    from_name: str
    from_address: str
    to_name: str
    to_address: str
    subject: str
    reply_to: str
    message_id: str  # bare, ours: <id> is added here
    date: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


def check_header(name: str, value: str) -> str:
    """``value`` unchanged if it is safe in a header; ``UnsafeHeader`` naming ``name`` if not."""
    if _UNSAFE.search(value):
        raise UnsafeHeader(f"refusing to send: the {name} contains a line break "
                           f"(header injection?): {value!r}")
    return value


def header_text(name: str, value: str) -> str:
    """Received text for a header, encoded words decoded, control characters taken out.

    Python's email package decodes encoded words it finds in a value and, when it folds the
    header again, writes a decoded CR/LF out as a real line break (CPython 3.11.7:
    ``=?utf-8?q?Hi=0D=0ABcc=3A_x?=`` in a Subject becomes a Bcc header), and an encoded word
    can hide another one. So the value is decoded until nothing changes and cleaned at every
    level: line breaks and tabs become a space, other control characters (a NUL) go. What
    goes in is then exactly the text the email package keeps (re-encoded as needed).
    """
    text = without_controls(value)
    for _ in range(MAX_ENCODED_WORD_NESTING + 1):
        if "=?" not in text:
            return text
        try:
            # The email package's own reading of the value: what it would write out.
            decoded = without_controls(str(policy.SMTP.header_factory("Subject", text)))
        except (HeaderParseError, UnicodeError, LookupError, ValueError, IndexError):
            raise UnsafeHeader(f"refusing to send: the {name} has broken encoded words: "
                               f"{value!r}") from None
        if decoded == text:
            return text
        text = decoded
    raise UnsafeHeader(f"refusing to send: the {name} has encoded words nested more than "
                       f"{MAX_ENCODED_WORD_NESTING} deep: {value!r}")


def without_controls(value: str) -> str:
    """``value`` with line breaks and tabs made one space and other control characters
    removed: what a header may carry of a received subject or name."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", value))


def answer_subject(subject: str) -> str:
    """The Subject an answer to ``subject`` (received text) goes out with."""
    return reply_subject(header_text("Subject", subject))


def bare_subject(subject: str) -> str:
    """The subject without reply and forward prefixes, folded for comparing discussions."""
    return _REPLY_OR_FORWARD_PREFIXES.sub("", subject.strip(), count=1).strip().casefold()


def reply_subject(subject: str) -> str:
    """"Re: " once, however many reply prefixes the subject already has."""
    rest = _PREFIXES.sub("", subject.strip(), count=1).strip()
    return f"Re: {rest}" if rest else "Re: your reply"


def thread_references(parent_id: str | None, parent_chain: Iterable[str],
                      limit: int = MAX_REFERENCES) -> tuple[str, ...]:
    """References for an answer to ``parent_id``: its ancestors then itself, trimmed.

    Ids that are not well formed are left out (a client cannot thread on them); ids with line
    breaks are refused, since only tampering puts them there.
    """
    ids: list[str] = []
    for message_id in (*parent_chain, *((parent_id,) if parent_id else ())):
        check_header("References", message_id)
        if _MESSAGE_ID.match(message_id) and message_id not in ids:
            ids.append(message_id)
    if len(ids) > limit:
        ids = [ids[0], *ids[-(limit - 1):]]
    return tuple(ids)


def usable_message_id(message_id: str | None, synthetic: bool = False) -> str | None:
    """The answered message's id for In-Reply-To, or None when clients could not use it."""
    if not message_id or synthetic:
        return None  # an id mailthreads derived exists nowhere but here
    check_header("In-Reply-To", message_id)
    return message_id if _MESSAGE_ID.match(message_id) else None


def new_message_id(domain: str) -> str:
    """A fresh id on the blog's domain. Not pure (clock and randomness): kept tiny."""
    return f"{int(time.time())}.{secrets.token_hex(10)}.mailthreads@{domain}"


# Choosing what to answer --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    message: ThreadMessage
    warning: str | None  # set when the author must confirm: machine mail


def choose_target(messages: Sequence[ThreadMessage], to_message: str | None) -> Target:
    """The message an answer replies to: ``to_message`` (row id or Message-ID) or the last one.

    Machine mail is never answered silently: the warning names it and asks. When the thread
    merely ends with machine mail, the answer goes to the last human message instead, so that
    the quote and the threading are about the discussion, not about an out-of-office.
    Raises ``LookupError`` when ``to_message`` is not in the thread.
    """
    if not messages:
        raise LookupError("the thread has no messages")
    if to_message is not None:
        wanted = to_message.strip().strip("<>")
        for message in messages:
            if str(message.id) == wanted or message.message_id == wanted:
                return Target(message, _machine_warning(message, "the message you chose"))
        raise LookupError(f"no message {to_message!r} in this thread")
    last = messages[-1]
    warning = _machine_warning(last, "the last message of this thread")
    if warning is None:
        return Target(last, None)
    human = [m for m in messages if m.kind not in MACHINE_KINDS]
    return Target(human[-1] if human else last, warning)


def recipient(messages: Sequence[ThreadMessage], target: ThreadMessage,
              fallback: tuple[str, str]) -> tuple[str, str]:
    """(name, address) the answer goes to: the correspondent, at the address they last used.

    Never the sender of machine mail (a bounce comes from MAILER-DAEMON), never the author.
    """
    def person(message: ThreadMessage) -> bool:
        return (message.direction == "in" and message.kind not in MACHINE_KINDS
                and bool(message.from_address))

    if person(target):
        return target.from_name, target.from_address
    for message in reversed(messages):
        if person(message):
            return message.from_name, message.from_address
    return fallback


def _machine_warning(message: ThreadMessage, which: str) -> str | None:
    if message.kind not in MACHINE_KINDS:
        return None
    reasons = message.kind_reasons
    detail = f" ({reasons[0]})" if reasons else ""
    return (f"{which} is {KIND_NAMES.get(message.kind, 'automatic mail')}{detail}, "
            "not written by a person")


# The editor template ------------------------------------------------------------------------


def attribution(date_iso: str | None, name: str, address: str) -> str:
    who = name or address or "you"
    when = _human_date(date_iso)
    return f"On {when}, {who} wrote:" if when else f"{who} wrote:"


def _human_date(date_iso: str | None) -> str:
    if not date_iso:
        return ""
    try:
        moment = datetime.fromisoformat(date_iso.replace("Z", "+00:00"))
    except ValueError:
        return date_iso
    moment = moment.astimezone(UTC)
    return f"{moment:%a}, {moment.day} {moment:%b %Y %H:%M} UTC"


def quote(text: str) -> str:
    lines = text.strip("\n").splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() if line.strip() else ">" for line in lines)


def template(quoted_header: str, quoted_text: str, notes: Sequence[str]) -> str:
    """The text the editor opens with, like ``git commit``'s: room on top, quote below, notes."""
    comment_lines = [
        "Write your answer above the quote; trim the quote as you like.",
        f"Lines starting with '{COMMENT}' are dropped. An empty answer sends nothing.",
        "",
        *notes,
    ]
    return "\n".join([
        "",
        "",
        quoted_header,
        quote(quoted_text),
        "",
        *(f"{COMMENT} {line}".rstrip() for line in comment_lines),
        "",
    ])


def body_from_edit(text: str) -> str:
    """The edited template cleaned up as ``git commit`` does: comment lines dropped, trailing
    spaces trimmed, runs of blank lines made one, blank lines at either end removed."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(COMMENT):
            continue
        line = _rstrip_line(line)
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip("\n")


def has_new_text(body: str, quoted_header: str | None = None) -> bool:
    """Whether the author wrote anything besides the quote they were given."""
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(">"):
            continue
        if quoted_header is not None and stripped == quoted_header.strip():
            continue
        return True
    return False


def _rstrip_line(line: str) -> str:
    # "-- " is the signature separator: its trailing space is what makes it one.
    return line if line == SIGNATURE_SEPARATOR else line.rstrip()


# format=flowed (RFC 3676) --------------------------------------------------------------------


def flow(body: str, width: int = FLOW_WIDTH) -> tuple[str, bool]:
    """The body as sent, and whether it is format=flowed.

    Short lines go as they are. When a line is too long for a mail client to show unwrapped,
    the whole body goes flowed: long lines are broken at spaces with a trailing space (a soft
    break that flowed-aware clients join again), quote markers repeat on every piece, and lines
    that would read as quotes or mbox "From " lines are space-stuffed.
    """
    lines = [_rstrip_line(line) for line in body.replace("\r\n", "\n").split("\n")]
    if all(len(line) <= FLOW_THRESHOLD for line in lines):
        return "\n".join(lines), False
    flowed: list[str] = []
    for line in lines:
        flowed.extend(_flow_line(line, width))
    return "\n".join(flowed), True


def _flow_line(line: str, width: int) -> list[str]:
    if line == SIGNATURE_SEPARATOR:
        return [line]
    depth = len(line) - len(line.lstrip(">"))
    text = line[depth:]
    if depth and text.startswith(" "):
        text = text[1:]  # the conventional space after quote markers is stuffing, not text
    prefix = ">" * depth + (" " if depth else "")
    pieces = _wrap(text, max(width - len(prefix), 20))
    result = []
    for piece in pieces:
        if not depth and (piece.startswith((" ", ">")) or piece.startswith("From ")):
            piece = " " + piece
        # An empty quoted line stays ">": a trailing space would make it a soft break.
        result.append((prefix + piece) if piece else prefix.rstrip())
    return result


def _wrap(text: str, width: int) -> list[str]:
    pieces = []
    while len(text) > width:
        cut = text.rfind(" ", 1, width)
        if cut == -1:
            cut = text.find(" ", width)  # a word longer than the line: keep it whole
            if cut == -1:
                break
        pieces.append(text[:cut + 1])  # the space stays on this piece: it marks a soft break
        text = text[cut + 1:]
    pieces.append(text)
    return pieces


# The message --------------------------------------------------------------------------------


def compose(reply: Reply, body: str) -> bytes:
    """The answer as it goes on the wire: CRLF line ends, 7-bit safe, UTF-8 text."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _address("From", reply.from_name, reply.from_address)
    message["To"] = _address("To", reply.to_name, reply.to_address)
    message["Reply-To"] = _address("Reply-To", "", reply.reply_to)
    message["Subject"] = answer_subject(reply.subject)
    message["Date"] = format_datetime(reply.date.astimezone(UTC))
    message["Message-ID"] = f"<{_own_id(reply.message_id)}>"
    in_reply_to = usable_message_id(reply.in_reply_to)
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    references = thread_references(None, reply.references)
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references)
    text, flowed = flow(body)
    text = text.rstrip("\n") + "\n"
    ascii_only = text.isascii() and all(len(line) <= 998 for line in text.splitlines())
    # Quoted-printable whenever 7bit is not enough: a relay without 8BITMIME must pass it as
    # is, and it protects the trailing spaces that format=flowed depends on.
    message.set_content(text, subtype="plain", charset="utf-8",
                        cte="7bit" if ascii_only else "quoted-printable",
                        params={"format": "flowed"} if flowed else None)
    raw = message.as_bytes()
    _verify_headers(raw, [name.lower() for name in message])
    return raw


def _verify_headers(raw: bytes, expected: list[str]) -> None:
    """Read the header block back: exactly the headers set, once each, or nothing goes out.

    The last line of defence against header injection, whatever the email package does.
    """
    found = [name.lower() for name in
             BytesHeaderParser(policy=policy.compat32).parsebytes(raw)]
    if sorted(found) != sorted(expected):
        raise UnsafeHeader(f"refusing to send: the composed message has headers {found}, "
                           f"not {expected}")


def _address(header: str, name: str, address: str) -> Address:
    try:
        name = header_text(f"{header} name", name)
    except UnsafeHeader:
        name = ""  # a name is optional: an unreadable one must not stop the answer
    check_header(f"{header} address", address)
    if not address.isascii():
        raise UnsafeHeader(f"{header} address {address!r} is not plain ASCII")
    try:
        result = Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError) as error:
        raise UnsafeHeader(f"{header} address {address!r} is not usable: {error}") from None
    if result.addr_spec != address or not result.domain:
        raise UnsafeHeader(f"{header} address {address!r} is not a plain address")
    return result


def _own_id(message_id: str) -> str:
    check_header("Message-ID", message_id)
    if not _MESSAGE_ID.match(message_id):
        raise UnsafeHeader(f"Message-ID {message_id!r} is not local@domain")
    return message_id


def reply_from_raw(raw: bytes, *, date: datetime) -> Reply:
    """The headers of an answer already composed (an outbox entry), to compose it again with
    new text: same recipient, subject, Reply-To and Message-ID, a new Date."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)

    def one_address(name: str) -> tuple[str, str]:
        addresses = getattr(headers[name], "addresses", ())
        return (addresses[0].display_name, addresses[0].addr_spec) if addresses else ("", "")

    from_name, from_address = one_address("From")
    to_name, to_address = one_address("To")
    _, reply_to = one_address("Reply-To")
    ids = re.findall(r"<([^<>\s]+)>", str(headers["References"] or ""))
    in_reply_to = re.findall(r"<([^<>\s]+)>", str(headers["In-Reply-To"] or ""))
    [message_id] = re.findall(r"<([^<>\s]+)>", str(headers["Message-ID"]))
    return Reply(from_name=from_name, from_address=from_address, to_name=to_name,
                 to_address=to_address, subject=str(headers["Subject"] or ""),
                 reply_to=reply_to, message_id=message_id, date=date,
                 in_reply_to=in_reply_to[0] if in_reply_to else None, references=tuple(ids))
