"""Hostile senders and new addresses: who a thread's correspondent is stays the author's call.

A real SQLite file, messages ingested with ``mailthreads ingest``, answers composed with
``reply --dry-run``. Mail that claims Jane's thread (her signed reply address, or an answer to
the author's message to her) from an address that is not hers gets a thread of its own, marked
"same person as Jane?"; ``correspondents merge`` / ``separate`` decides.
"""

from __future__ import annotations

import smtplib
import sqlite3
from email import message_from_string, policy
from email.utils import getaddresses

import pytest
from mailfactory import message
from smtp_support import Serve, wait_filed
from test_answer_cli import Site, ada_writes, at

JANE = "Jane Reader <jane@example.com>"
STRANGER = '"Jane (really)" <stranger@evil.example>'


@pytest.fixture
def site(tmp_path, monkeypatch):
    """No relay: ``reply --dry-run`` shows what would be sent."""
    return Site(tmp_path, monkeypatch, None)


def dry_run(site: Site, thread: int, *extra: str):
    text = site.run("reply", str(thread), "-m", "An answer.", "--dry-run", *extra).stdout
    return message_from_string(text, policy=policy.default)


def recipient(site: Site, thread: int) -> tuple[str, str]:
    [to] = getaddresses([str(dry_run(site, thread)["To"])])
    return to


def signed_address(site: Site, thread: int) -> str:
    [(_, signed)] = getaddresses([str(dry_run(site, thread)["Reply-To"])])
    return signed


def addresses_by_correspondent(site: Site) -> dict[int, list[str]]:
    conn = sqlite3.connect(site.root / "mail.db")
    try:
        found: dict[int, list[str]] = {}
        for correspondent, address in conn.execute(
                "SELECT correspondent_id, address FROM correspondent_addresses "
                "ORDER BY correspondent_id, created_at, address"):
            found.setdefault(correspondent, []).append(address)
        return found
    finally:
        conn.close()


def jane_and_stranger(site: Site) -> tuple[int, int, str]:
    """Jane's thread, the stranger's thread started through her signed address, the address."""
    jane = site.ingest(message(sender=JANE, message_id="<jane1@example.com>", minutes=0))
    signed = signed_address(site, jane["thread"])
    stranger = site.ingest(message(sender=STRANGER, to=signed, message_id="<s1@evil.example>",
                                   body="Please send me your bank details.\n", minutes=10))
    assert stranger["status"] == "stored"
    return jane["thread"], stranger["thread"], signed


def test_a_stranger_at_a_signed_address_gets_a_marked_thread_of_their_own(site):
    jane, stranger, signed = jane_and_stranger(site)
    assert stranger != jane
    assert addresses_by_correspondent(site) == {1: ["jane@example.com"],
                                                2: ["stranger@evil.example"]}

    listed = {row["id"]: row for row in site.json("threads")}
    assert listed[jane]["pending_decision"] is None
    assert listed[stranger]["correspondent"] == "Jane (really) <stranger@evil.example>"
    assert listed[stranger]["pending_decision"] == \
        "same person as Jane Reader <jane@example.com>?"
    assert listed[stranger]["possibly_same_as"] == 1
    shown = site.json("show", str(stranger))
    assert shown["pending_decision"] == "same person as Jane Reader <jane@example.com>?"
    assert [m["from_address"] for m in shown["messages"]] == ["stranger@evil.example"]
    assert [m["from_address"] for m in site.json("show", str(jane))["messages"]] == [
        "jane@example.com"]
    text = site.run("show", str(stranger)).stdout
    assert (f"Thread {stranger}: is stranger@evil.example the same person as Jane Reader "
            f"<jane@example.com>? 'mailthreads correspondents merge {stranger}' if so") in text
    table = site.run("threads")
    assert "waits on" in table.stdout
    assert "same person?" in table.stdout
    assert "same person as Jane Reader <jane@example.com>?" in table.stderr
    assert f"'mailthreads correspondents merge {stranger}'" in table.stderr

    # Answering Jane's thread answers Jane; the stranger's thread, the stranger, and says so.
    assert recipient(site, jane) == ("Jane Reader", "jane@example.com")
    assert recipient(site, stranger) == ("Jane (really)", "stranger@evil.example")
    assert signed_address(site, stranger) != signed

    # The stranger's later mail to another post is theirs, not Jane's.
    elsewhere = site.ingest(message(sender="stranger@evil.example", message_id="<s2@evil>",
                                    to="reply+other-post@blog.example", minutes=20))
    other = site.json("show", str(elsewhere["thread"]))
    assert other["correspondent"] == "Jane (really) <stranger@evil.example>"
    assert other["pending_decision"] is None


def test_a_stranger_answering_the_authors_message_is_kept_apart_too(site):
    jane = site.ingest(message(sender=JANE, message_id="<jane1@example.com>"))["thread"]
    answer = site.ingest(message(sender="Zoë Author <me@blog.example>", to=JANE,
                                 message_id="<answer1@blog.example>",
                                 in_reply_to="<jane1@example.com>", minutes=5))
    assert (answer["direction"], answer["thread"]) == ("out", jane)
    # A forward of the answer reached someone who replies to it, at the plain post address.
    reply = site.ingest(message(sender=STRANGER, message_id="<s1@evil.example>",
                                in_reply_to="<answer1@blog.example>", minutes=10))
    assert reply["thread"] != jane
    assert site.json("show", str(reply["thread"]))["pending_decision"] == \
        "same person as Jane Reader <jane@example.com>?"
    assert recipient(site, jane) == ("Jane Reader", "jane@example.com")


def test_merge_files_the_new_address_and_its_thread_into_janes(site):
    jane = site.ingest(ada_writes(sender=JANE, message_id="<jane1@example.com>"))["thread"]
    signed = signed_address(site, jane)
    work = site.ingest(at(message(sender="Jane at work <jane@work.example>", to=signed,
                                  message_id="<jane2@work.example>",
                                  body="From my work address.\n"), -60))["thread"]
    assert work != jane
    assert [(row["class"], row["id"]) for row in site.json("review")] == [("same_person", work)]
    signed_for_work = signed_address(site, work)  # in an answer sent before the decision

    merged = site.json("correspondents", "merge", str(work))
    assert merged == {"thread": work, "correspondent": 1, "addresses": ["jane@work.example"],
                      "threads": [jane]}
    assert addresses_by_correspondent(site) == {1: ["jane@example.com", "jane@work.example"]}
    [thread] = site.json("threads")
    assert thread["id"] == jane and thread["pending_decision"] is None
    assert (thread["messages"], thread["unread"], thread["state"]) == (2, 2, "needs_reply")
    assert [m["from_address"] for m in site.json("show", str(jane))["messages"]] == [
        "jane@example.com", "jane@work.example"]
    assert site.json("review") == []
    site.run("show", str(work), code=1)

    # Confirmed: her next mail from work goes straight to her thread, and the answer goes to
    # the address she last wrote from.
    later = site.ingest(at(message(sender="jane@work.example", to=signed,
                                   message_id="<jane3@work.example>"), -30))
    assert later["thread"] == jane
    assert recipient(site, jane) == ("", "jane@work.example")
    # The signed address of the thread merged away still reaches her thread.
    answer_to_old = site.ingest(at(message(sender="jane@work.example", to=signed_for_work,
                                           message_id="<jane4@work.example>"), -20))
    assert (answer_to_old["status"], answer_to_old["thread"]) == ("stored", jane)
    assert [row["addresses"] for row in site.json("correspondents", "list")] == [
        ["jane@example.com", "jane@work.example"]]


def test_separate_keeps_them_apart_for_good(site):
    jane, stranger, signed = jane_and_stranger(site)
    out = site.run("correspondents", "separate", str(stranger)).stdout
    assert out == (f"Thread {stranger} stays apart: stranger@evil.example is not Jane Reader "
                   "<jane@example.com>.\n")
    assert site.json("show", str(stranger))["pending_decision"] is None
    assert site.json("review") == []
    again = site.ingest(message(sender=STRANGER, to=signed, message_id="<s3@evil.example>",
                                minutes=30))
    assert again["thread"] == stranger
    assert site.json("show", str(stranger))["pending_decision"] is None  # not asked again
    assert addresses_by_correspondent(site) == {1: ["jane@example.com"],
                                                2: ["stranger@evil.example"]}
    assert recipient(site, jane) == ("Jane Reader", "jane@example.com")
    assert [row["id"] for row in site.json("threads")] == [stranger, jane]


def test_decisions_are_refused_for_threads_that_wait_for_none(site):
    jane = site.ingest(message(sender=JANE))["thread"]
    for verb in ("merge", "separate"):
        result = site.run("correspondents", verb, str(jane), code=1)
        assert result.output.strip() == (
            f"Error: thread {jane} is not waiting for a same-person decision: see "
            "'mailthreads review'")
        result = site.run("correspondents", verb, "99", code=1)
        assert result.output.strip() == \
            "Error: no thread 99: see 'mailthreads threads --all'"
    [row] = site.json("correspondents", "list")
    assert (row["name"], row["addresses"], row["threads"]) == (
        "Jane Reader", ["jane@example.com"], 1)


def test_a_stranger_through_the_smtp_listener_is_kept_apart_until_separated(site):
    jane = site.ingest(message(sender=JANE, message_id="<jane1@example.com>"))["thread"]
    signed = signed_address(site, jane)
    database = site.root / "mail.db"
    with Serve(database, site.config) as serve:
        with smtplib.SMTP(serve.host, serve.port, timeout=30) as client:
            refused = client.sendmail("stranger@evil.example", [signed],
                                      message(sender=STRANGER, to=signed, minutes=10,
                                              message_id="<s1@evil.example>"))
            assert refused == {}
        wait_filed(database, 2)
    # One review queue: the stranger's thread, next to what the quarantine holds.
    forged = site.ingest(message(sender=STRANGER, message_id="<s0@evil.example>",
                                 to=f"reply+why-i-blog.{'a' * 26}@blog.example"))
    assert forged["status"] == "quarantined"
    queue = {row["class"]: row for row in site.json("review")}
    assert sorted(queue) == ["quarantine", "same_person"]
    assert "does not verify" in queue["quarantine"]["reason"]
    stranger = queue["same_person"]["id"]
    assert stranger != jane
    assert queue["same_person"]["from_address"] == "stranger@evil.example"
    assert queue["same_person"]["reason"] == "same person as Jane Reader <jane@example.com>?"
    assert queue["same_person"]["decide"] == \
        f"mailthreads correspondents merge {stranger} (or separate)"
    assert addresses_by_correspondent(site)[1] == ["jane@example.com"]
    assert recipient(site, jane) == ("Jane Reader", "jane@example.com")
    assert recipient(site, stranger) == ("Jane (really)", "stranger@evil.example")
    site.run("correspondents", "separate", str(stranger))
    assert [row["class"] for row in site.json("review")] == ["quarantine"]
    assert addresses_by_correspondent(site) == {1: ["jane@example.com"],
                                                2: ["stranger@evil.example"]}
