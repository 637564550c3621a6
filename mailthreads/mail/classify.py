"""Tell human replies apart from machine mail (bounces, auto-replies, reports).

Pure and stdlib-only: the input is an already parsed ``email.message.Message``
(compat32 policy, as produced by ``email.message_from_bytes``), the output a
``Classification``.  Nothing here does I/O.

Design notes
------------
* Wrongly calling a human reply machine mail loses a reader's comment, while
  the reverse only lets some machine mail through as if a person wrote it.  So
  ``reply`` is
  the default, and every machine verdict needs either mail structure that no
  mail client produces for a person (RFC 3464/5965/8098 reports, provider
  notification formats) or header evidence.  Bounce wording in a body only
  counts when some header already says "machine", because people paste bounce
  texts into their replies.
* Input may be hostile or malformed.  Every check runs under ``_safely`` and
  falls through on error; the MIME walk is iterative and capped at
  ``max_parts`` parts (the ``[limits] max_mime_parts`` the parser enforced) /
  ``MAX_DEPTH`` levels, and no more than
  ``MAX_SCAN_CHARS`` characters of any text are decoded or scanned.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.header import Header, decode_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from functools import cached_property
from typing import Literal, TypeVar

from .limits import Limits
from .threader import bare_message_id

__all__ = [
    "Classification",
    "Kind",
    "classify",
    "MAX_SCAN_CHARS",
    "TEMPORARY_FAILURE",
]

Kind = Literal["reply", "auto_reply", "bounce", "feedback_report", "other"]
# Mail written by software, not a person: stored, never counted as discussion, never answered.
MACHINE_KINDS = frozenset({"auto_reply", "bounce", "feedback_report", "other"})

# The configured [limits] max_mime_parts comes in by classify(); this is its default.
DEFAULT_MAX_PARTS = Limits().max_mime_parts
MAX_DEPTH = 20
MAX_SCAN_CHARS = 64 * 1024
MAX_HEADER_CHARS = 2048
MAX_ATTACHED_ORIGINALS = 5
# Bounce wording counts only near the top of the text: the notice comes first
# and the returned original (which can say anything) comes after it.
BODY_SIGN_WINDOW = 8 * 1024
# The reason a delayed-delivery warning carries among a bounce's reasons (kind_reasons): the
# mail is still queued and may yet arrive, so it must never mark an answer undelivered.
TEMPORARY_FAILURE = "temporary: delivery delayed, the sending server keeps trying"
# Out-of-office wording counts in this many first characters (a notice says it first).
OUT_OF_OFFICE_WINDOW = 1000

_T = TypeVar("_T")


@dataclass(frozen=True)
class Classification:
    """What a message is, and why.

    ``original_message_id`` is, for machine mail, the bare Message-ID (no angle
    brackets) of the message it is about: from the attached message/rfc822 or
    text/rfc822-headers part, else the report's Original-Message-ID field, else
    In-Reply-To (for bounces, last of all a ``Message-ID:`` line quoted in the
    bounce text).  Always None for a ``reply``: its parent is threading's job.
    ``failed_recipients`` is only filled for bounces, lowercased.
    """

    kind: Kind
    reasons: tuple[str, ...]
    original_message_id: str | None
    failed_recipients: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# Small safe accessors
# --------------------------------------------------------------------------


def _safely(func: Callable[[], _T], default: _T) -> _T:
    """Run one check; a malformed message must never abort classification."""
    try:
        return func()
    except Exception:  # noqa: BLE001 - any failure of one check means "no evidence"
        return default


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset and charset != "unknown-8bit":
        try:
            return data.decode(charset, "replace")
        except LookupError:
            pass
    # Raw 8-bit header text: nowadays almost always UTF-8, else some Latin.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _header_text(value: object) -> str:
    """A header value as plain text: RFC 2047 words and raw 8-bit bytes decoded."""
    # compat32 hands out raw 8-bit headers as Header objects, which decode_header
    # takes as they are; plain strings are cut first to bound the work.
    source = value if isinstance(value, Header) else str(value)[:MAX_HEADER_CHARS]
    try:
        chunks = decode_header(source)
    except Exception:  # noqa: BLE001 - malformed encoded words: keep the raw text
        chunks = [(str(source), None)]
    text = "".join(
        chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
        for chunk, charset in chunks
    )
    return " ".join(text[:MAX_HEADER_CHARS].split())


def _header(message: Message, name: str) -> str:
    """The first ``name`` header as bounded plain text ("" if absent)."""
    value = _safely(lambda: message.get(name), None)
    return "" if value is None else _safely(lambda: _header_text(value), "")


def _all_headers(message: Message, name: str) -> list[str]:
    values = _safely(lambda: message.get_all(name) or [], [])
    return [_safely(lambda v=value: _header_text(v), "") for value in values[:20]]


def _content_type(part: Message) -> str:
    return _safely(part.get_content_type, "text/plain").lower()


def _param(part: Message, name: str) -> str:
    value = _safely(lambda: part.get_param(name), None)
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return str(value or "").strip().strip('"').lower()


def _bare_message_id(value: str) -> str | None:
    """``threader.bare_message_id``, None when there is no id."""
    return bare_message_id(value) or None


def _decode_transfer_encoding(raw: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        alphabet_only = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
        whole_quanta = alphabet_only[: len(alphabet_only) // 4 * 4]
        return binascii.a2b_base64(whole_quanta)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(raw)
    return raw


def _part_text(part: Message, limit: int = MAX_SCAN_CHARS) -> str:
    """At most ``limit`` characters of a leaf part's decoded text.

    Decodes by hand from a slice of the raw payload so that a huge attachment
    costs no more than a small one.
    """
    payload = part.get_payload()
    if not isinstance(payload, str):
        return ""
    # base64 needs 4/3 as many raw characters as decoded bytes, plus line breaks.
    raw_text = payload[: limit * 3 // 2 + 16]
    try:
        raw = raw_text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # real non-ASCII text (message_from_string input)
        raw = raw_text.encode("utf-8", "surrogateescape")
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    data = _safely(lambda: _decode_transfer_encoding(raw, encoding), raw)
    charset = _param(part, "charset") or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except (LookupError, ValueError):
        text = data.decode("latin-1")
    return text[:limit]


def _strip_html(html: str) -> str:
    # [^<>] keeps this linear even for text full of unclosed "<".
    return re.sub(r"<[^<>]*>", " ", html)


# --------------------------------------------------------------------------
# Bounded MIME walk
# --------------------------------------------------------------------------


_ATTACHED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_ATTACHED_HEADERS_TYPES = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)


@dataclass(frozen=True)
class _Part:
    part: Message
    content_type: str
    depth: int
    # True below an attached message (message/rfc822): text there is the
    # returned original, not the notice, so it must not be scanned for signs.
    inside_attachment: bool


def _children(part: Message, max_parts: int = DEFAULT_MAX_PARTS) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [child for child in payload[:max_parts] if isinstance(child, Message)]
    return []


def _walk(message: Message, max_parts: int) -> list[_Part]:
    """Depth-first, iterative, at most ``max_parts`` parts and MAX_DEPTH levels."""
    found: list[_Part] = []
    stack: list[tuple[Message, int, bool]] = [(message, 0, False)]
    while stack and len(found) < max_parts:
        part, depth, inside_attachment = stack.pop()
        content_type = _content_type(part)
        found.append(_Part(part, content_type, depth, inside_attachment))
        if depth >= MAX_DEPTH or content_type == "message/delivery-status":
            continue  # delivery-status "children" are field blocks, not MIME parts
        children = _safely(lambda p=part: _children(p, max_parts), [])
        below_attachment = inside_attachment or content_type in _ATTACHED_MESSAGE_TYPES
        for child in reversed(children):
            stack.append((child, depth + 1, below_attachment))
    return found


# --------------------------------------------------------------------------
# Facts gathered once per message
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    message: Message
    envelope_sender: str | None
    parts: list[_Part]
    subject: str
    from_header: str
    notice_text: str  # bounded text of the notice itself (not attached originals)
    # The lowercased names of the message's headers (None if they could not be
    # read): most of the headers the checks ask for are absent, and looking one
    # up in the message scans all of its headers.
    header_names: frozenset[str] | None

    # parseaddr() is one of the dearest steps, and only the header heuristics
    # need the sender, not the messages that a report structure decides.
    @cached_property
    def _from_name_and_address(self) -> tuple[str, str]:
        return _safely(lambda: parseaddr(self.from_header), ("", ""))

    # The top of the notice without quoted lines: several wording checks read it.
    @cached_property
    def unquoted_top(self) -> str:
        return _unquoted_top(self.notice_text)

    @property
    def from_address(self) -> str:
        return self._from_name_and_address[1].strip().lower()

    @property
    def from_name(self) -> str:
        return self._from_name_and_address[0].strip().lower()

    def header(self, name: str) -> str:
        """``_header(self.message, name)``, at once when the message lacks it."""
        if self.header_names is not None and name.lower() not in self.header_names:
            return ""
        return _header(self.message, name)

    def all_headers(self, name: str) -> list[str]:
        """``_all_headers(self.message, name)``, at once when the message lacks it."""
        if self.header_names is not None and name.lower() not in self.header_names:
            return []
        return _all_headers(self.message, name)


def _gather_facts(message: Message, envelope_sender: str | None, max_parts: int) -> _Facts:
    parts = _safely(lambda: _walk(message, max_parts), [])
    return _Facts(
        message=message,
        envelope_sender=envelope_sender,
        parts=parts,
        subject=_header(message, "Subject"),
        from_header=_header(message, "From"),
        notice_text=_safely(lambda: _notice_text(parts), ""),
        # Message.get() compares exactly these: each header name, lowercased.
        # (str.lower raises on a name that is not a string, leaving the lookups to Message.get)
        header_names=_safely(lambda: frozenset(map(str.lower, message.keys())), None),
    )


def _is_unparsed_multipart(item: _Part) -> bool:
    """A multipart whose boundary was unusable: its text is still worth reading."""
    return item.content_type.startswith("multipart/") and isinstance(
        _safely(item.part.get_payload, None), str
    )


def _notice_text(parts: list[_Part]) -> str:
    """Concatenated text/plain (else text/html) of the message, capped in size."""
    leaves = [p for p in parts if not p.inside_attachment and p.content_type.startswith("text/")]
    plain = [p for p in leaves if p.content_type == "text/plain"]
    plain += [p for p in parts if not p.inside_attachment and _is_unparsed_multipart(p)]
    chosen = plain or [p for p in leaves if p.content_type == "text/html"]
    chunks: list[str] = []
    budget = MAX_SCAN_CHARS
    for leaf in chosen:
        if budget <= 0:
            break
        text = _safely(lambda leaf=leaf, budget=budget: _part_text(leaf.part, budget), "")
        if leaf.content_type == "text/html":
            text = _strip_html(text)
        chunks.append(text)
        budget -= len(text)
    return "\n".join(chunks)[:MAX_SCAN_CHARS]


# --------------------------------------------------------------------------
# Original message id and failed recipients
# --------------------------------------------------------------------------


def _attached_original_id(facts: _Facts) -> str | None:
    """Message-ID of the returned original (message/rfc822 or text/rfc822-headers part)."""
    candidates = [
        item
        for item in facts.parts
        if item.depth > 0
        and not item.inside_attachment
        and item.content_type in _ATTACHED_MESSAGE_TYPES | _ATTACHED_HEADERS_TYPES
    ]
    for item in candidates[:MAX_ATTACHED_ORIGINALS]:
        if item.content_type in _ATTACHED_MESSAGE_TYPES:
            children = _children(item.part)
            if children:
                value = _header(children[0], "Message-ID")
            else:  # unparsed payload: read its header block ourselves
                value = _message_id_in_header_text(_part_text(item.part))
        else:
            value = _message_id_in_header_text(_part_text(item.part))
        message_id = _bare_message_id(value or "")
        if message_id:
            return message_id
    return None


def _message_id_in_header_text(text: str) -> str:
    headers = HeaderParser().parsestr(text.lstrip("\r\n")[:MAX_SCAN_CHARS], headersonly=True)
    return str(headers.get("Message-ID", ""))


def _in_reply_to_id(facts: _Facts) -> str | None:
    return _bare_message_id(facts.header("In-Reply-To"))


_INLINE_MESSAGE_ID = re.compile(r"(?im)^[ \t>]*Message-I[Dd]\s*:\s*(<[^<>\s]+>)")


def _inline_original_id(facts: _Facts) -> str | None:
    """Last resort for non-MIME bounces that quote the original headers in the text."""
    own_id = _bare_message_id(facts.header("Message-ID"))
    for match in _INLINE_MESSAGE_ID.finditer(facts.notice_text):
        candidate = _bare_message_id(match.group(1))
        if candidate and candidate != own_id:
            return candidate
    return None


def _original_message_id(facts: _Facts, kind: Kind, reported_id: str | None) -> str | None:
    """The message a machine mail is about, most reliable source first."""
    if kind == "reply":
        return None
    lookups: list[Callable[[], str | None]] = [
        lambda: _attached_original_id(facts),
        lambda: reported_id,
        lambda: _in_reply_to_id(facts),
    ]
    if kind == "bounce":
        lookups.append(lambda: _inline_original_id(facts))
    for lookup in lookups:
        message_id = _safely(lookup, None)
        if message_id:
            return message_id
    return None


def _recipient_address(value: str) -> str:
    """``rfc822; <User@Example.com>`` -> ``user@example.com``."""
    _, _, address = value.rpartition(";")
    address = address.strip().strip("<>").strip()
    return address.lower() if "@" in address else ""


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))


_INLINE_FINAL_RECIPIENT = re.compile(
    r"(?im)^[ \t]*(?:Final|Original)-Recipient\s*:\s*([^\r\n]{1,320})"
)


def _failed_recipients_from_text(facts: _Facts) -> tuple[str, ...]:
    header_values = facts.all_headers("X-Failed-Recipients")
    from_header = [
        address.lower()
        for value in header_values
        for _, address in _safely(lambda value=value: getaddresses([value]), [])
        if "@" in address
    ]
    from_text = [
        _recipient_address(match.group(1))
        for match in _INLINE_FINAL_RECIPIENT.finditer(facts.notice_text)
    ]
    return _unique(from_header + from_text)


# --------------------------------------------------------------------------
# Structured reports: RFC 3464 DSN, RFC 5965 ARF, RFC 8098 MDN
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Verdict:
    kind: Kind
    reasons: tuple[str, ...]
    failed_recipients: tuple[str, ...] = ()
    original_message_id: str | None = None
    # For a bounce from a delivery report: whether every failure is a delay (None: no report
    # says, the wording decides).
    temporary: bool | None = None


@dataclass(frozen=True)
class _RecipientStatus:
    action: str
    status: str
    recipient: str


_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")


def _field_blocks_from_text(text: str) -> list[dict[str, str]]:
    """Split ``Name: value`` lines into blank-line separated blocks (folded lines joined)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_name = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last_name = {}, ""
            continue
        if line[:1] in " \t" and last_name:
            # Capped: repeated concatenation of unbounded folds would be quadratic.
            if len(current[last_name]) < MAX_HEADER_CHARS:
                current[last_name] += " " + line.strip()
            continue
        match = _FIELD_LINE.match(line)
        if match:
            last_name = match.group(1).lower()
            current.setdefault(last_name, match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status-like part, however it was parsed."""
    children = _children(part)
    if not children:
        return _field_blocks_from_text(_part_text(part))
    blocks = []
    budget = MAX_SCAN_CHARS
    for child in children:
        block = {
            str(name).lower(): " ".join(str(value)[:MAX_HEADER_CHARS].split())
            for name, value in child.items()[:100]
        }
        blocks.append(block)
        # compat32 leaves any text after a block's blank line as its payload
        leftover = child.get_payload()
        if isinstance(leftover, str) and leftover.strip() and budget > 0:
            blocks.extend(_field_blocks_from_text(leftover[:budget]))
            budget -= len(leftover)
    return blocks


def _recipient_statuses(blocks: list[dict[str, str]]) -> list[_RecipientStatus]:
    statuses = []
    for block in blocks:
        action = block.get("action", "").split("(")[0].strip().lower()
        status = block.get("status", "").strip()
        recipient = _recipient_address(
            block.get("final-recipient", "") or block.get("original-recipient", "")
        )
        if action or status or recipient:
            statuses.append(_RecipientStatus(action, status, recipient))
    return statuses


_FAILURE_ACTIONS = frozenset({"failed", "delayed"})
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})


def _reported_message_id(blocks: list[dict[str, str]]) -> str | None:
    """Original-Message-ID (RFC 8098) or its X- form that some MTAs add to DSNs."""
    for block in blocks:
        for name in ("original-message-id", "x-original-message-id"):
            if block.get(name):
                return _bare_message_id(block[name])
    return None


def _delivery_status_verdict(part: Message, container: str) -> _Verdict:
    blocks = _field_blocks(part)
    verdict = _delivery_outcome(_recipient_statuses(blocks), container)
    return _Verdict(
        verdict.kind,
        verdict.reasons,
        verdict.failed_recipients,
        _safely(lambda: _reported_message_id(blocks), None),
        verdict.temporary,
    )


def _delivery_outcome(statuses: list[_RecipientStatus], container: str) -> _Verdict:
    failed = [s for s in statuses if s.action in _FAILURE_ACTIONS]
    if failed:
        actions = "/".join(sorted({s.action for s in failed}))
        return _Verdict(
            "bounce",
            (f"{container} with Action: {actions} (RFC 3464)",),
            _unique(s.recipient for s in failed),
            temporary=all(s.action == "delayed" for s in failed),
        )
    if statuses and all(s.action in _SUCCESS_ACTIONS for s in statuses):
        actions = "/".join(sorted({s.action for s in statuses}))
        return _Verdict("other", (f"{container} with only Action: {actions} (RFC 3464 success)",))
    # No usable Action: fall back on the status class (RFC 3463: 2 success, 4/5 failure).
    unsuccessful = [s for s in statuses if s.status[:1] in ("4", "5")]
    if unsuccessful:
        return _Verdict(
            "bounce",
            (f"{container} with a 4.x.x/5.x.x Status (RFC 3464)",),
            _unique(s.recipient for s in unsuccessful),
            temporary=all(s.status[:1] == "4" for s in unsuccessful),
        )
    if statuses and all(s.status[:1] == "2" for s in statuses):
        return _Verdict("other", (f"{container} with only 2.x.x Status (RFC 3464 success)",))
    # A delivery report without readable outcome: a person never sends one,
    # and undelivered mail is by far the most common reason for it.
    return _Verdict(
        "bounce",
        (f"{container} without a readable Action/Status (RFC 3464)",),
        _unique(s.recipient for s in statuses),
    )


def _disposition_verdict(part: Message) -> _Verdict:
    blocks = _field_blocks(part)
    disposition = next((b["disposition"] for b in blocks if b.get("disposition")), "")
    disposition = disposition.split(";")[-1].strip().lower()
    detail = f" ({disposition})" if disposition else ""
    return _Verdict(
        "other",
        (f"message disposition notification / read receipt{detail} (RFC 8098)",),
        original_message_id=_reported_message_id(blocks),
    )


def _feedback_verdict(part: Message | None) -> _Verdict:
    feedback_type = ""
    if part is not None:
        for block in _field_blocks(part):
            feedback_type = feedback_type or block.get("feedback-type", "")
    detail = f", Feedback-Type: {feedback_type.lower()}" if feedback_type else ""
    return _Verdict(
        "feedback_report",
        (f"multipart/report; report-type=feedback-report{detail} (RFC 5965 ARF)",),
    )


def _report_verdict(facts: _Facts) -> _Verdict | None:
    """Verdict from machine-readable report parts, which only MTAs and MUAs generate."""
    notice_parts = [p for p in facts.parts if not p.inside_attachment]
    by_type: dict[str, Message] = {}
    for item in notice_parts:
        by_type.setdefault(item.content_type, item.part)
    report_types = {
        _param(item.part, "report-type")
        for item in notice_parts
        if item.content_type == "multipart/report"
    }

    if "message/feedback-report" in by_type or "feedback-report" in report_types:
        return _feedback_verdict(by_type.get("message/feedback-report"))
    for dsn_type in ("message/delivery-status", "message/global-delivery-status"):
        if dsn_type in by_type:
            container = (
                "multipart/report; report-type=delivery-status"
                if "delivery-status" in report_types
                else f"{dsn_type} part"
            )
            return _delivery_status_verdict(by_type[dsn_type], container)
    for mdn_type in ("message/disposition-notification", "message/global-disposition-notification"):
        if mdn_type in by_type:
            return _disposition_verdict(by_type[mdn_type])
    if "disposition-notification" in report_types:
        return _Verdict("other", ("multipart/report; report-type=disposition-notification",))
    if "delivery-status" in report_types:
        return _Verdict(
            "bounce", ("multipart/report; report-type=delivery-status without a status part",)
        )
    return None


# --------------------------------------------------------------------------
# Provider notification formats that are not RFC reports
# --------------------------------------------------------------------------

_SES_EVENT = re.compile(
    r'\\?"(?:notificationType|eventType)\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery|DeliveryDelay)\\?"'
)


def _json_document(text: str) -> object:
    """The JSON object a text starts with (SNS envelopes unwrapped), or None."""
    document = json.JSONDecoder().raw_decode(text.lstrip())[0]
    if isinstance(document, dict) and isinstance(document.get("Message"), str):
        return json.loads(document["Message"][:MAX_SCAN_CHARS])  # SNS wraps the event
    return document


def _ses_recipients(document: object) -> tuple[str, ...]:
    if not isinstance(document, dict):
        return ()
    bounce = document.get("bounce") or document.get("deliveryDelay") or {}
    recipients = None
    if isinstance(bounce, dict):
        recipients = bounce.get("bouncedRecipients") or bounce.get("delayedRecipients")
    if not isinstance(recipients, list):
        return ()
    addresses = (entry.get("emailAddress") for entry in recipients if isinstance(entry, dict))
    return _unique(str(address or "").lower() for address in addresses)


def _ses_notification_verdict(facts: _Facts) -> _Verdict | None:
    """Amazon SES event JSON, as delivered by an SNS e-mail subscription."""
    text = facts.notice_text.lstrip()
    if not text.startswith("{"):
        return None
    # The event name must come near the top, not in some quoted JSON further down.
    match = _SES_EVENT.search(text[:4096])
    if not match:
        return None
    event = match.group(1)
    reason = f'Amazon SES notification "{event}" (JSON body)'
    if event == "Complaint":
        return _Verdict("feedback_report", (reason,))
    if event == "Delivery":
        return _Verdict("other", (reason,))
    document = _safely(lambda: _json_document(text), None)
    return _Verdict("bounce", (reason,), _safely(lambda: _ses_recipients(document), ()))


def _unsubscribe_request_verdict(facts: _Facts) -> _Verdict | None:
    """Apple Mail's one-click unsubscribe sends a mail marked X-Apple-Unsubscribe."""
    if facts.header("X-Apple-Unsubscribe").lower() == "true":
        return _Verdict("feedback_report", ("X-Apple-Unsubscribe: true (unsubscribe request)",))
    return None


_JMRP_SUBJECT = re.compile(r"^complaint about message from\b", re.IGNORECASE)


def _complaint_without_arf_verdict(facts: _Facts) -> _Verdict | None:
    """Microsoft JMRP: a complaint subject with the reported message attached."""
    has_attached_message = any(
        p.content_type in _ATTACHED_MESSAGE_TYPES and not p.inside_attachment for p in facts.parts
    )
    if has_attached_message and _JMRP_SUBJECT.match(facts.subject):
        return _Verdict(
            "feedback_report", ("complaint subject with the reported message attached (JMRP)",)
        )
    return None


# --------------------------------------------------------------------------
# Header and wording heuristics
# --------------------------------------------------------------------------

# Anchored at the start: a person's reply reads "Re: <post title>", and a post
# may well be titled "Why my mail delivery failed".
_BOUNCE_SUBJECT = re.compile(
    r"""^\s*(?:\[[^\]]{0,60}\]\s*)?(?:
        undeliver(?:able|ed)
      | undelivered\ mail
      | returned\ mail
      | return(?:ed)?\ to\ sender
      | mail\ delivery\ (?:failed|failure|subsystem|system)
      | mail\ failure
      | mail\ could\ not\ be\ delivered
      | mail\ system\ error
      | message\ delivery\ (?:has\ )?failed
      | (?:permanent\ |temporary\ )?delivery\ (?:failure|failed|notification|problem)
      | delivery\ status(?:\ notification|\s*$)
      | delivery\ report
      | non[- ]?deliver(?:y|able|ed)
      | message\ (?:delivery\ )?failure | delivery\ final\ failure
      | (?:your\ )?message\ (?:could\ not\ be|was\ not|not)\ delivered
      | (?:unable\ to|could\ not)\ deliver
      | (?:mail\ )?delivery\ (?:delayed|delay\ notification|warning)
      | delayed\ delivery
      | failure\ notice
      | failure\ delivery
      | failed\ delivery
      | failed\ mail
      | mail\ failed
      | delayed\ mail
      | warning:\ (?:message\ .{0,80}\ delayed|could\ not\ send)
      | could\ not\ send\ message
      | there\ was\ an\ error\ sending\ your\ mail
      | nicht\ zustellbar | unzustellbar
      | non\ remis | non\ distribu[eé] | (?:échec|echec)\ de\ (?:la\ )?remise
      | no\ se\ puede\ entregar | mensaje\ no\ entregado
      | niet\ bezorgd | onbestelbaar
      | ваше\ сообщение\ не\ доставлено | не\ доставлено | недоставленное
      | メールエラー通知 | 配信エラー | 送信エラー | 配信不能 | (?:メッセージを)?配信できません
      # Gmail's and Exchange's delivery notifications in other languages
      | notificaci[óo]n\ de\ estado\ de\ entrega
      | notification\ d'[ée]tat\ de\ (?:la\ )?(?:remise|distribution)
      | benachrichtigung\ zum\ [üu]bermittlungsstatus
      | notifica\ (?:sullo\ )?stato\ (?:della\ |di\ )?(?:consegna|recapito)
      | notifica[çc][ãa]o\ de\ status\ de\ entrega
      | uitgestelde\ bezorging | bezorgingsstatus
      | уведомление\ о\ (?:состоянии|статусе)\ доставки
      | powiadomienie\ o\ stanie\ dostarczenia | niedostarczon
      | olmayan\ teslimat | teslim\ edilemedi
    )""",
    re.IGNORECASE | re.VERBOSE,
)

_AUTO_REPLY_SUBJECT = re.compile(
    r"""^\s*(?:\[[^\]]{0,60}\]\s*)?(?:
        out\ of\ (?:the\ )?office
      | ooo\s*:
      | auto(?:matic)?[- ]?(?:reply|response|responder|antwort)
      | autorespond
      | vacation\ (?:reply|response|notice|message) | away\ from\ (?:the\ )?office
      | abwesenheitsnotiz | automatische\ antwort
      | r[ée]ponse\ automatique | absence\ du\ bureau | message\ d'absence
      | respuesta\ autom[áa]tica | fuera\ de\ la\ oficina
      | risposta\ automatica | fuori\ ufficio
      | automatisch\ antwoord
      | resposta\ autom[áa]tica | fora\ do\ escrit[óo]rio
      | autosvar | automatiskt?\ svar | automaattinen\ vastaus
      | автоматический\ ответ
      | 自動応答 | 自動返信 | 自动回复
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# Local parts that only mail software sends from.
_DAEMON_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "mail-daemon",
        "mail.delivery.system",
        "double-bounce",
    }
)
# Mail systems send bounces as postmaster, but so do the people who run them:
# a postmaster sender only supports other evidence.
_ADMIN_LOCAL_PARTS = frozenset({"postmaster", "post_master"})
_NO_REPLY_LOCAL_PART = re.compile(r"^(?:no|do[-_.]?not)[-_.]?reply\b", re.IGNORECASE)
_DAEMON_DISPLAY_NAME = re.compile(
    r"^(?:mail delivery (?:sub)?system|mailer[- ]daemon|mail deliver system)\b",
    re.IGNORECASE,
)


def _local_part(address: str) -> str:
    return (address.rpartition("@")[0] or address).strip().lower()


def _daemon_sender_reason(facts: _Facts) -> str | None:
    local_part = _local_part(facts.from_address)
    if local_part in _DAEMON_LOCAL_PARTS:
        return f"sender is {local_part.upper()}"
    if _DAEMON_DISPLAY_NAME.match(facts.from_name):
        return f'sender name "{facts.from_name}" is a mail system'
    if (
        facts.from_header.strip()
        and not facts.from_address
        and re.search(r"<\s*>", facts.from_header)
    ):
        return "From: <> (null sender)"
    return None


def _system_sender_reason(facts: _Facts) -> str | None:
    """Senders that are systems more often than people: context only, never a verdict."""
    local_part = _local_part(facts.from_address)
    if local_part in _ADMIN_LOCAL_PARTS:
        return f"sender is {local_part.upper()}"
    if _NO_REPLY_LOCAL_PART.match(local_part):
        return f"sender {local_part} is a system address"
    return None


def _null_sender_reason(facts: _Facts) -> str | None:
    """RFC 5321 null reverse-path: only delivery reports and auto-responses use it."""
    if facts.envelope_sender is not None:
        sender = facts.envelope_sender.strip().strip("<>").strip().lower()
        if not sender:
            return "null envelope sender <>"
        if _local_part(sender) in _DAEMON_LOCAL_PARTS:
            return f"envelope sender {sender}"
        return None
    # Unknown envelope: the delivering MTA recorded it in the topmost Return-Path.
    return_path = facts.header("Return-Path")
    if not return_path:
        return None
    address = return_path.strip().strip("<>").strip().lower()
    if not address:
        return "Return-Path: <> (null envelope sender)"
    if _local_part(address) in _DAEMON_LOCAL_PARTS:
        return f"Return-Path: <{address}>"
    return None


_AUTO_SUBMITTED_VALUE = re.compile(r"^\s*([A-Za-z-]+)")


def _auto_submitted(facts: _Facts) -> str:
    """The Auto-Submitted keyword (RFC 3834), lowercased, or ""."""
    match = _AUTO_SUBMITTED_VALUE.match(facts.header("Auto-Submitted"))
    return match.group(1).lower() if match else ""


def _auto_reply_header_reasons(facts: _Facts) -> list[str]:
    """Headers that mark a reply written by a responder rather than a person."""
    reasons = []
    if _auto_submitted(facts) == "auto-replied":
        reasons.append("Auto-Submitted: auto-replied (RFC 3834)")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoreply-From"):
        value = facts.header(name).lower()
        if value and value not in ("no", "false", "0"):
            reasons.append(f"{name}: {value[:40]}")
    if facts.header("X-Apple-Action").lower() == "vacation":
        reasons.append("X-Apple-Action: VACATION")
    if facts.header("X-Mailer").lower().startswith(("vacation", "autoresponder")):
        reasons.append("X-Mailer is a vacation responder")
    suppress = facts.header("X-Auto-Response-Suppress")
    rules_loop = facts.header("X-MS-Exchange-Inbox-Rules-Loop")
    # Exchange sets X-Auto-Response-Suppress on plenty of person-written mail
    # (and Inbox-Rules-Loop on forwarded mail); only the pair marks an
    # Out-of-Office answer generated by an inbox rule.
    if suppress and rules_loop:
        reasons.append(
            "X-Auto-Response-Suppress together with X-MS-Exchange-Inbox-Rules-Loop (Exchange OOF)"
        )
    return reasons


_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})


def _auto_generated_reasons(facts: _Facts) -> list[str]:
    reasons = []
    keyword = _auto_submitted(facts)
    if keyword and keyword not in ("no", "auto-replied"):
        reasons.append(f"Auto-Submitted: {keyword} (RFC 3834)")
    precedence = facts.header("Precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        reasons.append(f"Precedence: {precedence}")
    return reasons


# The characters outside ASCII that case-insensitive matching equates with an
# ASCII letter: "İ" and "ı" match "i", "ſ" matches "s", the Kelvin sign "k".
_ASCII_LOOKALIKES = (("\u0130", "i"), ("\u0131", "i"), ("\u017f", "s"), ("\u212a", "k"))


def _lowercase_as_matched(text: str) -> str:
    """``text`` lowercased, with the look-alikes that case-insensitive matching
    equates with ASCII letters written as those letters."""
    if not text.isascii():
        # (str.replace scans at C speed; str.translate looks up every character.)
        for lookalike, letter in _ASCII_LOOKALIKES:
            text = text.replace(lookalike, letter)
    return text.lower()


class _Wording:
    """A case-insensitive pattern of lowercase ASCII wording, searched cheaply.

    A long case-insensitive alternation tries every branch at every position of
    the text, which makes it the most expensive check of a notice.  Two
    shortcuts give exactly the same answer for less:

    * every match contains one of ``anchors`` (a plain pattern, checked against
      the text lowercased), so a text without any of them is ruled out by one
      quick search;
    * in ASCII text, the pattern matches the same spans case-sensitively in the
      lowercased text, where the engine skips a branch as soon as its first
      letter differs.
    """

    def __init__(self, source: str, flags: int, anchors: str) -> None:
        # The case-sensitive twin only works if every literal of the pattern is
        # lowercase (escapes such as \S or \W are classes, not letters).
        literals = re.sub(r"\\.", "", source)
        if literals != literals.lower():
            raise ValueError("a _Wording pattern must be written in lowercase")
        self.pattern = re.compile(source, flags | re.IGNORECASE)
        self._lowercase_twin = re.compile(source, flags & ~re.IGNORECASE)
        self._anchors = re.compile(anchors)

    def search(self, text: str) -> str | None:
        """The first match in ``text``, as it is written there, or None."""
        lowered = _lowercase_as_matched(text)
        if self._anchors.search(lowered) is None:
            return None
        if text.isascii():
            match = self._lowercase_twin.search(lowered)
        else:
            match = self.pattern.search(text)
        return None if match is None else text[match.start() : match.end()]


# The opening sentences of MTA bounce templates (Sendmail, qmail, Exim, Postfix).
_MTA_OPENING_SENTENCES = r"""
        this\ is\ the\ qmail-send\ program
      | this\ message\ was\ created\ automatically\ by\ mail\ delivery\ software
      | this\ is\ the\ mail\ system\ at\ host
      | this\ is\ the\ mail\ delivery\ agent\ at
      | the\ original\ message\ was\ received\ at
"""
# Sentences from MTA bounce templates and RFC 3464 fields: distinctive enough
# to confirm a bounce when any header hints at a machine sender.
_MTA_BOILERPLATE = _Wording(
    r"""(?:"""
    + _MTA_OPENING_SENTENCES
    + r"""      | i'm\ afraid\ i\ wasn't\ able\ to\ deliver
      | (?:sorry,\ )?we\ were\ unable\ to\ deliver\ your\ message
      | unable\ to\ deliver\ (?:your\ )?message\ to
      | delivery\ (?:to\ the\ following\ )?recipients?\ (?:failed|has\ been\ delayed)
      | delivery\ to\ the\ following\ recipients?\ (?:failed|was\ aborted|has\ been\ delayed)
      | delivery\ has\ failed\ to\ these\ recipients
      | your\ message\ (?:could\ not|couldn't|did\ not|was\ not|cannot|can\ not)\ be\ delivered
      | (?:could\ not|couldn't)\ be\ delivered\ to\ (?:one\ or\ more|the\ following|all)
      | could\ not\ be\ delivered\ to\s*:
      | following\ addresses\ had\ (?:permanent\ )?(?:fatal\ )?errors
      | your\ (?:mail|message)\ (?:to|for)\ .{1,120}?\ (?:could\ not|was\ not)\ be\ delivered
      | a\ message\ that\ you\ sent\ could\ not\ be\ delivered
      | requested\ action\ not\ taken
      | \bhas\ not\ yet\ been\ delivered
      | message\ will\ be\ retried
      | ^\s*diagnostic-code\s*:
      | ^\s*action\s*:\s*(?:failed|delayed)\s*$
      | ^\s*status\s*:\s*[45]\.\d{1,3}\.\d{1,3}
      | ^\s*remote-mta\s*:
    )""",
    re.VERBOSE | re.MULTILINE,
    # One word that each sentence above contains.
    anchors="deliver|qmail-send|mail system|was received|following addresses|action"
    "|retried|diagnostic-code|status|remote-mta",
)
# Failure words that people also write: only with a strong machine header.
_FAILURE_WORDING = _Wording(
    r"""(?:
        message\ could\ not\ be\ delivered
      | permanent\ (?:delivery\ )?(?:error|failure)
      | undeliverable\ (?:mail|message)
      | delivery\ status\ notification
      | mail\ delivery\ failed
      | returned\ mail
      | user\ unknown | unknown\ user | no\ such\ user | mailbox\ (?:is\ )?(?:full|unavailable)
      | \b55[0-4][ -]5\.\d\.\d
    )""",
    re.VERBOSE,
    # One word (or the start of the SMTP code) that each wording above contains.
    anchors="deliver|permanent|returned mail|user|mailbox|55[0-4][ -]5",
)


def _unquoted_top(text: str) -> str:
    """The start of the notice without ">"-quoted lines (a person quoting a bounce)."""
    lines = text[:BODY_SIGN_WINDOW].splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(">"))


def _bounce_wording_reason(facts: _Facts, include_generic: bool) -> str | None:
    text = facts.unquoted_top
    wording = _MTA_BOILERPLATE.search(text)
    if wording is None and include_generic:
        wording = _FAILURE_WORDING.search(text)
    if wording is None:
        return None
    return f'bounce wording in the text: "{" ".join(wording.split())[:60]}"'


# The first sentence of a notice that only mail servers write, in any era (Sendmail, qmail,
# Exim, Postfix, Exchange, Lotus Notes, GroupWise): near the top of a message that is neither
# a reply nor a forward, it is a bounce even when no header says so (old and home-grown mail
# systems send them with an ordinary sender and no report structure).
MTA_OPENING_WINDOW = 600
_MTA_OPENING = _Wording(
    r"""(?:"""
    + _MTA_OPENING_SENTENCES
    + r"""      | -{3,}\ ?transcript\ of\ session\ follows
      | this\ is\ a\ warning\ message\ only
      | i'm\ afraid\ i\ wasn't\ able\ to\ deliver
      | delivery\ (?:to\ the\ following\ recipients?\ )?(?:failed|has\ been\ delayed)
      | delivery\ has\ failed\ to\ these\ recipients
      | your\ message\ did\ not\ reach\ some\ or\ all\ of\ the\ intended\ recipients
      | the\ following\ addresses\ had\ (?:permanent\ |transient\ )?(?:fatal\ |non-fatal\ )?errors
      | could\ not\ be\ delivered\ to\ one\ or\ more\ recipients
      | the\ message\ that\ you\ sent\ was\ undeliverable
      | your\ message\ was\ not\ delivered\ to
    )""",
    re.VERBOSE,
    anchors="qmail-send|mail delivery|mail system|delivery agent|was received|transcript"
    "|warning|deliver|intended|following addresses",
)
# A person answering or forwarding puts one of these in front of the subject.
_REPLY_OR_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:re|aw|sv|vs|odp|ответ|fwd?|wg|tr|rv|i|enc|doorst)\s?[:：]", re.IGNORECASE
)


def _mta_opening_reason(facts: _Facts) -> str | None:
    if _REPLY_OR_FORWARD_SUBJECT.match(facts.subject):
        return None
    opening = _MTA_OPENING.search(facts.unquoted_top[:MTA_OPENING_WINDOW])
    if opening is None:
        return None
    return f'mail-server notice at the top of the text: "{" ".join(opening.split())[:60]}"'


# A warning that delivery is late, not that it failed (RFC 3464 "delayed"; Sendmail's
# "Warning: could not send message for past 4 hours"; Exchange's and Gmail's "(Delay)").
_DELAY_WORDING = _Wording(
    r"""(?:
        this\ is\ a\ warning\ message\ only
      | you\ do\ not\ need\ to\ resend\ your\ message
      | message\ still\ undelivered\ after
      | will\ keep\ trying\ until
      | delivery\ (?:to\ the\ following\ recipients?\ )?has\ been\ delayed
      | delivery\ is\ delayed
      | has\ not\ yet\ been\ delivered
      | (?:still\ being|will\ be)\ retried
      | could\ not\ send\ message\ for\ past
      | no\ action\ is\ required\ on\ your\ part
    )""",
    re.VERBOSE,
    anchors="warning|resend|undelivered|keep trying|delayed|not yet been|retried|could not send"
    "|no action",
)
_DELAY_SUBJECT = re.compile(
    r"""^\s*(?:\[[^\]]{0,60}\]\s*)?(?:
        warning:\ (?:could\ not\ send|message\ .{0,80}\ delayed)
      | delayed\ (?:mail|delivery)
      | (?:mail\ )?delivery\ (?:delayed|delay)
      | .{0,80}\((?:delay|delayed|retardo|verzögerung|retard|ritardo|vertraging|atraso)\)
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def _is_temporary(facts: _Facts, verdict: _Verdict) -> bool:
    """Whether a bounce is only a delay warning: the report says so, or (without a report)
    the subject or the notice does."""
    if verdict.temporary is not None:
        return verdict.temporary
    if _DELAY_SUBJECT.match(facts.subject):
        return True
    return _DELAY_WORDING.search(facts.unquoted_top) is not None


# Out-of-office notices, recognised by their text when no header marks them (Exchange often
# sends none). All three must be there: the absence, when it ends, and what a notice says
# that a person answering the discussion does not (urgent matters, whom to contact, that the
# answer is automatic). People write about holidays too, but rarely all three.
_ABSENCE = re.compile(
    r"""out\ of\ (?:the\ )?office | away\ from\ (?:the\ |my\ )?(?:office|desk)
      | on\ (?:annual\ |parental\ |maternity\ |paternity\ |sick\ |study\ )?leave
      | on\ (?:vacation|holiday|holidays|business\ travel) | currently\ away
      | (?:will\ be|i\ am|i'm)\ (?:traveling|travelling)
      | not\ in\ the\ office | abwesend | nicht\ im\ büro | im\ urlaub | au(?:ß|ss)er\ haus
      | \bsuis\ absente? | en\ congés? | hors\ du\ bureau | en\ vacances
      | fuera\ de\ la\ oficina | de\ vacaciones | \bausente | fuori\ (?:sede|ufficio)
      | in\ ferie | \bassente | afwezig | niet\ op\ kantoor | met\ vakantie
      | fora\ do\ escritório | de\ férias | (?:är|er)\ (?:ledig|borta|på\ (?:semester|ferie))
      | fraværende | olen\ (?:lomalla|poissa) | na\ urlopie | nieobecn | mimo\ kancelář
      | na\ dovolené | в\ отпуске | отсутству | вне\ офиса | izinliyim | ofis\ dışında
      | 不在 | 休暇 | 休假""",
    re.VERBOSE,
)
_ABSENCE_ENDS = re.compile(
    r"""back\ (?:on|in|at|by) | return(?:ing)?\ (?:on|to\ (?:the\ )?(?:office|work))
      | (?:upon|on|after)\ my\ return | \buntil\  | zurück | wieder\ (?:im\ büro|erreichbar)
      | \bbis\  | de\ retour | jusqu'au | à\ mon\ retour | hasta\ el | a\ mi\ (?:regreso|vuelta)
      | fino\ al | al\ mio\ rientro | tot\ en\ met | terug\ op | \baté\  | regresso
      | tillbaka | tilbake | palaan | do\ dnia | wracam | вернусь | \bдо\  | döneceğim
      | 戻り | 返回 | during\ (?:that|this|my)\ (?:time|absence) | \d\ ?[-–]\ ?\d
      | \b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b""",
    re.VERBOSE,
)
_NOTICE_CUES = re.compile(
    r"""(?:limited|intermittent)\ access\ to | (?:no|without)\ access\ to\ (?:my\ )?e-?mail
      | urgent | pressing | immediate\ (?:assistance|attention|help)
      | dringend | urgence | urgencia | urgenz | spoed | brådskande | haster | kiireellis
      | pilnych | срочн | \bacil | 緊急 | 紧急 | please\ contact | wenden\ sie\ sich
      | vertretung | veuillez\ contacter | contactez | póngase\ en\ contacto | contacte\ con
      | contattare | contact\ opnemen | entre\ em\ contato | kontakta | ota\ yhteyttä
      | skontaktuj | обращайтесь | this\ is\ an\ auto(?:matic|mated) | automatically\ generated
      | automatische\ antwort | réponse\ automatique | respuesta\ automática
      | risposta\ automatica | automatisch\ antwoord | resposta\ automática
      | automatiskt?\ svar | automaattinen\ vastaus | automatyczna\ odpowiedź
      | автоматический\ ответ | otomatik\ yanıt | 自動 | 自动
      | will\ not\ be\ (?:forwarded|read) | nicht\ weitergeleitet""",
    re.VERBOSE,
)


# Every match of _NOTICE_CUES contains one of these: plain substring tests rule out almost
# every reply before any pattern runs (a reply passes through this check on every ingest).
_NOTICE_STEMS = (
    "access", "urgen", "pressing", "immediate", "dringend", "spoed", "brådskande", "haster",
    "kiireellis", "pilnych", "срочн", "acil", "緊急", "紧急", "contact", "contat", "wenden",
    "vertretung", "kontakt", "yhteyt", "обращ", "autom", "автомат", "otomat", "自動", "自动",
    "will not be", "weitergeleitet",
)  # fmt: skip


def _out_of_office_reason(facts: _Facts) -> str | None:
    text = _lowercase_as_matched(facts.unquoted_top[:OUT_OF_OFFICE_WINDOW])
    if not any(stem in text for stem in _NOTICE_STEMS):
        return None
    absence = _ABSENCE.search(text)
    if absence is None or not _ABSENCE_ENDS.search(text) or not _NOTICE_CUES.search(text):
        return None
    return f'out-of-office wording in the text: "{absence.group(0)}"'


# --------------------------------------------------------------------------
# Decision
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signals:
    bounce_subject: str | None
    auto_reply_subject: str | None
    daemon_sender: str | None
    failed_recipients_header: str | None
    null_sender: str | None
    system_sender: str | None
    auto_replied: tuple[str, ...]
    auto_generated: tuple[str, ...]
    explicitly_human: bool

    def strong_machine_signs(self) -> list[str]:
        candidates = (
            self.bounce_subject,
            self.daemon_sender,
            self.failed_recipients_header,
            self.null_sender,
            *self.auto_replied,
        )
        return [sign for sign in candidates if sign]

    def context_signs(self) -> list[str]:
        return [sign for sign in (self.system_sender, *self.auto_generated) if sign]


def _signals(facts: _Facts) -> _Signals:
    subject = facts.subject
    keyword = _safely(lambda: _auto_submitted(facts), "")
    explicitly_human = keyword == "no"
    bounce_subject = _safely(lambda: _BOUNCE_SUBJECT.match(subject), None)
    auto_subject = _safely(lambda: _AUTO_REPLY_SUBJECT.match(subject), None)
    failed_header = facts.all_headers("X-Failed-Recipients")
    return _Signals(
        bounce_subject=f'bounce subject "{subject[:60]}"' if bounce_subject else None,
        auto_reply_subject=f'auto-reply subject "{subject[:60]}"' if auto_subject else None,
        daemon_sender=_safely(lambda: _daemon_sender_reason(facts), None),
        failed_recipients_header="X-Failed-Recipients header" if failed_header else None,
        null_sender=_safely(lambda: _null_sender_reason(facts), None),
        system_sender=_safely(lambda: _system_sender_reason(facts), None),
        auto_replied=tuple(_safely(lambda: _auto_reply_header_reasons(facts), [])),
        # The sender's own "Auto-Submitted: no" outranks legacy Precedence hints.
        auto_generated=()
        if explicitly_human
        else tuple(_safely(lambda: _auto_generated_reasons(facts), [])),
        explicitly_human=explicitly_human,
    )


def _heuristic_verdict(facts: _Facts) -> _Verdict:
    signals = _signals(facts)
    strong = signals.strong_machine_signs()
    context = signals.context_signs()
    # Bounce wording never counts on its own: people paste bounces into replies.
    wording = None
    if strong or context:
        wording = _safely(lambda: _bounce_wording_reason(facts, bool(strong)), None)
    supporting = strong + context + _optional(wording)

    if signals.bounce_subject:
        return _Verdict("bounce", tuple(supporting))
    if signals.auto_reply_subject:
        return _Verdict("auto_reply", (signals.auto_reply_subject, *signals.auto_replied))
    if signals.daemon_sender or signals.failed_recipients_header:
        return _Verdict("bounce", tuple(supporting))
    if signals.auto_replied:
        # Checked after the bounce signs: Exim and others mark bounces auto-replied too.
        return _Verdict("auto_reply", tuple(strong + context))
    if signals.null_sender and (wording or not signals.auto_generated):
        # Only delivery reports and auto-responses use the null sender; without
        # auto-response headers the report is the likelier one.
        return _Verdict("bounce", tuple(supporting))
    if wording:
        return _Verdict("bounce", tuple(supporting))
    if signals.auto_generated:
        return _Verdict("auto_reply", tuple(strong + context))
    if signals.explicitly_human:
        return _Verdict("reply", ("Auto-Submitted: no (RFC 3834)",))
    opening = _safely(lambda: _mta_opening_reason(facts), None)
    if opening:
        return _Verdict("bounce", (opening,))
    out_of_office = _safely(lambda: _out_of_office_reason(facts), None)
    if out_of_office:
        return _Verdict("auto_reply", (out_of_office,))
    return _Verdict("reply", ("no machine-mail signs",))


def _optional(value: str | None) -> list[str]:
    return [value] if value else []


_STRUCTURED_CHECKS: tuple[Callable[[_Facts], _Verdict | None], ...] = (
    _report_verdict,
    _ses_notification_verdict,
    _unsubscribe_request_verdict,
    _complaint_without_arf_verdict,
)


def _verdict(facts: _Facts) -> _Verdict:
    for check in _STRUCTURED_CHECKS:
        verdict = _safely(lambda check=check: check(facts), None)
        if verdict is not None:
            return verdict
    return _safely(
        lambda: _heuristic_verdict(facts),
        _Verdict("reply", ("classification checks failed; assuming a person",)),
    )


def _finish(facts: _Facts, verdict: _Verdict) -> Classification:
    original_id = _original_message_id(facts, verdict.kind, verdict.original_message_id)
    failed: tuple[str, ...] = ()
    reasons = verdict.reasons
    if verdict.kind == "bounce":
        failed = verdict.failed_recipients or _safely(
            lambda: _failed_recipients_from_text(facts), ()
        )
        if _safely(lambda: _is_temporary(facts, verdict), False):
            reasons = (*reasons, TEMPORARY_FAILURE)
    return Classification(
        kind=verdict.kind,
        reasons=reasons,
        original_message_id=original_id,
        failed_recipients=failed,
    )


def classify(message: Message, envelope_sender: str | None = None,
             max_parts: int = DEFAULT_MAX_PARTS) -> Classification:
    """Classify ``message`` as a human reply or a kind of machine mail.

    ``envelope_sender`` is the SMTP MAIL FROM when known: ``""`` is the null
    sender ``<>``, ``None`` means unknown (the topmost Return-Path header is
    used instead).  ``max_parts`` caps the MIME walk: the configured
    ``[limits] max_mime_parts``.  Never raises.
    """
    try:
        facts = _gather_facts(message, envelope_sender, max_parts)
        return _finish(facts, _verdict(facts))
    except Exception:  # noqa: BLE001 - last line of defence; default to a person
        return Classification("reply", ("classification failed; assuming a person",), None)
