"""Raw bytes to a ``ParsedMail``: mail-parser for the MIME work, plus the caps that keep
hostile mail from costing more than it should. Pure: bytes in, values out.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

import mailparser

from .limits import Limits
from .threader import bare_message_id

# mail-parser logs a warning for every part it does not render (signatures, calendars...):
# noise for us, since we keep the raw message anyway.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

_WHITESPACE = re.compile(r"\s+")
# A line break as the standard library's parser reads one: CRLF, LF, or a lone CR.
_EOL = rb"(?:\r\n|\r(?!\n)|\n)"
_HEADER_END = re.compile(_EOL + _EOL)
# A Received header with its folded continuation lines, searched for in the header section
# lowercased: a case-insensitive pattern is tried at every position, a case-sensitive one
# that starts with its literal "received:" skips ahead to it (bytes.lower changes ASCII letters
# only, as re.I matches them in bytes, so the spans are the same). The lookbehind is
# re.M's "^" (the start, or after a "\n"), put after the literal.
_RECEIVED_LOWERCASE = re.compile(rb"received:(?<![^\n]received:)[^\n]*\n(?:[ \t][^\n]*\n)*")
# A multipart boundary, wherever it is declared (RFC 2046 allows at most 70 characters), and
# any mention of one, readable here or not (RFC 2231: boundary*=, boundary*0=...).
_BOUNDARY = re.compile(rb'boundary[ \t\r\n]*=[ \t\r\n]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))',
                       re.I)
_BOUNDARY_MENTION = re.compile(rb"boundary[ \t\r\n]*[*0-9]*[ \t\r\n]*=", re.I)
# The same, for the message lowercased: a case-insensitive pattern is tried at every position,
# a case-sensitive one skips ahead to its literal text ("boundary"), several times faster.
# bytes.lower changes ASCII letters only, as re.I matches them in bytes: the same matches.
_BOUNDARY_MENTION_LOWERCASE = re.compile(_BOUNDARY_MENTION.pattern)
# Messages up to this size (nearly all mail) are scanned lowercased, a copy of at most this
# much; larger ones as they are (the caps must not cost as much memory as the message).
LOWERCASE_SCAN_LIMIT = 64 * 1024
# "--" at the start of a line (the lookbehind keeps the search on its fast literal prefix),
# and the rest of that line.
_DASH_LINE = re.compile(rb"--(?<![^\r\n]--)([^\r\n]*)")
# The tags that html2text indents for: its output grows with the square of their nesting.
_INDENTING_TAG = re.compile(r"<\s*(/?)\s*(?:blockquote|ul|ol)\b", re.I)


# mail-parser's private hook that the adapter below overrides, with its parameters (as of
# mail-parser 4.8); tests/test_parse.py checks it against the installed release.
MAILPARSER_HOOK = "_make_mail"
MAILPARSER_HOOK_PARAMETERS = ("self", "complete")


def _lean_parser(base: type[mailparser.MailParser]) -> type[mailparser.MailParser]:
    """``base`` without its summary dictionaries (``.mail``, ``.mail_partial``), which it
    builds eagerly, twice, from every header and part, while we read the few attributes we
    need. Should a later mail-parser rename the hook or change its parameters, ``base``
    itself: slower, never different."""
    hook = getattr(base, MAILPARSER_HOOK, None)
    if not callable(hook) or \
            tuple(inspect.signature(hook).parameters) != MAILPARSER_HOOK_PARAMETERS:
        return base

    def no_summary(self: mailparser.MailParser, complete: bool = True) -> dict:
        return {}

    return type("_MailParser", (base,), {MAILPARSER_HOOK: no_summary})


_MailParser = _lean_parser(mailparser.MailParser)


class Unparseable(Exception):
    """The message cannot be taken in; the text is the quarantine reason."""


@dataclass(frozen=True)
class Address:
    name: str
    address: str  # lowercased

    def formatted(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    synthetic_message_id: bool
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    delivered_to: tuple[str, ...]
    x_original_to: tuple[str, ...]
    date: datetime | None
    in_reply_to: str
    references: str
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    identity_sha256: str
    message: Message = field(compare=False, repr=False)


def parse(raw: bytes, limits: Limits | None = None) -> ParsedMail:
    limits = limits or Limits()
    _check_size(raw, limits)
    lean = _without_trace_headers(raw)
    try:
        parsed: mailparser.MailParser | _StdlibView = _MailParser.from_bytes(lean)
    except RecursionError:
        raise Unparseable("MIME structure nested too deeply to parse") from None
    except MemoryError:
        raise  # the analysis budget's to report, not a parser bug to work around
    except Exception as error:  # mail-parser raises many kinds on broken input
        try:
            parsed = _stdlib_view(lean)
        except Exception:
            raise Unparseable(
                f"mail-parser failed: {type(error).__name__}: {error}") from None
    message = parsed.message
    _check_structure(message, limits)

    headers = message
    sender = _first_address(parsed.from_)
    text = _join_parts(parsed.text_plain)
    html = _join_parts(parsed.text_html)
    if html and not text:  # only then is the HTML converted (cleanup.html_to_text)
        _check_html_depth(html, limits)
    subject = _one_line(_decoded(parsed, "subject"))
    date = _date(headers.get("Date"))
    declared_id = bare_message_id(str(headers.get("Message-ID", "") or ""))
    identity_body = _normalise_body(text) + "\0" + _normalise_body(html)
    if declared_id:
        message_id, synthetic = declared_id, False
    else:
        material = "\0".join([
            sender.address if sender else "", str(headers.get("Date", "")), subject,
            identity_body,
        ])
        message_id = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        message_id, synthetic = f"{message_id}@synthetic.mailthreads.invalid", True
    attachments = tuple(_attachments(parsed.attachments))
    identity = hashlib.sha256("\0".join([
        message_id, sender.address if sender else "", identity_body,
        *(hashlib.sha256(a.content).hexdigest() for a in attachments),
    ]).encode("utf-8", "surrogatepass")).hexdigest()

    return ParsedMail(
        message_id=message_id,
        synthetic_message_id=synthetic,
        subject=subject,
        sender=sender,
        to=_addresses(parsed.to),
        cc=_addresses(parsed.cc),
        delivered_to=_header_addresses(headers, "Delivered-To"),
        x_original_to=_header_addresses(headers, "X-Original-To"),
        date=date,
        in_reply_to=_one_line(_all_values(headers, "In-Reply-To")),
        references=_one_line(_all_values(headers, "References")),
        text=text,
        html=html,
        attachments=attachments,
        identity_sha256=identity,
        message=message,
    )


@dataclass
class _StdlibView:
    """The few mail-parser attributes we use, from the standard library alone: the fallback for
    the rare message that trips a mail-parser bug, so that it is filed, not quarantined."""

    message: Message
    from_: list[tuple[str, str]]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    subject: str
    text_plain: list[str]
    text_html: list[str]
    attachments: list[dict]


def _stdlib_view(raw: bytes) -> _StdlibView:
    import base64
    import email
    from email.header import decode_header, make_header
    from email.utils import getaddresses

    message = email.message_from_bytes(raw)

    def decoded(value: object) -> str:
        try:
            return str(make_header(decode_header(str(value))))
        except Exception:
            return str(value)

    def addresses(name: str) -> list[tuple[str, str]]:
        return getaddresses([decoded(v) for v in message.get_all(name) or []])

    plain: list[str] = []
    html: list[str] = []
    attachments: list[dict] = []
    stack = [message]
    while stack:
        part = stack.pop()
        content_type = part.get_content_type()
        if part.is_multipart() and not content_type.startswith("message/"):
            payload = part.get_payload()
            stack.extend(reversed(payload if isinstance(payload, list) else []))
            continue
        content = _embedded_bytes(part) if part.is_multipart() \
            else part.get_payload(decode=True)
        content = content if isinstance(content, bytes) else b""
        filename = _parameter(part.get_filename)
        if content_type in ("text/plain", "text/html") and not filename \
                and part.get_content_disposition() != "attachment":
            try:
                text = content.decode(_parameter(part.get_content_charset) or "utf-8", "replace")
            except LookupError:  # a charset Python does not know
                text = content.decode("utf-8", "replace")
            (plain if content_type == "text/plain" else html).append(text)
        else:
            attachments.append({"filename": decoded(filename or "part"), "binary": True,
                                "payload": base64.b64encode(content).decode("ascii"),
                                "mail_content_type": content_type})
    return _StdlibView(message, addresses("From"), addresses("To"), addresses("Cc"),
                       decoded(message.get("Subject", "")), plain, html, attachments)


def _parameter(read: Callable[[], str | None]) -> str | None:
    """A header parameter, or None where the standard library cannot read it: it raises
    TypeError on RFC 2231 continuations that mix ``name*`` with ``name*1``."""
    try:
        return read()
    except (TypeError, ValueError, LookupError):
        return None


def _embedded_bytes(part: Message) -> bytes:
    """An attached message/rfc822 part as bytes. ``as_bytes`` cannot write an 8-bit header it
    has to refold (an 8-bit boundary, say); the text form encodes such headers instead."""
    try:
        return part.as_bytes()
    except (UnicodeError, LookupError):
        return part.as_string().encode("utf-8", "surrogateescape")


def _check_size(raw: bytes, limits: Limits) -> None:
    if len(raw) > limits.max_message_size:
        raise Unparseable(
            f"message is {len(raw):,} bytes, over the {limits.max_message_size:,} byte limit")
    end = _header_end(raw, limits.max_header_size + 4)
    if end is None and len(raw) > limits.max_header_size:
        raise Unparseable(f"header section is over the {limits.max_header_size:,} byte limit")
    # (One lowercased copy for both scans, in a message small enough for one.)
    lowered = raw.lower() if len(raw) <= LOWERCASE_SCAN_LIMIT else None
    _check_part_count(raw, limits, lowered)
    _check_parameters(raw, limits, lowered)


def _header_end(raw: bytes, endpos: int | None = None) -> int | None:
    """Where ``_HEADER_END`` first matches in ``raw[:endpos]`` (the empty line that ends the
    header section), or None. Mail with LF line ends only, most of it, needs no regex: there
    the first match can only be the first "\n\n"."""
    stop = len(raw) if endpos is None else min(endpos, len(raw))
    blank_line = raw.find(b"\n\n", 0, stop)
    if raw.find(b"\r", 0, stop if blank_line < 0 else blank_line + 2) < 0:
        return None if blank_line < 0 else blank_line
    match = _HEADER_END.search(raw, 0, stop)
    return None if match is None else match.start()


def _check_part_count(raw: bytes, limits: Limits, lowered: bytes | None = None) -> None:
    """Count the MIME parts by their boundary lines, before the parser builds them all.

    Every part after the first starts at a delimiter line, ``--`` and a boundary the message
    declares, whether or not the part has headers of its own. Counting delimiter lines of every
    declared boundary, wherever it is declared, gives an upper bound, in one regex scan. A
    boundary this cannot read (RFC 2231 encoded or continued, a quoted one folded over lines)
    makes every line that starts with ``--`` count.
    """
    boundaries: set[bytes] = set()
    unread = False
    mentions = _BOUNDARY_MENTION.finditer(raw) if lowered is None \
        else _BOUNDARY_MENTION_LOWERCASE.finditer(lowered)  # ``raw.lower()``: the same spans
    for mention in mentions:
        value = _BOUNDARY.match(raw, mention.start())
        if value is None:
            unread = True
            break
        boundaries.add(value.group(1) or value.group(2))
        if len(boundaries) > limits.max_mime_parts:
            raise Unparseable(f"message declares over {limits.max_mime_parts:,} multipart "
                              f"boundaries, over the {limits.max_mime_parts:,} part limit")
    if not boundaries and not unread:
        return
    # Every line that starts with "--", then one of the boundaries alone on it (trailing blanks
    # allowed), not the closing "--boundary--". One fixed pattern and a set lookup: a pattern
    # made of each message's own boundaries cost a regex compilation per message.
    longest = max(map(len, boundaries), default=0)
    parts = 1
    for line in _DASH_LINE.finditer(raw):
        if unread or _delimits(line.group(1), boundaries, longest):
            parts += 1
            if parts > limits.max_mime_parts:
                raise Unparseable("message has more MIME parts (counted by their boundary "
                                  "lines) than allowed: over the "
                                  f"{limits.max_mime_parts:,} part limit")


def _delimits(rest: bytes, boundaries: set[bytes], longest: int) -> bool:
    """Whether a line that is "--" and ``rest`` is a delimiter line: ``rest`` is a boundary
    followed by spaces or tabs only (the closing "--" is neither)."""
    text_end = len(rest.rstrip(b" \t"))
    return any(rest[:end] in boundaries
               for end in range(text_end, min(len(rest), longest) + 1))


@functools.lru_cache(maxsize=8)
def _overlong_parameters(limit: int, flags: int = re.I) -> re.Pattern[bytes]:
    """A Content-Type or Content-Disposition field, folded or not, with over ``limit``
    parameters. Possessive loops: the scan stays linear whatever the input. With ``flags``
    0: the case-sensitive twin, for a message lowercased (see LOWERCASE_SCAN_LIMIT)."""
    field_text = rb"(?:[^;\r\n]|(?:\r\n|\r|\n)[ \t])*+"
    # ("content-" first, then the test that a line starts there: a literal start lets a
    # case-sensitive search skip ahead.)
    return re.compile(rb"content-(?<![^\r\n]content-)(?:type|disposition)[ \t]*:"
                      + rb"(?:" + field_text + rb";){" + str(limit + 1).encode() + rb"}", flags)


def _check_parameters(raw: bytes, limits: Limits, lowered: bytes | None = None) -> None:
    """CPython splits header parameters in quadratic time: a Content-Type of 250 KB of
    semicolons inside the header cap costs seconds. Cap them before anything parses them."""
    limit = limits.max_header_parameters
    if raw.count(b";") <= limit:
        return
    if lowered is None:
        overlong = _overlong_parameters(limit).search(raw)
    else:  # ``raw.lower()``
        overlong = _overlong_parameters(limit, 0).search(lowered)
    if overlong:
        raise Unparseable(f"a Content-Type or Content-Disposition header has over "
                          f"{limits.max_header_parameters:,} parameters")


def _check_html_depth(html: str, limits: Limits) -> None:
    """Nested blockquotes and lists: html2text's output, and its time, grow with the square of
    the depth (130 KB of nested blockquotes became 100 MB of text)."""
    depth = 0
    for tag in _INDENTING_TAG.finditer(html):
        depth = max(depth - 1, 0) if tag.group(1) else depth + 1
        if depth > limits.max_html_depth:
            raise Unparseable(f"HTML blockquotes and lists nested over "
                              f"{limits.max_html_depth} deep")


def _without_trace_headers(raw: bytes) -> bytes:
    """Drop the Received headers, which we never read, before mail-parser analyses them all
    (a large share of its time on relayed mail). The raw message is stored unchanged."""
    end = _header_end(raw)
    if end is None:
        return raw
    cut = end + (2 if raw.startswith(b"\r\n", end) else 1)
    view = memoryview(raw)  # slices without copies; the join below makes the one copy
    kept: list[memoryview] = []
    kept_from = 0
    for received in _RECEIVED_LOWERCASE.finditer(raw[:cut].lower()):
        kept.append(view[kept_from:received.start()])
        kept_from = received.end()
    if not kept:
        return raw
    kept.append(view[kept_from:])
    return b"".join(kept)


def _check_structure(message: Message, limits: Limits) -> None:
    parts = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > limits.max_mime_depth:
            raise Unparseable(f"MIME parts nested over {limits.max_mime_depth} deep")
        if parts > limits.max_mime_parts:
            raise Unparseable(f"message has over {limits.max_mime_parts:,} MIME parts")
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def _decoded(parsed: mailparser.MailParser | _StdlibView, name: str) -> str:
    try:
        value = getattr(parsed, name)
    except Exception:
        return ""
    return value if isinstance(value, str) else ""


def _all_values(message: Message, name: str) -> str:
    return " ".join(str(value) for value in (message.get_all(name) or []))


def _one_line(value: str) -> str:
    """Fold and clean a header value: no CR/LF can survive into anything we store or send."""
    return _WHITESPACE.sub(" ", value).strip()


def _first_address(pairs: list[tuple[str, str]]) -> Address | None:
    addresses = _addresses(pairs)
    return addresses[0] if addresses else None


def _addresses(pairs: list[tuple[str, str]] | None) -> tuple[Address, ...]:
    result = []
    for name, address in pairs or []:
        address = _one_line(address or "").lower()
        if "@" in address:
            result.append(Address(_one_line(_decode_words(name or "")), address))
    return tuple(result)


def _decode_words(value: str) -> str:
    """RFC 2047 words that mail-parser leaves encoded (it does when they decode to CR/LF, a
    header injection attempt); decoded here so ``_one_line`` can fold the line breaks away."""
    if "=?" not in value:
        return value
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _header_addresses(message: Message, name: str) -> tuple[str, ...]:
    from email.utils import getaddresses

    values = [str(v) for v in message.get_all(name) or []]
    if not values:  # most messages: spares getaddresses parsing an empty list
        return ()
    return tuple(a.lower() for _, a in getaddresses(values) if "@" in a)


def _date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    try:
        return date.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _join_parts(parts: list[str]) -> str:
    return "\n\n".join(part for part in parts if part and part.strip())


def _normalise_body(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _attachments(items: list[dict]) -> list[Attachment]:
    import base64
    import binascii

    result = []
    for item in items:
        payload = item.get("payload") or ""
        if item.get("binary"):
            try:
                content = base64.b64decode(payload)
            except (binascii.Error, ValueError):
                content = payload.encode("ascii", "replace")
        else:
            content = payload.encode("utf-8", "surrogateescape")
        result.append(Attachment(
            filename=_one_line(str(item.get("filename") or "attachment")),
            content_type=str(item.get("mail_content_type") or "application/octet-stream"),
            content=content,
        ))
    return result
