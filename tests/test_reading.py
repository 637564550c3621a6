"""Reading comfortably and finding anything (issue 11), through the real ``mailthreads``
command on a real database filled by ``mailthreads ingest``: search as people type it, its
filters, times in the user's zone, tables that fit 80 columns, colour rules, the pager, and the
order of text, signature and quotes in ``show``."""

from __future__ import annotations

import json
import mailbox
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mailfactory import message
from test_terminal_output import Terminal, command

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # mailfactory's first Date
SGR = re.compile(r"\x1b\[[0-9;]*m")
ALTERNATE_SCREEN = "\x1b[?1049h"


def minutes_ago(minutes: int) -> int:
    """mailfactory's ``minutes`` for a Date that many minutes before now."""
    return int((datetime.now(UTC) - BASE).total_seconds() // 60) - minutes


class Site:
    def __init__(self, root: Path):
        self.root = root
        self.terminal = Terminal(root)
        self.env = {**self.terminal.env, "TZ": "UTC"}

    def run(self, *args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run(command(*args), capture_output=True, text=True, cwd=self.root,
                              env={**self.env, **env}, timeout=60)
        assert done.returncode == code, done.stderr + done.stdout
        return done

    def json(self, *args: str, **env: str):
        return json.loads(self.run(*args, "--json", **env).stdout)


LONG_TEXT = ("Some words to push the match far along the line, then more words that go on "
             "and on before the interesting part where the typewriter finally appears, and "
             "then the text goes on for a while longer still.\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    root = tmp_path_factory.mktemp("reading")
    (root / "config.toml").write_text(
        '[addresses]\ndomain = "blog.example"\n\n'
        '[author]\nname = "Author"\naddresses = ["me@blog.example"]\n')
    site = Site(root)
    site.run("posts", "add", "why-i-blog", "--title", "Why I blog")
    site.run("posts", "add", "on-typewriters", "--title", "On typewriters")
    box = mailbox.Maildir(root / "Maildir", create=True)
    for raw in (
        # Thread 1: Jane on why-i-blog, signed, quoting the post; two hours ago.
        message(message_id="<j1@example.com>",
                subject="Re: Why I blog, and a very long subject line that cannot fit in a table",
                body="Please write to bob@example.org about it, don't wait.\n\n"
                     "> the post said this\n> and that\n\n-- \nJane Reader\nLibrarian\n",
                minutes=minutes_ago(120)),
        # Thread 2: Bob on on-typewriters, in November.
        message(sender="Bob Smith <bob@example.org>", to="reply+on-typewriters@blog.example",
                message_id="<b1@example.org>", subject="Ribbons", body=LONG_TEXT, minutes=0),
        # An auto-reply in Bob's thread, later in November.
        message(sender="Bob Smith <bob@example.org>", to="reply+on-typewriters@blog.example",
                message_id="<b2@example.org>", subject="Out of office: Ribbons",
                body="I am away until Monday. The typewriter waits.\n", minutes=60 * 24 * 3,
                headers={"Auto-Submitted": "auto-replied"}),
    ):
        box.add(raw)
    site.run("ingest", str(root / "Maildir"))
    return site


def search_ids(site: Site, *args: str) -> list[str]:
    return [row["id"] for row in site.json("search", *args)]


# --- Find anything -------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["bob@example.org", "don't", "C++ (really)?", '"unbalanced',
                                   "AND", "NEAR(", "well - maybe", "wait.", "x:y"])
def test_search_takes_what_people_type_without_fts_errors(site, query):
    done = site.run("search", query)
    assert "bad search query" not in done.stderr


def test_search_finds_addresses_and_apostrophes_with_whole_highlights(site):
    [hit] = site.json("search", "bob@example.org", "post:why-i-blog")
    assert "[bob@example.org]" in hit["snippet"]
    assert len(site.json("search", "bob@example.org")) == 3  # Bob's own, by his address
    [hit] = site.json("search", "don't")
    assert "[don't]" in hit["snippet"]
    assert site.json("search", "don't", "typewriter") == []  # every word must match
    assert len(site.json("search", "typewriter")) == 2


def test_search_filters(site):
    everything = {row["id"] for row in site.json("search", "from:bob")}
    assert len(everything) == 2
    assert {row["post"] for row in site.json("search", "typewriter", "from:Bob")} == {
        "on-typewriters"}
    assert site.json("search", "post:why-i-blog") == site.json("search", "--post",
                                                               "why-i-blog", "from:jane")
    assert [row["post"] for row in site.json("search", "post:why-i-blog")] == ["why-i-blog"]
    assert [row["kind"] for row in site.json("search", "typewriter", "kind:auto-reply")] == [
        "auto_reply"]
    assert [row["kind"] for row in site.json("search", "typewriter", "kind:reply")] == ["reply"]
    assert len(site.json("search", "typewriter", "after:2026-11-02")) == 1
    assert len(site.json("search", "typewriter", "before:2026-11-02")) == 1
    assert len(site.json("search", "typewriter", "after:2026-10-31",
                         "before:2026-11-30")) == 2
    assert site.json("search", "from:bob", "state:archived") == []
    assert len(site.json("search", "from:bob", "state:needs-reply")) == 2
    bad = site.run("search", "after:yesterday", code=1)
    assert "after:yesterday" in bad.stderr and "YYYY-MM-DD" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_raw_fts_syntax_stays_behind_an_option(site):
    assert len(site.json("search", "--fts", "typewriter OR bob")) == 3
    bad = site.run("search", "--fts", '"unbalanced', code=1)
    assert "bad search query" in bad.stderr and "Traceback" not in bad.stderr


def test_search_table_keeps_the_highlight_whole_in_80_columns(site):
    lines = site.run("search", "typewriter", "from:bob", "kind:reply").stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "[typewriter]" in lines[2], lines


# --- Read comfortably ----------------------------------------------------------------------


def test_times_in_the_users_zone(site):
    threads = site.json("threads")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", thread["last_activity"])
               for thread in threads)  # JSON stays ISO 8601 UTC
    table = site.run("threads", TZ="Europe/Paris").stdout
    assert "just now" in table and "Z " not in table, table  # received just now
    found = site.run("search", "from:example", TZ="Europe/Paris").stdout
    assert re.search(r"\b2 h ago\b", found) and re.search(r"\b4 Nov\b", found), found
    assert site.json("search", "from:jane")[0]["date"].endswith("Z")
    bob = site.run("show", "2", "--no-pager", "--keep-unread", TZ="Europe/Paris").stdout
    assert "Sun 1 Nov 2026 10:00 CET" in bob, bob
    bob = site.run("show", "2", "--no-pager", "--keep-unread", TZ="America/New_York").stdout
    assert "Sun 1 Nov 2026 04:00 EST" in bob, bob


def test_thread_table_fits_80_columns_and_truncates_the_subject(site):
    lines = site.run("threads").stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == ["id", "post", "from", "state", "new", "msgs", "last", "subject"]
    [jane] = [line for line in lines if "why-i-blog" in line]
    assert "Re: Why I blog" in jane and jane.endswith("…")
    wide = site.run("threads", COLUMNS="200").stdout
    assert "cannot fit in a table" in wide


def test_unread_threads_are_bold_and_colour_rules(site):
    bold = "\x1b[1m"
    shown = site.terminal.run("threads")
    [jane] = [line for line in shown.splitlines() if "why-i-blog" in line]
    assert jane.startswith(bold), repr(jane)
    assert not SGR.search(site.terminal.run("--color", "never", "threads"))
    site.terminal.env["NO_COLOR"] = "1"
    try:
        assert not SGR.search(site.terminal.run("threads"))
        assert bold in site.terminal.run("--color", "always", "threads")
    finally:
        del site.terminal.env["NO_COLOR"]
    piped = site.run("--color", "always", "threads").stdout
    assert bold in piped
    assert not SGR.search(site.run("threads").stdout)


def test_colour_is_applied_per_line(site):
    shown = site.run("--color", "always", "show", "1", "--quotes", "--keep-unread").stdout
    for line in ("> the post said this", "> and that", "Jane Reader", "Librarian"):
        [found] = [row for row in shown.splitlines() if SGR.sub("", row) == line]
        assert found.startswith("\x1b[2m") and found.endswith("\x1b[0m"), repr(found)


def test_pager_exits_when_the_text_fits_and_leaves_it_on_screen(site):
    # No key is ever sent: a pager that waited for one would hang until the helper's timeout.
    shown = site.terminal.run("show", "1", "--keep-unread")
    assert "Please write to bob@example.org" in shown
    assert ALTERNATE_SCREEN not in shown


def test_pager_follows_less_and_pager_variables(site):
    site.terminal.env["PAGER"] = "cat -n"
    try:
        shown = site.terminal.run("show", "1", "--keep-unread")
    finally:
        del site.terminal.env["PAGER"]
    assert re.search(r"^\s+1\s+.*Thread 1", shown, re.M), shown
    site.terminal.env["PAGER"] = "no-such-pager-here"
    try:
        shown = site.terminal.run("show", "1", "--keep-unread")
    finally:
        del site.terminal.env["PAGER"]
    assert "Please write to bob@example.org" in shown  # still shown, without a pager


def test_signature_stays_with_its_text_and_the_quote_comes_after(site):
    folded = site.run("show", "1", "--no-pager", "--keep-unread").stdout.splitlines()
    text = folded.index("Please write to bob@example.org about it, don't wait.")
    assert folded[text + 1:text + 4] == ["-- ", "Jane Reader", "Librarian"]
    assert folded[text + 4].startswith("[… 2 quoted lines hidden")
    quotes = site.run("show", "1", "--no-pager", "--quotes", "--keep-unread").stdout
    assert ("don't wait.\n-- \nJane Reader\nLibrarian\n\n[2 quoted lines:]\n"
            "> the post said this\n> and that") in quotes, quotes


# --- explain -------------------------------------------------------------------------------


def test_explain_says_would_be_stored_and_stores_nothing(site, tmp_path):
    new = tmp_path / "new.eml"
    new.write_bytes(message(message_id="<new@example.com>", sender="Ann <ann@example.net>"))
    before = site.json("threads")
    shown = site.run("explain", str(new)).stdout
    assert re.search(r"^status:\s+would be stored$", shown, re.M), shown
    assert re.search(r"^thread:\s+\(a new thread\)$", shown, re.M), shown
    assert site.json("threads") == before


def test_explain_of_a_stored_message_still_gives_kind_and_route(site, tmp_path):
    again = tmp_path / "again.eml"
    again.write_bytes(message(sender="Bob Smith <bob@example.org>",
                              to="reply+on-typewriters@blog.example",
                              message_id="<b2@example.org>", subject="Out of office: Ribbons",
                              body="I am away until Monday. The typewriter waits.\n",
                              minutes=60 * 24 * 3, headers={"Auto-Submitted": "auto-replied"}))
    explained = site.json("explain", str(again))
    assert explained["status"] == "duplicate" and explained["kind"] == "auto_reply"
    reasons = " | ".join(explained["reasons"])
    assert "already stored as message" in reasons
    assert "Auto-Submitted: auto-replied" in reasons
    assert "To reply+on-typewriters@blog.example names post on-typewriters" in reasons
    assert "already stored" in site.run("explain", str(again)).stdout


def test_explain_agrees_with_ingest_on_an_auto_reply_from_a_stranger(site, tmp_path):
    away = tmp_path / "away.eml"
    away.write_bytes(message(message_id="<away@example.net>", sender="Zed <zed@example.net>",
                             subject="Automatic reply: Why I blog",
                             body="I am out of the office until Monday.\n"))
    explained = site.json("explain", str(away))
    shown = site.run("explain", str(away)).stdout
    assert "(a new thread)" not in shown and "in no thread" in shown, shown
    [ingested] = [json.loads(line) for line in
                  site.run("ingest", str(away), "--nl").stdout.splitlines()]
    assert (explained["status"], explained["kind"], explained["thread"],
            explained["new_thread"]) == (ingested["status"], ingested["kind"],
                                         ingested["thread"], False)


def test_explain_refuses_binary_input_as_ingest_does(site, tmp_path):
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(bytes(range(256)) * 16)
    refused = site.run("ingest", str(binary), code=1).stderr
    explained = site.run("explain", str(binary), code=1).stderr
    assert explained == refused and "not an email message" in explained


@pytest.mark.parametrize("typed", ["from:", "post: why-i-blog", "kind:"])
def test_a_filter_without_its_value_is_an_error_not_an_empty_search(typed):
    from mailthreads.search_query import QueryError, parse

    with pytest.raises(QueryError, match="needs its value right after the colon"):
        parse(typed)
