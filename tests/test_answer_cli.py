"""Answering from the CLI, end to end: a real SQLite file, the real pipeline (``ingest``), an
editor that is a script, and a real relay (aiosmtpd on 127.0.0.1 with STARTTLS and AUTH) that
the client trusts through ``SSL_CERT_FILE``, as a user with a private relay would set it up.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mailfactory import message
from relay_support import PASSWORD, Relay, running_relay

from mailthreads.cli import cli
from mailthreads.mail.routing import parse_reply_address
from mailthreads.tokens import TOKEN_LENGTH

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SECRET = "cli-test-secret-abcdefghijklmnop"
ADDRESSES = """[addresses]
domain = "blog.example"
secret = "{secret}"

[author]
name = "Zoë Author"
addresses = ["me@blog.example", "zoe@home.example"]

[posts]
create_on_first_reply = true
"""
EDITOR = """#!{python}
# A stand-in for vim: keeps what it was shown, writes $TEST_ANSWER on top, saves.
import os, pathlib, sys, time
path = pathlib.Path(sys.argv[1])
text = path.read_text(encoding="utf-8")
pathlib.Path(os.environ["TEST_EDITOR_SAW"]).write_text(text, encoding="utf-8")
if os.environ.get("TEST_EDITOR_SAVE", "1") == "1":
    path.write_text(os.environ.get("TEST_ANSWER", "") + text, encoding="utf-8")
    later = time.time() + 2  # a save the editor's caller cannot miss, whatever the clock
    os.utime(path, (later, later))
"""


class Site:
    """One blog's mailthreads: config, database, editor, and the relay it sends through."""

    def __init__(self, root: Path, monkeypatch, relay: Relay | None):
        self.root = root
        self.relay = relay
        self.config = root / "config.toml"
        text = ADDRESSES.format(secret=SECRET)
        if relay is not None:
            text += "\n" + relay.outgoing_toml()
            monkeypatch.setenv("RELAY_TEST_PASSWORD", PASSWORD)
            monkeypatch.setenv("SSL_CERT_FILE", str(relay.cafile))
        self.config.write_text(text, encoding="utf-8")
        editor = root / "editor.py"
        editor.write_text(EDITOR.format(python=sys.executable), encoding="utf-8")
        editor.chmod(0o755)
        self.editor_saw = root / "editor-saw.txt"
        monkeypatch.setenv("MAILTHREADS_CONFIG", str(self.config))
        monkeypatch.setenv("MAILTHREADS_DB", str(root / "mail.db"))
        monkeypatch.delenv("MAILTHREADS_SECRET", raising=False)
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setenv("EDITOR", str(editor))
        monkeypatch.setenv("TEST_EDITOR_SAW", str(self.editor_saw))
        self.monkeypatch = monkeypatch
        self.count = 0

    def run(self, *args: str, code: int = 0, input: str | bytes | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def ingest(self, raw: bytes) -> dict:
        self.count += 1
        path = self.root / f"in-{self.count}.eml"
        path.write_bytes(raw)
        [outcome] = [json.loads(line) for line in
                     self.run("ingest", str(path), "--nl").stdout.splitlines()]
        return outcome

    def answer(self, text: str) -> None:
        self.monkeypatch.setenv("TEST_ANSWER", text)

    def sent(self, index: int = -1):
        assert self.relay is not None
        return message_from_bytes(self.relay.received[index].content, policy=policy.default)


@pytest.fixture
def site(tmp_path, monkeypatch):
    with running_relay(tmp_path, security="starttls") as relay:
        yield Site(tmp_path, monkeypatch, relay)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No [outgoing] section: enough for --dry-run, and for answers from a mail client."""
    return Site(tmp_path, monkeypatch, None)


def at(raw: bytes, minutes_from_now: float) -> bytes:
    """``raw`` dated relative to now: answers are dated by the clock, so the mail around them
    must be too for the conversation to read in order."""
    msg = message_from_bytes(raw, policy=policy.default)
    msg.replace_header("Date", format_datetime(datetime.now(UTC)
                                               + timedelta(minutes=minutes_from_now)))
    return bytes(msg)


def ada_writes(minutes: float = 0, **overrides) -> bytes:
    """Ada's mail, two days ago (plus ``minutes``)."""
    values = dict(sender="Ada Lovelace <ada@example.net>", message_id="<ada1@example.net>",
                  subject="Why I blog", body="Why do you blog at all?\n\nI wonder.\n")
    values.update(overrides)
    return at(message(**values), -2 * 24 * 60 + minutes)


def token_of(address: str) -> str:
    route = parse_reply_address(address, _addresses())
    assert route is not None and route.token
    return route.token


def _addresses():
    from mailthreads.config import Addresses

    return Addresses(domain="blog.example", secret=SECRET)


def test_round_trip_answer_then_follow_up_from_another_address(site):
    first = site.ingest(ada_writes())
    assert first["status"] == "stored"
    thread = first["thread"]

    site.answer("Because writing is thinking, Ada.\n# a note to myself, never sent\n")
    out = site.run("reply", str(thread))
    assert re.search(r"Reply 1 sent to ada@example.net via 127\.0\.0\.1:\d+ \(250 ", out.stdout)

    # The editor was shown a git-commit-like template.
    template = site.editor_saw.read_text(encoding="utf-8")
    assert template.startswith("\n")
    assert re.search(r"\nOn \w{3}, \d+ \w{3} \d{4} \d\d:\d\d UTC, Ada Lovelace wrote:\n"
                     r"> Why do you blog at all\?\n>\n> I wonder\.\n", template)
    assert "# To:       Ada Lovelace <ada@example.net>" in template

    # What the relay got: over STARTTLS, logged in, one well-formed answer.
    [got] = site.relay.received
    assert got.encrypted and got.login == site.relay.username
    assert got.mail_from == "me@blog.example" and got.rcpt_tos == ["ada@example.net"]
    sent = site.sent()
    assert sent["Subject"] == "Re: Why I blog"
    assert sent["In-Reply-To"] == "<ada1@example.net>"
    assert sent["References"] == "<ada1@example.net>"
    assert getaddresses([str(sent["From"])]) == [("Zoë Author", "me@blog.example")]
    body = sent.get_content().replace("\r\n", "\n")
    assert body.startswith("Because writing is thinking, Ada.\n\nOn ")
    assert "Ada Lovelace wrote:\n> Why do you blog at all?" in body
    assert "note to myself" not in body and "#" not in body
    [(_, signed)] = getaddresses([str(sent["Reply-To"])])
    token = token_of(signed)
    assert signed == f"reply+why-i-blog.{token}@blog.example" and len(token) == TOKEN_LENGTH

    assert site.json("threads")[0]["state"] == "answered"
    assert site.json("outbox", "list") == []
    [entry] = site.json("outbox", "list", "--all")
    assert entry["status"] == "sent" and entry["attempts"] == 1

    # Ada answers from her work address, to the signed Reply-To, as her client does.
    follow_up = site.ingest(at(message(
        sender="Ada L. <ada@work.example>", to=signed, subject="Re: Why I blog",
        message_id="<ada2@work.example>", in_reply_to=sent["Message-ID"],
        references=sent["Message-ID"], body="That is a good answer.\n"), 0))
    # A new address is not Ada's until the author says so: a thread of its own, marked.
    assert follow_up["status"] == "stored" and follow_up["thread"] != thread
    assert site.json("show", str(follow_up["thread"]))["pending_decision"] == \
        "same person as Ada Lovelace <ada@example.net>?"
    out = site.run("correspondents", "merge", str(follow_up["thread"])).stdout
    assert out == ("ada@work.example: now Ada Lovelace <ada@example.net>, for good; their "
                   f"messages are in thread {thread}.\n")
    # A later mail from the new address, with no threading headers and another subject,
    # now finds the thread by the token alone.
    fresh = site.ingest(at(message(
        sender="ada@work.example", to=signed.upper(), subject="One more thing",
        message_id="<ada3@work.example>", body="And another thought.\n"), 0))
    assert (fresh["status"], fresh["thread"]) == ("stored", thread)

    detail = site.json("show", str(thread))
    assert [(m["direction"], m["from_address"]) for m in detail["messages"]] == [
        ("in", "ada@example.net"), ("out", "me@blog.example"), ("in", "ada@work.example"),
        ("in", "ada@work.example")]
    assert detail["messages"][1]["visible_text"].strip() == "Because writing is thinking, Ada."
    assert detail["state"] == "needs_reply"
    assert len(site.json("threads")) == 1  # one thread: the new address is Ada's, confirmed
    conn = sqlite3.connect(site.root / "mail.db")
    assert conn.execute("SELECT correspondent_id, address FROM correspondent_addresses "
                        "ORDER BY created_at, address").fetchall() == [
        (1, "ada@example.net"), (1, "ada@work.example")]
    conn.close()

    # The next answer goes to the address Ada last wrote from.
    site.run("reply", str(thread), "-m", "Thank you both times.")
    assert site.relay.received[-1].rcpt_tos == ["ada@work.example"]
    assert site.sent()["In-Reply-To"] == "<ada3@work.example>"
    assert site.json("threads")[0]["state"] == "answered"


def test_an_answer_marks_the_thread_answered_even_if_the_correspondent_clock_runs_ahead(site):
    # Ada's clock is two hours fast: her mail is dated after the answer written to it.
    thread = site.ingest(ada_writes(minutes=2 * 24 * 60 + 120))["thread"]
    site.run("reply", str(thread), "-m", "Answered at once.")
    assert site.json("threads")[0]["state"] == "answered"
    site.ingest(at(ada_writes(message_id="<ada2@example.net>", body="Thanks!\n"), 121))
    assert site.json("threads")[0]["state"] == "needs_reply"


def test_forged_or_altered_tokens_are_refused(site):
    thread = site.ingest(ada_writes())["thread"]
    site.ingest(message(sender="Bob <bob@example.org>", message_id="<bob1@example.org>",
                        to="reply+other-post@blog.example"))
    site.run("reply", str(thread), "-m", "Hello Ada.")
    [(_, signed)] = getaddresses([str(site.sent()["Reply-To"])])
    token = token_of(signed)
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    forged = "abcdefghijklmnopqrstuvwxyz"
    for number, to in enumerate([
        f"reply+why-i-blog.{altered}@blog.example",  # one character changed
        f"reply+why-i-blog.{forged}@blog.example",  # made up
        f"reply+other-post.{token}@blog.example",  # a real token, moved to another post
        f"reply+why-i-blog.{token[:16]}@blog.example",  # cut short
    ]):
        outcome = site.ingest(message(sender="Mallory <m@evil.example>", to=to,
                                      message_id=f"<forged{number}@evil.example>"))
        assert outcome["status"] == "quarantined", to
        assert "does not verify" in outcome["reasons"][-1]
    reasons = [entry["reason"] for entry in site.json("quarantine", "list")]
    assert len(reasons) == 4 and all("does not verify" in reason for reason in reasons)
    assert [m["from_address"] for m in site.json("show", str(thread))["messages"]] == [
        "ada@example.net", "me@blog.example"]
    # The plain per-post address still works for first contact.
    first = site.ingest(message(sender="Carol <carol@example.com>", message_id="<c1@x>"))
    assert first["status"] == "stored" and first["thread"] != thread


def test_rotating_the_secret_invalidates_old_signed_addresses(site):
    thread = site.ingest(ada_writes())["thread"]
    site.run("reply", str(thread), "-m", "Hello Ada.")
    [(_, signed)] = getaddresses([str(site.sent()["Reply-To"])])
    site.monkeypatch.setenv("MAILTHREADS_SECRET", "a-brand-new-secret-after-a-leak")
    outcome = site.ingest(message(sender="ada@example.net", to=signed,
                                  message_id="<ada-late@example.net>"))
    assert outcome["status"] == "quarantined"
    # Released later, nothing is lost: the raw message is in the quarantine.
    assert site.json("quarantine", "list")[0]["from_address"] == "ada@example.net"


def test_failed_send_stays_in_the_outbox_and_is_sent_exactly_once_later(site):
    thread = site.ingest(ada_writes())["thread"]
    site.relay.stop()
    result = site.run("reply", str(thread), "-m", "Sent while the relay was down.", code=75)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: reply 1 not sent: cannot connect to 127.0.0.1:")
    assert "connection refused" in line and "mailthreads outbox send" in line

    listing = site.run("outbox").stdout  # alone, it lists
    assert "failed" in listing and "connection ref" in listing
    *table, error = listing.splitlines()
    assert all(len(line) <= 80 for line in table), listing  # the error in full, under it
    assert error.startswith("reply 1: cannot connect to 127.0.0.1:"), listing
    [row] = csv.DictReader(io.StringIO(site.run("outbox", "list", "--csv").stdout))
    assert (row["thread_id"], row["to_address"]) == (str(thread), "ada@example.net")
    assert "connection refused" in row["last_error"]
    [entry] = site.json("outbox", "list")
    assert (entry["status"], entry["attempts"], entry["thread_id"]) == ("failed", 1, thread)
    assert entry["body"] == "Sent while the relay was down."
    assert site.json("threads")[0]["state"] == "needs_reply"  # not answered until it is sent

    again = site.run("outbox", "send", code=75)
    assert "not sent" in again.stderr
    site.relay.start()
    done = site.run("outbox", "send")
    assert "Reply 1 sent to ada@example.net" in done.stdout
    assert "The outbox is empty" in site.run("outbox", "send").stdout
    assert "sent already" in site.run("outbox", "send", "1").stderr
    assert len(site.relay.received) == 1
    assert site.sent().get_content().strip() == "Sent while the relay was down."
    assert site.json("outbox", "list") == []
    assert site.json("threads")[0]["state"] == "answered"
    site.run("outbox", "send", "7", code=1)
    assert "--force" in site.run("outbox", "send", "--force", code=2).output


def test_tls_to_a_plain_relay_exits_1_with_the_fix_and_the_answer_waits(tmp_path, monkeypatch):
    # Exit 75 would have cron retry a setting mistake forever; 1 says "fix something".
    with running_relay(tmp_path, security="none", auth=False) as relay:
        site = Site(tmp_path, monkeypatch, relay)
        settings = ADDRESSES.format(secret=SECRET) + "\n"
        site.config.write_text(settings + relay.outgoing_toml(security="tls"))
        thread = site.ingest(ada_writes())["thread"]
        result = site.run("reply", str(thread), "-m", "Over TLS, I thought.", code=1)
        [line] = result.stderr.splitlines()
        assert line == (f"Error: reply 1 not sent: 127.0.0.1:{relay.port} does not speak TLS "
                        'on connect: set [outgoing] security = "starttls"; it stays in the '
                        "outbox: fix that, then 'mailthreads outbox send'")
        site.run("outbox", "send", code=1)

        site.config.write_text(settings + relay.outgoing_toml())  # fixed: plain, as it is
        assert "Reply 1 sent" in site.run("outbox", "send").stdout
    assert len(relay.received) == 1


def test_empty_answers_abort_and_nothing_is_queued(site):
    thread = site.ingest(ada_writes())["thread"]
    site.answer("")  # saved as it was: only the quote and the comments
    out = site.run("reply", str(thread), code=1)
    assert "the answer is empty: nothing was queued or sent" in out.output
    site.monkeypatch.setenv("TEST_EDITOR_SAVE", "0")  # the editor quit without saving
    site.run("reply", str(thread), code=1)
    site.run("reply", str(thread), "-m", "   \n", code=1)
    assert site.json("outbox", "list", "--all") == [] and site.relay.received == []


def test_message_file_and_standard_input(site, tmp_path):
    thread = site.ingest(ada_writes())["thread"]
    answer = tmp_path / "answer.txt"
    answer.write_text("From a file, with ünïcode.\n", encoding="utf-8")
    site.run("reply", str(thread), "-F", str(answer))
    assert site.sent().get_content().strip() == "From a file, with ünïcode."
    site.run("reply", str(thread), "--message-file", "-", input="From standard input.\n")
    assert site.sent().get_content().strip() == "From standard input."
    site.run("reply", str(thread), "-m", "x", "-F", str(answer), code=2)


def test_dry_run_prints_the_exact_message_and_sends_nothing(offline):
    thread = offline.ingest(ada_writes())["thread"]
    out = offline.run("reply", str(thread), "-m", "Only a rehearsal.", "--dry-run")
    raw = out.stdout_bytes
    assert raw.startswith(b"From: ") and b"\r\n\r\nOnly a rehearsal.\r\n" in raw
    sent = message_from_bytes(raw, policy=policy.default)
    assert sent["In-Reply-To"] == "<ada1@example.net>"
    assert sent["Message-ID"].endswith("@blog.example>")
    assert offline.json("outbox", "list", "--all") == []
    assert offline.json("threads")[0]["state"] == "needs_reply"
    # Without --dry-run the missing relay is named before the editor ever opens.
    result = offline.run("reply", str(thread), code=1)
    assert "no [outgoing] section" in result.output
    assert not offline.editor_saw.exists()


NESTED_SUBJECT = (b"=?utf-8?q?=3D=3Futf-8=3Fq=3FWhy_I_blog=3D0D=3D0ABcc=3D3A_victim=3D40evil"
                  b"=3D2Eexample=3F=3D?=")


@pytest.mark.parametrize("subject, name, expected", [
    (b"Why I\x00 blog", b"Ada\x00 Lovelace", "Re: Why I blog"),
    (NESTED_SUBJECT, b"=?utf-8?q?Ada=00_Lovelace?=", "Re: Why I blog Bcc: victim@evil.example"),
])
def test_a_nul_or_a_nested_encoded_word_does_not_block_the_answer(offline, subject, name,
                                                                   expected):
    raw = ada_writes(subject="SUBJECT", sender="NAME <ada@example.net>")
    outcome = offline.ingest(raw.replace(b"SUBJECT", subject).replace(b"NAME", name))
    assert outcome["status"] == "stored"
    thread = str(outcome["thread"])
    sent = message_from_bytes(
        offline.run("reply", thread, "-m", "Thanks.", "--dry-run").stdout_bytes,
        policy=policy.default)
    assert sent["Subject"] == expected
    assert getaddresses(sent.get_all("To")) == [("Ada Lovelace", "ada@example.net")]
    assert sent["Bcc"] is None
    # The author can always choose the subject; line breaks in it are spaces too.
    for chosen, shown in (("Your question", "Re: Your question"),
                          ("Re: One\nBcc: x@evil.example", "Re: One Bcc: x@evil.example")):
        sent = message_from_bytes(offline.run(
            "reply", thread, "-m", "Thanks.", "--dry-run", "--subject", chosen).stdout_bytes,
            policy=policy.default)
        assert sent["Subject"] == shown and sent["Bcc"] is None


def test_a_subject_nested_too_deep_names_the_way_around(offline):
    subject = "Why I blog"
    for _ in range(8):
        subject = "=?utf-8?q?" + "".join(c if c.isalnum() else f"={ord(c):02X}"
                                         for c in subject) + "?="
    thread = str(offline.ingest(ada_writes(subject=subject))["thread"])
    error = offline.run("reply", thread, "-m", "Thanks.", "--dry-run", code=1).output
    assert error.startswith("Error: refusing to send: the Subject has encoded words nested")
    assert error.rstrip().endswith("give the answer's subject with --subject")
    sent = offline.run("reply", thread, "-m", "Thanks.", "--dry-run", "--subject", "Blogging")
    assert b"\r\nSubject: Re: Blogging\r\n" in sent.stdout_bytes


def test_setup_mistakes_are_one_line_before_the_editor_opens(offline, monkeypatch):
    thread = offline.ingest(ada_writes())["thread"]
    offline.config.write_text(offline.config.read_text().replace(
        f'secret = "{SECRET}"\n', ""), encoding="utf-8")
    result = offline.run("reply", str(thread), "--dry-run", code=1)
    assert result.output.strip() == (
        "Error: no secret for signed reply addresses: set [addresses] secret "
        "('mailthreads init' writes one) or MAILTHREADS_SECRET")
    monkeypatch.setenv("MAILTHREADS_SECRET", SECRET)
    offline.run("reply", "99", "--dry-run", "-m", "x", code=1)
    assert not offline.editor_saw.exists()
    assert "no message '12345'" in offline.run(
        "reply", str(thread), "--to-message", "12345", "--dry-run", "-m", "x", code=1).output


def test_to_message_answers_an_earlier_message(site):
    thread = site.ingest(ada_writes())["thread"]
    site.ingest(ada_writes(message_id="<ada2@example.net>", body="Also: why now?\n",
                           in_reply_to="<ada1@example.net>", minutes=30))
    site.answer("About your first question.\n")
    site.run("reply", str(thread), "--to-message", "<ada1@example.net>")
    assert site.sent()["In-Reply-To"] == "<ada1@example.net>"
    assert "> Why do you blog at all?" in site.editor_saw.read_text(encoding="utf-8")
    first_row = site.json("show", str(thread))["messages"][1]["id"]
    site.run("reply", str(thread), "--to-message", str(first_row), "-m", "And the second.")
    assert site.sent()["In-Reply-To"] == "<ada2@example.net>"
    assert site.sent()["References"].split() == ["<ada1@example.net>", "<ada2@example.net>"]


def test_machine_mail_is_answered_only_after_asking(site):
    thread = site.ingest(ada_writes())["thread"]
    auto = site.ingest(ada_writes(
        message_id="<ooo@example.net>", subject="Out of office: Why I blog", minutes=5,
        body="I am away until Monday.\n", headers={"Auto-Submitted": "auto-replied"}))
    assert (auto["kind"], auto["thread"]) == ("auto_reply", thread)

    refused = site.run("reply", str(thread), "-m", "Enjoy the holiday.", input="n\n", code=1)
    assert "the last message of this thread is an auto-reply" in refused.stderr
    assert "Answer anyway?" in refused.stderr
    assert site.relay.received == [] and site.json("outbox", "list", "--all") == []
    # No one at the keyboard (cron, a script): no answer either.
    site.run("reply", str(thread), "-m", "Enjoy the holiday.", code=1)
    assert site.relay.received == []

    site.run("reply", str(thread), "-m", "Enjoy the holiday.", input="y\n")
    sent = site.sent()
    assert sent["In-Reply-To"] == "<ada1@example.net>"  # the person, not the robot
    assert site.relay.received[0].rcpt_tos == ["ada@example.net"]
    assert sent["Subject"] == "Re: Why I blog"


def test_answers_from_the_authors_mail_client_are_filed_as_out(offline):
    thread = offline.ingest(ada_writes())["thread"]
    # Cc to the reply address, as a reply-all from the author's own client.
    cc = offline.ingest(at(message(
        sender="Zoë Author <me@blog.example>", to="Ada Lovelace <ada@example.net>",
        subject="Re: Why I blog", message_id=make_msgid(domain="home.example"),
        in_reply_to="<ada1@example.net>", references="<ada1@example.net>",
        headers={"Cc": "reply+why-i-blog@blog.example"}, body="Answered by mail.\n"), -60))
    assert (cc["status"], cc["direction"], cc["thread"]) == ("stored", "out", thread)
    assert offline.json("threads")[0]["state"] == "answered"
    # Bcc from the second author address: only the delivery says where it went.
    bcc = offline.ingest(at(message(
        sender="zoe@home.example", to="ada@example.net", subject="A new thought",
        message_id="<bcc1@home.example>", body="Something else.\n",
        headers={"Delivered-To": "reply+why-i-blog@blog.example"}), -50))
    assert (bcc["direction"], bcc["thread"]) == ("out", thread)
    detail = offline.json("show", str(thread))
    assert [m["direction"] for m in detail["messages"]] == ["in", "out", "out"]

    # Archived, it stays hidden while the author writes, and comes back when Ada does.
    offline.run("archive", str(thread))
    offline.ingest(at(message(sender="zoe@home.example", to="ada@example.net",
                              message_id="<bcc2@home.example>", body="P.S.\n",
                              headers={"Delivered-To": "reply+why-i-blog@blog.example"}), -40))
    assert offline.json("threads") == []
    offline.ingest(at(ada_writes(message_id="<ada9@example.net>", body="Back again.\n"), -30))
    [listed] = offline.json("threads")
    assert (listed["id"], listed["state"]) == (thread, "needs_reply")


def test_help_names_every_answering_command():
    runner = CliRunner()
    for args in (["reply", "--help"], ["outbox", "--help"], ["outbox", "list", "--help"],
                 ["outbox", "send", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and "Example" in result.output, args
