"""Conformance of mailthreads.mail.cleanup.split_reply against the shared trimming corpora.

Each set's expected visible text comes from the upstream project (see the corpora README,
section "(a) Quote / signature trimming"). A case passes on an exact match after normalising
line endings, stripping trailing whitespace on each line and stripping the whole text (or,
for "contains" cases, when every expected fragment is in the visible text).

The sets disagree in places, so some cases are given up on purpose; they are listed in
KNOWN_FAILURES with the reason. The list is checked both ways: a listed case that passes
must be removed from it, and a failing case that is not listed is a regression.

Besides exact matches, the two directions of a miss are counted apart, because they do not
weigh the same: over-trimming (words the correspondent wrote, other than the signature or
sign-off, missing from the visible text) hides a reader's comment; under-trimming (visible
lines the expected answer does not have) only shows too much. Over-trimming must stay at zero
apart from the cases in OVER_TRIMMING_ALLOWED.
"""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailthreads.mail.cleanup import ReplyParts, split_reply

SETS = (
    "email_reply_trimmer",
    "github_email_reply_parser",
    "zapier_email_reply_parser",
    "discourse_replies",
    "mail_parser_reply",
)

# Scores achieved when this was written; a drop below any of them fails the suite.
FLOORS = {
    "email_reply_trimmer": 0.953,  # 61/64
    "github_email_reply_parser": 1.0,  # 9/9 gold exact
    "zapier_email_reply_parser": 1.0,  # 4/4
    "discourse_replies": 1.0,  # 4/4
    "mail_parser_reply": 0.781,  # 25/32 (reference, not gold)
    "pooled": 0.911,  # 103/113
}

# The project's acceptance criteria; the floors above must never be set below them.
ACCEPTANCE = {
    "email_reply_trimmer": 0.53,
    "github_email_reply_parser": 1.0,
    "discourse_replies": 1.0,
    "pooled": 0.75,
}

_CLOSING_IS_SIGNATURE = (
    "a closing with a name below it is signature for us (the reader sees the author anyway); "
    "upstream keeps it in the text:"
)
_KEEP_OUTLOOK_SEPARATOR = (
    "reference keeps the '-----' line above the Outlook block; github's gold answer for "
    "the same mail (email_2_1) drops it"
)

KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("email_reply_trimmer", "email_headers_5"): f"{_CLOSING_IS_SIGNATURE} 'Best regards, //Jef'",
    ("email_reply_trimmer", "embedded_ception"): f"{_CLOSING_IS_SIGNATURE} 'Thanks, Some One'",
    ("email_reply_trimmer", "embedded_email_swedish"): (
        f"{_CLOSING_IS_SIGNATURE} 'Best regards Some One'"
    ),
    ("mail_parser_reply", "email_1_5"): (
        "reference keeps only the first line of a mail that has no quote or signature "
        "(upstream quirk)"
    ),
    ("mail_parser_reply", "email_1_8"): (
        "reference keeps the unanswered trailing quote ('> -- Tim'); we drop quotes nobody answered"
    ),
    ("mail_parser_reply", "email_2_1"): _KEEP_OUTLOOK_SEPARATOR,
    ("mail_parser_reply", "email_nl_1_2"): _KEEP_OUTLOOK_SEPARATOR + " (Dutch copy)",
    ("mail_parser_reply", "email_3_1"): (
        "unquoted text after a quoted block is kept as a bottom-posted answer; here it is "
        "more history in a client-specific layout ('Original Message processed by david')"
    ),
    ("mail_parser_reply", "email_danish_1"): (
        "reference also drops the sentence 'Tak for din mail. Det lyder godt.' "
        "(upstream quirk); we only drop the closing"
    ),
    ("mail_parser_reply", "multiline_on"): (
        "a body of stacked quote headers around a stray 'asd'; reference returns '', "
        "we keep the stray text"
    ),
}

# Cases where words the correspondent wrote are missing from the visible text, with the reason.
# Checked both ways like KNOWN_FAILURES.
OVER_TRIMMING_ALLOWED: dict[tuple[str, str], str] = {}

# Upstream (github_email_reply_parser) requires these to parse in under a second.
PERFORMANCE_GUARDS = ("pathological", "email_long_quote")


@dataclass(frozen=True)
class Case:
    set_name: str
    name: str
    text: str
    expected_visible: str | None = None  # exact expectation
    expected_fragments: tuple[str, ...] = ()  # "contains" expectation

    @property
    def key(self) -> tuple[str, str]:
        return (self.set_name, self.name)

    def passes(self, visible: str) -> bool:
        if self.expected_visible is not None:
            return normalise(visible) == normalise(self.expected_visible)
        return all(fragment in visible for fragment in self.expected_fragments)


def normalise(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _expected(corpora: Path, set_name: str) -> dict:
    return json.loads((corpora / set_name / "expected.json").read_text(encoding="utf-8"))


def _read(corpora: Path, set_name: str, relative: str) -> str:
    return (corpora / set_name / relative).read_text(encoding="utf-8")


def _plain_body(path: Path) -> str:
    """The text/plain body of a whole .eml file, decoded (UTF-8 when no charset is given)."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, f"{path} has no text/plain body"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8", errors="replace")


def _load_cases(corpora: Path) -> Iterator[Case]:
    for name, case in _expected(corpora, "email_reply_trimmer")["cases"].items():
        text = _read(corpora, "email_reply_trimmer", case["input"])
        yield Case("email_reply_trimmer", name, text, case["expected_visible"])

    # Only the gold exact answers count; the rest of the set is fragment-level or reference.
    for name, case in _expected(corpora, "github_email_reply_parser")["cases"].items():
        if "expected_visible" not in case:
            continue
        text = case.get("input_text") or _read(corpora, "github_email_reply_parser", case["input"])
        yield Case("github_email_reply_parser", name, text, case["expected_visible"])

    for name, case in _expected(corpora, "zapier_email_reply_parser")["cases"].items():
        text = _read(corpora, "zapier_email_reply_parser", case["input"])
        if "expected_visible" in case:
            yield Case("zapier_email_reply_parser", name, text, case["expected_visible"])
        else:
            fragments = tuple(case["visible_contains"])
            yield Case("zapier_email_reply_parser", name, text, expected_fragments=fragments)

    for name, case in _expected(corpora, "discourse_replies")["cases"].items():
        text = _plain_body(corpora / "discourse_replies" / case["input"])
        yield Case("discourse_replies", name, text, case["expected_visible"])

    # 15 files are not exercised upstream and have no answer.
    for name, case in _expected(corpora, "mail_parser_reply")["cases"].items():
        if "expected_visible" in case:
            text = _read(corpora, "mail_parser_reply", case["input"])
            yield Case("mail_parser_reply", name, text, case["expected_visible"])


@dataclass(frozen=True)
class Outcome:
    case: Case
    parts: ReplyParts

    @property
    def visible(self) -> str:
        return self.parts.visible

    @property
    def passed(self) -> bool:
        return self.case.passes(self.visible)

    @property
    def over_trimmed(self) -> list[str]:
        """The correspondent's own lines (or expected fragments) missing from the visible text
        and not in the signature part (a sign-off moved there is not hidden text)."""
        if self.case.expected_visible is None:
            return [f for f in self.case.expected_fragments if f not in self.visible]
        shown = set(_content_lines(self.visible)) | set(_content_lines(self.parts.signature))
        return [
            line
            for line in _content_lines(self.case.expected_visible)
            if _is_own_words(line) and line not in shown
        ]

    @property
    def under_trimmed(self) -> list[str]:
        """Visible lines that the expected answer does not have."""
        if self.case.expected_visible is None:
            return []
        expected = set(_content_lines(self.case.expected_visible))
        return [line for line in _content_lines(self.visible) if line not in expected]


def _content_lines(text: str) -> list[str]:
    return [line.strip() for line in normalise(text).split("\n") if line.strip()]


def _is_own_words(line: str) -> bool:
    # Quoted lines are someone else's words; a separator line ("-----") carries none.
    return not line.startswith(">") and any(char.isalnum() for char in line)


@pytest.fixture(scope="module")
def outcomes(corpora: Path) -> list[Outcome]:
    cases = list(_load_cases(corpora))
    assert cases, f"no trimming cases found under {corpora}"
    return [Outcome(case, split_reply(case.text)) for case in cases]


def _scores(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    scores = {set_name: (0, 0) for set_name in SETS}
    for outcome in outcomes:
        passed, total = scores[outcome.case.set_name]
        scores[outcome.case.set_name] = (passed + outcome.passed, total + 1)
    scores["pooled"] = (
        sum(passed for passed, _ in scores.values()),
        sum(total for _, total in scores.values()),
    )
    return scores


def test_every_set_has_cases(outcomes: list[Outcome]) -> None:
    scores = _scores(outcomes)
    assert all(scores[set_name][1] > 0 for set_name in SETS), scores


def test_scores_meet_floors(outcomes: list[Outcome]) -> None:
    scores = _scores(outcomes)
    below = []
    for set_name, (passed, total) in scores.items():
        score = passed / total
        print(f"{set_name:28s} {passed:3d}/{total:3d} = {score:.3f} (floor {FLOORS[set_name]})")
        if score < FLOORS[set_name]:
            below.append(f"{set_name}: {score:.3f} < floor {FLOORS[set_name]}")
    assert not below, "trimming score regressed: " + "; ".join(below)


def test_floors_respect_the_acceptance_criteria() -> None:
    for set_name, minimum in ACCEPTANCE.items():
        assert FLOORS[set_name] >= minimum, f"floor for {set_name} is below the acceptance bar"


def test_known_failures_still_fail(outcomes: list[Outcome]) -> None:
    known = {
        outcome.case.key: outcome for outcome in outcomes if outcome.case.key in KNOWN_FAILURES
    }
    missing = sorted(set(KNOWN_FAILURES) - set(known))
    assert not missing, f"KNOWN_FAILURES names cases that do not exist: {missing}"
    now_passing = sorted(key for key, outcome in known.items() if outcome.passed)
    assert not now_passing, (
        f"these cases now pass: remove them from KNOWN_FAILURES (and raise FLOORS): {now_passing}"
    )


def test_no_unexpected_failures(outcomes: list[Outcome]) -> None:
    failures = [o for o in outcomes if not o.passed and o.case.key not in KNOWN_FAILURES]
    report = "\n\n".join(
        f"{o.case.set_name}/{o.case.name}\n--- got:\n{o.visible}\n"
        f"--- expected:\n{o.case.expected_visible or o.case.expected_fragments}"
        for o in failures
    )
    assert not failures, f"{len(failures)} case(s) regressed:\n\n{report}"


@pytest.mark.parametrize("name", PERFORMANCE_GUARDS)
def test_upstream_performance_guards(corpora: Path, name: str) -> None:
    case = _expected(corpora, "github_email_reply_parser")["cases"][name]
    text = _read(corpora, "github_email_reply_parser", case["input"])
    started = time.perf_counter()
    split_reply(text)
    assert time.perf_counter() - started < 1.0


def test_over_and_under_trimming(outcomes: list[Outcome]) -> None:
    """Per set: exact matches, cases that hide the correspondent's words (over-trimmed) and
    cases that show more than expected (under-trimmed)."""
    over = {}
    for set_name in SETS:
        in_set = [o for o in outcomes if o.case.set_name == set_name]
        over_in_set = [o for o in in_set if o.over_trimmed]
        under_in_set = [o for o in in_set if o.under_trimmed]
        print(
            f"{set_name:28s} {len(in_set):3d} cases: {sum(o.passed for o in in_set):3d} exact,"
            f" {len(over_in_set)} over-trimmed, {len(under_in_set)} under-trimmed"
            f" {sorted(o.case.name for o in under_in_set)}"
        )
        over.update({o.case.key: o.over_trimmed for o in over_in_set})
    unexpected = {key: lines for key, lines in over.items() if key not in OVER_TRIMMING_ALLOWED}
    assert not unexpected, f"the correspondent's words are hidden: {unexpected}"
    no_longer = sorted(set(OVER_TRIMMING_ALLOWED) - set(over))
    assert not no_longer, f"remove from OVER_TRIMMING_ALLOWED, no longer over-trimmed: {no_longer}"


# Real list mail from the shared threading corpora (not a trimming reference set), checked by
# hand: (the visible text ends with, a line that must not be visible, the signature starts
# with). Each shows one of the shapes of issue 14.
REAL_LIST_MAIL = {
    # a trailing quote under its "a écrit :" header, then "Thanks" and a "-- " signature
    "fedora_devel_2010_01_threading/messages/00266.eml": (
        "Yes, of course ;-)",
        ">  Nice to have you back!",
        "Thanks\n-- ",
    ),
    # a trailing quote, then "Thanks," and a "-- " signature
    "perf_extra/notmuch_lkml/cur_1382298587.002878_2_.eml": (
        "parsing patches get in.",
        "> http://patchwork.ozlabs.org/patch/53674/",
        "Thanks,\n-- \nSuresh Jayaraman",
    ),
    # a signature under a line of dashes
    "fedora_devel_2010_01_threading/messages/00078.eml": (
        "I'll take it.",
        "Mathieu Bridon",
        "----------\nMathieu Bridon",
    ),
    # "- Name" sign-offs
    "fedora_devel_2010_01_threading/messages/00183.eml": (
        'should "just work".',
        "- Owen",
        "- Owen",
    ),
    "notmuch_threading/default_eml/cur__31.eml": (
        "We can implement these with fgets() and strncpy() though.",
        "- Jiang",
        "- Jiang",
    ),
    # "Thanks!" and a name
    "fedora_devel_2010_01_threading/messages/00001.eml": (
        "Appreciate any inputs,",
        "SK",
        "Thanks!\n\nSK",
    ),
}


@pytest.mark.parametrize("relative", sorted(REAL_LIST_MAIL))
def test_real_list_mail(corpora: Path, relative: str) -> None:
    ends_with, hidden, signature = REAL_LIST_MAIL[relative]
    parts = split_reply(_plain_body(corpora / relative))
    assert parts.visible.rstrip().endswith(ends_with), parts.visible[-300:]
    assert hidden not in parts.visible.split("\n")
    assert parts.signature.startswith(signature), parts.signature
