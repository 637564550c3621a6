"""Why an answer was not delivered, in plain words, from a delivery status notification.

Classification keeps only the verdict (a bounce, temporary or not); the person reading wants
"the address does not exist", not "5.1.1". Pure: bytes in, words out.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import Message

MAX_DSN_BYTES = 256 * 1024  # the report comes first; the returned original may be large
MAX_PARTS = 50

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")

# Enhanced status codes (RFC 3463) said the way a person would; the most specific match wins.
_WORDS = {
    "5.1.1": "the address does not exist",
    "5.1.0": "the address was not accepted",
    "5.1.2": "the recipient's mail domain does not exist",
    "5.1.3": "the address is not a valid mail address",
    "5.1.6": "the recipient has moved and left no forwarding address",
    "5.1.10": "the address does not exist",
    "5.2.1": "the recipient's mailbox is closed",
    "5.2.2": "the recipient's mailbox is full",
    "5.2.3": "the message was too large for the recipient's server",
    "5.3.4": "the message was too large for the recipient's server",
    "5.4": "the recipient's mail server could not be reached",
    "5.7": "the recipient's server refused it (a spam filter or a sending policy)",
    "5.2": "the recipient's mailbox cannot take mail",
    "5.1": "the address was not accepted",
    "4": "delivery is delayed; the sending server keeps trying",
}
_UNKNOWN = "the recipient's server refused it"


def failure_in_words(raw: bytes) -> str:
    """The reason a bounce gives, in words; a general one when it gives no status."""
    status = _first_status(raw[:MAX_DSN_BYTES])
    return status_in_words(status) if status else _UNKNOWN


def status_in_words(status: str) -> str:
    klass, subject, detail = status.split(".")
    for key in (status, f"{klass}.{subject}", klass):
        if key in _WORDS:
            return _WORDS[key]
    return _UNKNOWN


def _first_status(raw: bytes) -> str | None:
    message = message_from_bytes(raw, policy=policy.compat32)
    for count, part in enumerate(message.walk()):
        if count >= MAX_PARTS:
            break
        if part.get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
            continue
        for text in _blocks_text(part):
            found = re.search(r"^status\s*:\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)
            match = _STATUS.search(found.group(1)) if found else None
            if match and match.group(1) != "2":
                return ".".join(str(int(group)) for group in match.groups())
    return None


def _blocks_text(part: Message) -> list[str]:
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed as blocks of fields
        return ["\n".join(f"{name}: {value}" for name, value in block.items())
                + "\n" + (block.get_payload() if isinstance(block.get_payload(), str) else "")
                for block in payload]
    return [str(payload)]
