"""Who is trusted (issue 12): block and allow, trusted correspondents, replies to unknown posts
held for the author, and the precedence of the rules. Through the CLI on a real database, and
through a real ``mailthreads serve`` for the stranger's ``reply+buy-cheap-pills@…``.

The spam level and the DMARC result are inputs of ``mail.trust.decide`` that the spam checks
(the other half of issue 12) produce; here they are plain values passed in: the one fake.
"""

from __future__ import annotations

import json
import smtplib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailfactory import message
from smtp_support import Serve, query, wait_filed, write_config

from mailthreads.cli import cli
from mailthreads.config import load
from mailthreads.db import open_database
from mailthreads.mail.analysis import analyse
from mailthreads.mail.trust import (
    TrustFacts,
    decide,
    matching_block,
    normalise_pattern,
)

PILLS = "reply+buy-cheap-pills@blog.example"
SELLER = "Pill Seller <seller@pills.example>"
CONFIG = """[addresses]
domain = "blog.example"

[author]
name = "Blog Author"
addresses = ["me@blog.example"]
"""


class Blog:
    """A config (the defaults, but for the domain and the author) and a real database."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, extra: str = ""):
        self.root = root
        self.config = root / "config.toml"
        self.config.write_text(CONFIG + extra, encoding="utf-8")
        self.database = root / "mail.db"
        monkeypatch.setenv("MAILTHREADS_CONFIG", str(self.config))
        monkeypatch.setenv("MAILTHREADS_DB", str(self.database))
        self.count = 0

    def run(self, *args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json"))

    def ingest(self, raw: bytes) -> dict:
        self.count += 1
        path = self.root / f"in-{self.count}.eml"
        path.write_bytes(raw)
        [outcome] = [json.loads(line) for line in self.run("ingest", str(path), "--nl")
                     .splitlines() if line.startswith("{")]
        return outcome

    def rows(self, sql: str) -> list[tuple]:
        return query(self.database, sql)


@pytest.fixture
def blog(tmp_path, monkeypatch) -> Blog:
    return Blog(tmp_path, monkeypatch)


def pills(number: int = 1, sender: str = SELLER) -> bytes:
    return message(sender=sender, to=PILLS, subject="Cheap pills", body="Buy now.\n",
                   message_id=f"<pills{number}@pills.example>", minutes=number)


# --- The precedence: one pure function -------------------------------------------------------

def test_block_comes_before_everything():
    decision = decide(TrustFacts(blocked_by="@pills.example", dmarc="fail", trusted=True,
                                 spam="ham"))
    assert decision.action == "blocked" and decision.review_class == "blocked"
    assert "@pills.example" in decision.reason


def test_a_dmarc_failure_comes_before_trust():
    decision = decide(TrustFacts(dmarc="fail", trusted=True, spam="ham"))
    assert decision.action == "spam" and "DMARC" in decision.reason


def test_a_trusted_correspondent_is_never_sent_to_spam_by_a_score_alone():
    for level in ("spam", "borderline"):
        decision = decide(TrustFacts(trusted=True, spam=level, dmarc="pass"))
        assert decision.action == "accept" and decision.review_class is None
        assert decision.flag == f"{level} spam score"
        assert "trusted correspondent" in decision.reason


def test_the_score_decides_for_everyone_else():
    assert decide(TrustFacts(spam="spam")).action == "spam"
    borderline = decide(TrustFacts(spam="borderline"))
    assert (borderline.action, borderline.flag) == ("accept", "borderline spam score")
    clean = decide(TrustFacts(spam="ham"))
    assert (clean.action, clean.flag, clean.review_class) == ("accept", None, None)
    assert decide(TrustFacts()).action == "accept"


def test_block_patterns_match_an_address_or_a_domain_and_its_subdomains():
    patterns = {normalise_pattern("Seller@Pills.Example"), normalise_pattern("@spam.example"),
                normalise_pattern("junk.example")}
    assert patterns == {"seller@pills.example", "@spam.example", "@junk.example"}
    assert matching_block(("SELLER@pills.example",), patterns) == "seller@pills.example"
    assert matching_block(("x@mail.spam.example",), patterns) == "@spam.example"
    assert matching_block((None, "bounce@junk.example"), patterns) == "@junk.example"
    assert matching_block(("other@pills.example", "a@nospam.example", ""), patterns) is None
    for bad in ("", "@", "no spaces@x.example", "a@b@c.example", "@localhost"):
        with pytest.raises(ValueError):
            normalise_pattern(bad)


# --- Unknown posts: held until the author adds the post -------------------------------------

def test_a_reply_to_an_unknown_post_is_held_not_created(blog):
    outcome = blog.ingest(pills())
    assert outcome["status"] == "quarantined"
    assert blog.rows("SELECT COUNT(*) FROM posts") == [(0,)]
    assert blog.rows("SELECT COUNT(*) FROM threads") == [(0,)]
    assert blog.rows("SELECT COUNT(*) FROM correspondents") == [(0,)]
    [held] = blog.json("review")
    assert held["class"] == "unknown_post"
    assert held["from_address"] == "seller@pills.example"
    assert held["decide"].startswith("mailthreads posts add buy-cheap-pills")
    assert blog.json("threads") == []

    assert "Filed 1 held reply to buy-cheap-pills" in blog.run("posts", "add",
                                                               "buy-cheap-pills")
    assert blog.json("review") == []
    [thread] = blog.json("threads")
    assert thread["post"] == "buy-cheap-pills"


def test_the_summary_tells_held_and_blocked_mail_from_quarantined_mail(blog):
    """Mail kept aside on purpose is not reported as broken: 'quarantined' is for what could
    not be parsed or routed."""
    blog.run("posts", "add", "why-i-blog")
    blog.run("block", "spammer@junk.example")
    for number, raw in enumerate([
            pills(),  # a post not added yet: held for review
            message(sender="Spammer <spammer@junk.example>", message_id="<b1@junk.example>"),
            message(to="nobody@elsewhere.example", message_id="<lost@example.com>"),
            message(message_id="<fine@example.com>")]):
        (blog.root / f"batch-{number}.eml").write_bytes(raw)
    said = blog.run("ingest", *(str(path) for path in sorted(blog.root.glob("batch-*.eml"))))
    assert ("4 messages: 1 stored, 0 duplicate, 1 quarantined, 1 held for your review, "
            "1 from blocked senders, kept raw") in said, said
    files = [str(path) for path in sorted(blog.root.glob("batch-*.eml"))]
    summary = json.loads(blog.run("ingest", *files, "--json"))["summary"]
    assert (summary["duplicate"], summary["quarantined"], summary["held"],
            summary["blocked"]) == (1, 1, 1, 1)


def test_what_a_stopped_run_kept_tells_held_mail_from_quarantined(blog):
    """The summary of an interrupted ingest or poll (``committed_counts``) counts as the
    summary of a finished one."""
    from mailthreads.cli.output import committed_counts
    from mailthreads.db import connect, store

    blog.ingest(pills())  # held: a post not added yet
    blog.ingest(message(to="nobody@elsewhere.example", message_id="<lost@example.com>"))
    counts = store.delivery_counts_since(connect(blog.database), 0)
    assert counts == {"held": 1, "quarantined": 1}
    assert committed_counts(counts) == ("2 messages in (0 stored, 0 duplicate, 1 quarantined, "
                                        "1 held for your review)")


def test_review_accept_creates_the_post_and_files_the_reply(blog):
    blog.ingest(pills())
    [held] = blog.json("review")
    assert "stored in thread 1" in blog.run("review", "accept", str(held["id"]))
    assert [post["slug"] for post in blog.json("posts", "list")] == ["buy-cheap-pills"]
    assert blog.json("review") == []


def test_posts_sync_files_the_replies_held_for_its_posts(blog, tmp_path):
    blog.ingest(pills())
    feed = tmp_path / "feed.xml"
    feed.write_text("""<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>
<link>https://blog.example/</link><item><title>Pills</title>
<link>https://blog.example/buy-cheap-pills/</link></item></channel></rss>""")
    output = blog.run("posts", "sync", str(feed))
    assert "Filed 1 held reply to buy-cheap-pills" in output
    assert [thread["post"] for thread in blog.json("threads")] == ["buy-cheap-pills"]


def test_create_on_first_reply_stays_available(tmp_path, monkeypatch):
    blog = Blog(tmp_path, monkeypatch, "\n[posts]\ncreate_on_first_reply = true\n")
    assert blog.ingest(pills())["status"] == "stored"
    assert blog.json("review") == []


# --- Block and allow ------------------------------------------------------------------------

def test_a_blocked_address_is_kept_raw_but_shown_nowhere(blog):
    blog.run("posts", "add", "buy-cheap-pills")
    assert "seller@pills.example: blocked" in blog.run("block", "Seller@Pills.example")
    outcome = blog.ingest(pills())
    assert outcome["status"] == "quarantined"
    assert "sender blocked (seller@pills.example)" in outcome["reasons"][-1]
    assert blog.rows("SELECT COUNT(*) FROM raw_messages") == [(1,)]
    assert blog.rows("SELECT COUNT(*) FROM messages") == [(0,)]
    assert blog.rows("SELECT COUNT(*) FROM threads") == [(0,)]
    assert blog.rows("SELECT COUNT(*) FROM correspondents") == [(0,)]
    assert blog.json("review") == []  # quiet
    assert "1 spam or from blocked senders not listed" in blog.run("review")
    [held] = blog.json("review", "--all")
    assert held["class"] == "blocked"
    # Someone else at the same domain is not blocked by an address block.
    other = blog.ingest(pills(2, sender="Other <other@pills.example>"))
    assert other["status"] == "stored"


def test_a_blocked_domain_and_its_subdomains_and_unblocking(blog):
    blog.run("posts", "add", "buy-cheap-pills")
    blog.run("block", "@pills.example")
    assert [row["pattern"] for row in blog.json("blocks")] == ["@pills.example"]
    assert blog.ingest(pills(1))["status"] == "quarantined"
    assert blog.ingest(pills(2, sender="x@mx.pills.example"))["status"] == "quarantined"
    assert blog.rows("SELECT COUNT(*) FROM messages") == [(0,)]

    assert "@pills.example: unblocked" in blog.run("unblock", "@pills.example")
    assert blog.json("blocks") == []
    # Future mail is filed; what was held back stays held until released.
    assert blog.ingest(pills(3))["status"] == "stored"
    assert blog.rows("SELECT COUNT(*) FROM messages") == [(1,)]
    held = blog.json("review", "--all")
    assert [row["class"] for row in held] == ["blocked", "blocked"]
    assert "stored" in blog.run("review", "accept", str(held[0]["id"]))
    assert blog.rows("SELECT COUNT(*) FROM messages") == [(2,)]


def test_block_commands_refuse_what_is_not_an_address(blog):
    output = blog.run("block", "not an address", code=2)
    assert "neither an address" in output
    blog.run("init")
    assert "not blocked" in blog.run("unblock", "@nobody.example", code=1)


# --- Trusted correspondents -----------------------------------------------------------------

def facts_for(blog: Blog, raw: bytes) -> TrustFacts:
    from mailthreads.ingest.sender import sender_facts

    config = load(blog.config)
    with sqlite3.connect(blog.database) as conn:
        return sender_facts(conn, analyse(raw, config.limits), None)


def test_a_correspondent_the_author_answered_is_trusted(blog):
    blog.run("posts", "add", "why-i-blog")
    jane = message(message_id="<jane1@example.com>")
    blog.ingest(jane)
    assert facts_for(blog, jane).trusted is False  # not answered yet
    blog.ingest(message(sender="Blog Author <me@blog.example>", to="jane@example.com",
                        subject="Re: Why I blog", message_id="<me1@blog.example>",
                        in_reply_to="<jane1@example.com>", minutes=5))
    facts = facts_for(blog, jane)
    assert facts.trusted is True
    # With a spam score (the spam checks' value, passed in here), she is still filed, flagged.
    decision = decide(replace(facts, spam="spam"))
    assert (decision.action, decision.flag) == ("accept", "spam spam score")
    later = blog.root / "later.eml"
    later.write_bytes(message(message_id="<jane2@example.com>", minutes=30))
    explained = blog.json("explain", str(later))
    assert explained["trust"] == {"action": "accept", "flag": None,
                                  "reason": "trusted correspondent (you answered them)"}
    # A stranger is not trusted.
    assert facts_for(blog, message(sender="x@elsewhere.example")).trusted is False


def test_an_address_not_confirmed_by_the_author_is_not_trusted(blog):
    blog.run("posts", "add", "why-i-blog")
    jane = blog.ingest(message(message_id="<jane1@example.com>"))
    blog.ingest(message(sender="Blog Author <me@blog.example>", to="jane@example.com",
                        message_id="<me1@blog.example>", in_reply_to="<jane1@example.com>",
                        minutes=5))
    # The stranger answers the author's message to Jane: a thread of their own, marked.
    stranger = message(sender="Jane (really) <jane@evil.example>", message_id="<s1@evil.ex>",
                       in_reply_to="<me1@blog.example>", minutes=10)
    assert blog.ingest(stranger)["status"] == "stored"
    [marked] = [row for row in blog.json("review") if row["class"] == "same_person"]
    assert marked["id"] != jane["thread"]
    # Even once the author answers that thread, the address is no one's until confirmed.
    blog.ingest(message(sender="Blog Author <me@blog.example>", to="jane@evil.example",
                        message_id="<me2@blog.example>", in_reply_to="<s1@evil.ex>",
                        minutes=15))
    assert facts_for(blog, stranger).trusted is False
    blog.run("correspondents", "separate", str(marked["id"]))
    assert facts_for(blog, stranger).trusted is True


# --- Through a real listener ----------------------------------------------------------------

def test_the_strangers_reply_through_serve_is_held_then_filed_by_posts_add(tmp_path,
                                                                          monkeypatch):
    config = write_config(tmp_path, create_posts=False)  # the default
    database = tmp_path / "mail.db"
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
    monkeypatch.setenv("MAILTHREADS_DB", str(database))
    with Serve(database, config) as serve:
        with smtplib.SMTP(serve.host, serve.port, timeout=30) as client:
            assert client.sendmail("seller@pills.example", [PILLS], pills()) == {}
        wait_filed(database, 1)
        assert query(database, "SELECT COUNT(*) FROM posts") == [(0,)]
        assert query(database, "SELECT COUNT(*) FROM threads") == [(0,)]
        runner = CliRunner()
        listed = json.loads(runner.invoke(cli, ["review", "--json"]).output)
        assert [(row["class"], row["from_address"]) for row in listed] == [
            ("unknown_post", "seller@pills.example")]
        added = runner.invoke(cli, ["posts", "add", "buy-cheap-pills"])
        assert "Filed 1 held reply" in added.output, added.output
        threads = json.loads(runner.invoke(cli, ["threads", "--json"]).output)
        assert [thread["post"] for thread in threads] == ["buy-cheap-pills"]


def test_the_schema_has_the_blocks_table_and_the_review_class(tmp_path):
    db = open_database(tmp_path / "mail.db", create=True)
    assert db["blocks"].columns_dict == {"pattern": str, "created_at": str}
    assert {"reason_class", "post_slug"} <= set(db["quarantine"].columns_dict)


def test_block_needs_an_existing_database(blog, tmp_path):
    missing = tmp_path / "typo" / "mail.db"
    output = blog.run("-d", str(missing), "block", "x@pills.example", code=1)
    assert "no such database" in output
    assert not missing.exists() and not missing.parent.exists()
