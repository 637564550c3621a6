"""Which message a message answers, from its own headers alone.

The rule (the notmuch threading corpora are its test):
1. In-Reply-To, when it is exactly one well-formed ``<id>`` and nothing else (free text such as
   "Your message of ... <id>" or a trailing comment makes it dodgy);
2. else the last well-formed id in References;
3. else the first id found anywhere in In-Reply-To.
The References chain also names older ancestors; the store keeps those it has never received
as ghosts so that replies to the same missing message join.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A message id between angle brackets. Real ids are local@domain; anything with spaces or
# brackets inside is free text that merely contains an id, which ``_ANY_ID`` still finds.
_WELL_FORMED_ID = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>")
_ANY_ID = re.compile(r"<([^<>\s]+)>")
_ONLY_ONE_ID = re.compile(r"\s*<([^<>\s@]+@[^<>\s@]+)>\s*")
# One id in a header value, as bare_message_id reads it: spaces inside the brackets are junk.
_BRACKETED_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
MAX_REFERENCES = 100


@dataclass(frozen=True)
class Ancestry:
    parent: str | None
    chain: tuple[str, ...]  # oldest ancestor first, ending with the parent


def bare_message_id(value: str) -> str:
    """The one Message-ID extractor: ``<abc@example.com>`` -> ``abc@example.com``.

    The first bracketed id (with comments or junk around it); else a bare id as it is; else a
    leading ``local@domain`` word followed by a comment. "" when the value holds no id.
    """
    value = value.strip()
    match = _BRACKETED_ID.search(value)
    if match:
        return match.group(1)
    if value and not any(c.isspace() or c in "<>" for c in value):
        return value
    words = value.split()
    if words and "@" in words[0]:
        return words[0].strip("<>")
    return ""


def well_formed_ids(header: str) -> list[str]:
    return _WELL_FORMED_ID.findall(header)


def ancestry(message_id: str, in_reply_to: str, references: str) -> Ancestry:
    replied_to = _ONLY_ONE_ID.fullmatch(in_reply_to)
    referenced = _unique(well_formed_ids(references))[-MAX_REFERENCES:]
    if replied_to:
        parent = replied_to.group(1)
    elif referenced:
        parent = referenced[-1]
    else:
        loose = _ANY_ID.findall(in_reply_to)
        parent = loose[0] if loose else None
    if parent == message_id:
        parent = None
    chain = [ref for ref in referenced if ref not in (message_id, parent)]
    if parent:
        chain.append(parent)
    return Ancestry(parent, tuple(chain))


def _unique(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for message_id in ids:
        if message_id not in seen:
            seen.add(message_id)
            result.append(message_id)
    return result
