"""What people type into ``mailthreads search``, made into a safe FTS5 query and filters.

Words are matched as FTS5 phrases, so addresses (``bob@example.org``), apostrophes
(``don't``), hyphens and other punctuation never reach FTS5 as syntax: each word becomes a
quoted string, which FTS5 splits into the same tokens as the indexed text. ``"two words"``
stays a phrase; ``word*`` a prefix. ``key:value`` terms with a known key are filters, not text.

Chinese and Japanese are written without spaces (and Korean glues particles to its words), so
the full-text index, which cuts text at spaces and punctuation, holds a whole sentence as one
token: a word inside it is never found there. A term in those scripts is looked for as a
substring of the subject, the text and the sender's name and address instead (``contains``),
slower but never missed.
Pure: no database; ``db.store.find_messages`` applies the result.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from .timestamps import iso

FILTER_KEYS = ("from", "post", "after", "before", "state", "kind")
STATES = {"needs-reply": "needs_reply", "needs_reply": "needs_reply", "answered": "answered",
          "archived": "archived"}
KINDS = {"reply": "reply", "auto-reply": "auto_reply", "auto_reply": "auto_reply",
         "bounce": "bounce", "feedback-report": "feedback_report",
         "feedback_report": "feedback_report", "other": "other"}
_WORD_CHARACTER = re.compile(r"\w")
# Han (CJK ideographs and their extensions), Hiragana, Katakana, Hangul syllables and jamo.
_UNSPACED_SCRIPT = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u1100-\u11ff"
    "\u3130-\u318f\uac00-\ud7af\uff66-\uff9f\U00020000-\U0003134f]")


class QueryError(ValueError):
    """A filter the search cannot apply; the message says which and why."""


@dataclass
class SearchQuery:
    match: str | None = None  # an FTS5 MATCH expression, or None for filters alone
    from_: str | None = None
    post: str | None = None
    after: str | None = None  # ISO 8601 UTC bounds, as messages.date holds them
    before: str | None = None
    state: str | None = None
    kind: str | None = None
    contains: list[str] = field(default_factory=list)  # substrings of subject or text
    words: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.match is None and not self.contains and not any(
            (self.from_, self.post, self.after, self.before, self.state, self.kind))


def parse(text: str, *, raw_fts: bool = False) -> SearchQuery:
    """``text`` as typed; with ``raw_fts`` it goes to FTS5 untouched (its own syntax)."""
    if raw_fts:
        return SearchQuery(match=text)
    query = SearchQuery()
    phrases: list[str] = []
    for term in _terms(text):
        key, sep, value = term.partition(":")
        if sep and key.lower() in FILTER_KEYS and not value:
            raise QueryError(f"{term} needs its value right after the colon "
                             f"({key.lower()}:something)")
        if sep and key.lower() in FILTER_KEYS:
            _apply_filter(query, key.lower(), value)
        elif _UNSPACED_SCRIPT.search(term):
            # A substring needs no prefix star: "教程*" finds what "教程" finds.
            query.contains.append(term.strip('"').rstrip("*"))
            query.words.append(term)
        elif phrase := _phrase(term):
            phrases.append(phrase)
            query.words.append(term)
    query.match = " ".join(phrases) or None
    return query


def _terms(text: str) -> list[str]:
    """Words, with "double quotes" grouping a phrase. An apostrophe is part of a word, and an
    unbalanced double quote is a character like any other (shlex would refuse both)."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    try:
        return list(lexer)
    except ValueError:  # "no closing quotation"
        return text.replace('"', " ").split()


def _phrase(term: str) -> str | None:
    """One FTS5 string for a typed word or phrase; None if it holds nothing indexable."""
    if not _WORD_CHARACTER.search(term):
        return None
    prefix = term.endswith("*") and len(term) > 1
    body = term[:-1] if prefix else term
    return '"' + body.replace('"', '""') + '"' + ("*" if prefix else "")


def _apply_filter(query: SearchQuery, key: str, value: str) -> None:
    if key == "from":
        query.from_ = value
    elif key == "post":
        query.post = value
    elif key == "state":
        if value.lower() not in STATES:
            raise QueryError(f"state:{value}: use one of {', '.join(sorted(set(STATES)))}")
        query.state = STATES[value.lower()]
    elif key == "kind":
        if value.lower() not in KINDS:
            raise QueryError(f"kind:{value}: use one of {', '.join(sorted(set(KINDS)))}")
        query.kind = KINDS[value.lower()]
    else:
        day = _day(key, value)
        # after:D means from the day after D on; before:D means before D begins; days are
        # the user's (TZ), the stored dates UTC.
        if key == "after":
            query.after = _local_midnight(day + timedelta(days=1))
        else:
            query.before = _local_midnight(day)


def _day(key: str, value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise QueryError(f"{key}:{value}: write the date as YYYY-MM-DD") from None


def _local_midnight(day: date) -> str:
    return iso(datetime.combine(day, time()).astimezone())
