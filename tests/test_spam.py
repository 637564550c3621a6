"""Spam kept apart, with a real private spamd (tests/spamd.py): through ``ingest``, ``serve``
and ``poll`` (a real Dovecot); the scanner stopped mid-run; ``spam`` list/show/release/delete;
``rescan``; forged upstream headers ignored; DMARC failures quarantined or kept as spam."""

from __future__ import annotations

import json
import smtplib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from dovecot import dovecot, dovecot_server  # noqa: F401  (pytest fixtures)
from mailfactory import message
from smtp_support import Serve, wait_filed, wait_for, write_config
from spamd import GTUBE, spamd, spamd_server  # noqa: F401  (pytest fixtures)

REPLY_TO = "reply+why-i-blog@blog.example"
MX = "mx.own.example"


def gtube(number: int = 1, **fields: object) -> bytes:
    return message(sender=f"Spammer <spam{number}@junk.example>",
                   message_id=f"<spam{number}@junk.example>", subject="Cheap pills",
                   body=f"Buy now.\n{GTUBE}\n", **fields)


def human(number: int = 1, **fields: object) -> bytes:
    return message(sender=f"Reader {number} <reader{number}@example.com>",
                   message_id=f"<r{number}@example.com>",
                   body=f"Thank you for this post, number {number}. I tried it on my own "
                   "blog last week and it worked.\n", **fields)


def author_answer() -> bytes:
    """The author's answer to reader 1's first message."""
    return message(sender="Blog Author <me@blog.example>", to="reader1@example.com",
                   message_id="<a1@blog.example>", in_reply_to="<r1@example.com>",
                   body="Thanks!\n")


class Tool:
    """``mailthreads`` with one config and one database, as a user runs it."""

    def __init__(self, tmp_path: Path, extra: str):
        self.database = tmp_path / "mail.db"
        self.config = write_config(tmp_path, extra="\n" + extra)
        self.directory = tmp_path

    def run(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mailthreads", "-c", str(self.config),
                               "-d", str(self.database), *args], input=stdin,
                              capture_output=True, timeout=180)

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def ingest(self, *messages: bytes) -> str:
        paths = []
        for number, raw in enumerate(messages):
            path = self.directory / f"in{len(list(self.directory.glob('in*.eml')))}-{number}.eml"
            path.write_bytes(raw)
            paths.append(str(path))
        return self.ok("ingest", *paths)

    def rows(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.database, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def filed(self) -> dict[str, object]:
        """Who and what the discussions hold, and what the spam list holds."""
        return {
            "messages": self.rows("SELECT message_id, spam_verdict FROM messages ORDER BY id"),
            "correspondents": self.rows("SELECT address FROM correspondent_addresses "
                                        "ORDER BY address"),
            "threads": self.rows("SELECT COUNT(*) FROM threads")[0][0],
            "needs_reply": self.rows("SELECT COUNT(*) FROM threads "
                                     "WHERE state = 'needs_reply'")[0][0],
            "spam": self.rows("SELECT message_id FROM spam ORDER BY id"),
        }


KEPT_APART = {
    "messages": [("r1@example.com", "ham")],
    "correspondents": [("reader1@example.com",)],
    "threads": 1,
    "needs_reply": 1,
    "spam": [("spam1@junk.example",)],
}


def test_ingest_keeps_gtube_apart_and_files_the_reply(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    out = tool.ingest(gtube(), human())
    assert "1 stored" in out and "1 spam, kept apart" in out
    assert tool.filed() == KEPT_APART
    # No post was made for the spam alone either.
    assert tool.rows("SELECT slug FROM posts") == [("why-i-blog",)]
    listed = json.loads(tool.ok("spam", "list", "--json"))
    assert [(e["from_address"], e["verdict_source"]) for e in listed] == [
        ("spam1@junk.example", f"spamd 127.0.0.1:{spamd.port}")]
    assert listed[0]["score"] >= 1000
    shown = json.loads(tool.ok("spam", "show", str(listed[0]["id"]), "--json"))
    assert "GTUBE" in shown["reasons"]
    assert tool.rows("SELECT verdict_source FROM messages") == [
        (f"spamd 127.0.0.1:{spamd.port}",)]


def test_review_counts_spam_and_lists_it_with_all(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    tool.ingest(gtube(), human())
    quiet = tool.run("review")
    assert quiet.returncode == 0
    assert "1 spam or from blocked senders not listed" in quiet.stderr.decode()
    [entry] = json.loads(tool.ok("review", "--all", "--json"))
    assert (entry["class"], entry["from_address"]) == ("spam", "spam1@junk.example")
    assert entry["decide"] == f"mailthreads spam release {entry['id']} (or spam delete " \
                              f"{entry['id']})"


def test_explain_shows_the_verdict_and_where_it_came_from(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    tool.ok("init")
    explained = json.loads(tool.ok("explain", "-", "--json", stdin=gtube()))
    assert explained["status"] == "spam"
    assert explained["verdict"].startswith("spam (score ")
    assert f"spamd 127.0.0.1:{spamd.port}: GTUBE" in explained["verdict"]
    explained = json.loads(tool.ok("explain", "-", "--json", stdin=human()))
    assert explained["status"] == "stored" and explained["verdict"].startswith("ham (score ")


def test_serve_keeps_gtube_apart(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    with Serve(tool.database, tool.config) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            assert client.sendmail("spam1@junk.example", [REPLY_TO], gtube()) == {}
            assert client.sendmail("reader1@example.com", [REPLY_TO], human()) == {}
        wait_filed(tool.database, 2)
        assert "status=spam" in server.log()
    assert tool.filed() == KEPT_APART


def test_a_hung_scanner_never_holds_up_accepting_mail(tmp_path, spamd):  # noqa: F811
    """The scan happens before the filer's write transaction: while spamd does not answer,
    the listener still commits (and answers 250 to) the next message at once."""
    tool = Tool(tmp_path, spamd.toml(timeout=40))
    with Serve(tool.database, tool.config) as server:
        with spamd.hung(), smtplib.SMTP("127.0.0.1", server.port, timeout=60) as client:
            waiting = spamd.clients_waiting()
            assert client.sendmail("reader1@example.com", [REPLY_TO], human(1)) == {}
            wait_for(lambda: spamd.clients_waiting() == waiting + 1, "the filer to ask spamd",
                     20)
            assert client.sendmail("reader2@example.com", [REPLY_TO], human(2)) == {}
            # Both accepted while the first scan still waits for its answer.
            assert spamd.clients_waiting() == waiting + 1
            assert tool.rows("SELECT status FROM deliveries ORDER BY id") == [("pending",)] * 2
        wait_filed(tool.database, 2)
    assert tool.rows("SELECT message_id FROM messages ORDER BY id") == [
        ("r1@example.com",), ("r2@example.com",)]


def test_a_hung_scanner_is_asked_once_not_once_per_message(tmp_path, spamd):  # noqa: F811
    """Each message would wait [spam] timeout for a spamd that never answers: after the first,
    the rest are filed unscanned at once (and scanned later by serve or 'rescan')."""
    tool = Tool(tmp_path, spamd.toml(timeout=2))
    with spamd.hung():
        waiting = spamd.clients_waiting()
        out = tool.ingest(human(1), human(2), human(3))
        assert "3 stored" in out
        assert spamd.clients_waiting() == waiting + 1  # one asked; the other two did not wait
    assert tool.rows("SELECT spam_verdict FROM messages") == [("unscanned",)] * 3
    assert "3 scanned: 3 ham, 0 spam" in tool.ok("rescan")  # a rescan always asks


def test_mail_stored_before_is_not_scanned_again(tmp_path, spamd):  # noqa: F811
    """A re-import asks spamd nothing: duplicates, deleted mail and the author's own are
    never screened, so they are not scanned before the write transaction either."""
    tool = Tool(tmp_path, spamd.toml(timeout=30))
    tool.ingest(human(1), human(2))
    with spamd.hung():
        waiting = spamd.clients_waiting()
        assert "2 duplicate" in tool.ok("ingest", *map(str, sorted(tmp_path.glob("in*.eml"))))
        assert spamd.clients_waiting() == waiting  # not one question


def test_poll_keeps_gtube_apart(tmp_path, spamd, dovecot):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml() + dovecot.account_toml())
    dovecot.append(gtube())
    dovecot.append(human())
    done = subprocess.run([sys.executable, "-m", "mailthreads", "-c", str(tool.config), "-d",
                           str(tool.database), "poll"], env=dovecot.env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert tool.filed() == KEPT_APART


def test_scanner_down_mid_run_loses_nothing_and_rescan_finishes_the_job(
        tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    tool.ingest(human(1))
    spamd.stop()
    try:
        out = tool.ingest(gtube(1), human(2))
        assert "2 stored" in out  # filed, not lost, not held back
        assert tool.rows("SELECT message_id, spam_verdict FROM messages ORDER BY id") == [
            ("r1@example.com", "ham"), ("spam1@junk.example", "unscanned"),
            ("r2@example.com", "unscanned")]
        explained = json.loads(tool.ok("explain", "-", "--json", stdin=human(3)))
        assert "Connection refused" in explained["verdict"]
        still_down = tool.run("rescan")
        assert still_down.returncode == 75
        assert b"Run mailthreads rescan again later" in still_down.stderr
    finally:
        spamd.start()
    assert "2 scanned: 1 ham, 1 spam" in tool.ok("rescan")
    assert tool.filed() == {
        "messages": [("r1@example.com", "ham"), ("r2@example.com", "ham")],
        # The spammer's address stays known (it was filed once); its thread is gone.
        "correspondents": [("reader1@example.com",), ("reader2@example.com",),
                           ("spam1@junk.example",)],
        "threads": 2,
        "needs_reply": 2,
        "spam": [("spam1@junk.example",)],
    }
    assert "0 scanned" in tool.ok("rescan")


def test_serve_scans_again_what_it_filed_while_spamd_was_down(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml(rescan_seconds=1))
    tool.ingest(human(1))  # filed before: a ham verdict
    spamd.stop()
    try:
        with Serve(tool.database, tool.config) as server:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
                assert client.sendmail("spam1@junk.example", [REPLY_TO], gtube()) == {}
                assert client.sendmail("reader2@example.com", [REPLY_TO], human(2)) == {}
            wait_filed(tool.database, 3)
            assert tool.rows("SELECT message_id, spam_verdict FROM messages ORDER BY id") == [
                ("r1@example.com", "ham"), ("spam1@junk.example", "unscanned"),
                ("r2@example.com", "unscanned")]
            spamd.start()
            # No 'mailthreads rescan': serve scans them once spamd answers again.
            wait_for(lambda: tool.rows("SELECT COUNT(*) FROM spam")[0][0] == 1,
                     "serve to find the spam it filed while spamd was down", 60)
            wait_for(lambda: tool.rows("SELECT COUNT(*) FROM messages WHERE "
                                       "spam_verdict = 'unscanned'")[0][0] == 0,
                     "serve to scan the other one", 60)
            assert "rescanned" in server.log()
    finally:
        if spamd.process is None:
            spamd.start()
    assert tool.filed()["messages"] == [("r1@example.com", "ham"), ("r2@example.com", "ham")]
    assert tool.filed()["spam"] == [("spam1@junk.example",)]


def test_mail_filed_with_no_scanner_is_not_scanned_behind_your_back(tmp_path, spamd):  # noqa: F811
    """Turning scanning on later does not move old mail: only 'mailthreads rescan' does."""
    Tool(tmp_path, "").ingest(gtube())
    tool = Tool(tmp_path, spamd.toml(rescan_seconds=1))
    with Serve(tool.database, tool.config) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            assert client.sendmail("reader1@example.com", [REPLY_TO], human(1)) == {}
        wait_filed(tool.database, 2)
        wait_for(lambda: "filed" in server.log(), "the filing to be logged")
        time.sleep(2)  # two rescan periods: nothing to scan
    assert tool.rows("SELECT message_id, spam_verdict FROM messages ORDER BY id") == [
        ("spam1@junk.example", "unscanned"), ("r1@example.com", "ham")]
    assert "1 scanned: 0 ham, 1 spam" in tool.ok("rescan")


def test_release_files_spam_as_a_reply_and_delete_leaves_a_tombstone(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    tool.ingest(gtube(1), gtube(2))
    first, second = (entry["id"] for entry in json.loads(tool.ok("spam", "list", "--json")))
    assert tool.ok("spam", "release", str(first)).startswith(f"{first}: stored in thread ")
    assert tool.rows("SELECT message_id, spam_verdict, kind FROM messages") == [
        ("spam1@junk.example", "released", "reply")]
    assert tool.rows("SELECT state FROM threads") == [("needs_reply",)]
    tool.ok("spam", "delete", str(second))
    assert tool.rows("SELECT message_id FROM spam") == []
    assert tool.rows("SELECT reason FROM tombstones") == [("spam delete",)]
    assert "1 deleted by you before" in tool.ingest(gtube(2))
    assert "no spam entry 99" in tool.run("spam", "show", "99").stderr.decode()


def test_machine_mail_about_a_discussion_stays_in_it_whatever_its_score(
        tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    answer = author_answer()
    out_of_office = message(sender="Reader 1 <reader1@example.com>", to="me@blog.example",
                            message_id="<ooo@example.com>", in_reply_to="<a1@blog.example>",
                            subject="Out of office", body=f"Away until Monday.\n{GTUBE}\n",
                            headers={"Auto-Submitted": "auto-replied"})
    tool.ingest(human(1), answer, out_of_office)
    assert tool.rows("SELECT message_id, kind, spam_verdict FROM messages ORDER BY id") == [
        ("r1@example.com", "reply", "ham"), ("a1@blog.example", "reply", None),
        ("ooo@example.com", "auto_reply", "spam")]
    assert tool.filed()["spam"] == []


def test_a_correspondent_you_answered_is_never_sent_to_spam_by_a_score_alone(
        tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml())
    answer = author_answer()
    # A stranger's GTUBE goes to spam; the same score from a reader you answered is filed,
    # with the score among the reasons (precedence: block, DMARC, trusted, score).
    tool.ingest(human(1), answer)
    again = message(sender="Reader 1 <reader1@example.com>", message_id="<r2@example.com>",
                    body=f"Again.\n{GTUBE}\n")
    tool.ingest(gtube(1), again)
    assert tool.filed()["spam"] == [("spam1@junk.example",)]
    assert tool.rows("SELECT message_id, spam_verdict FROM messages ORDER BY id")[-1] == (
        "r2@example.com", "spam")
    assert tool.filed()["threads"] == 1  # in the reader's discussion


TRUSTED = (
    f"Authentication-Results: {MX}; spf=fail smtp.mailfrom=bank.example;\r\n"
    " dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=bank.example\r\n"
    "Received: from relay.bank.example (relay.bank.example [192.0.2.1])\r\n"
    f"\tby {MX} (Postfix) with ESMTPS id 4Zb; Sun, 1 Nov 2026 09:00:01 +0000\r\n"
    "Received: from pc by relay.bank.example; Sun, 1 Nov 2026 09:00:00 +0000\r\n"
).encode()
FORGED_BY_SENDER = {"X-Spam-Flag": "NO", "X-Spam-Status": "No, score=-10.0 required=5.0",
                    "Authentication-Results": f"{MX}; dmarc=pass header.from=bank.example"}


def test_a_senders_own_verdict_headers_are_ignored(tmp_path, spamd):  # noqa: F811
    tool = Tool(tmp_path, spamd.toml(authserv_ids=[MX]))
    forged_ham = gtube(1, headers=FORGED_BY_SENDER)
    tool.ingest(TRUSTED.replace(b"dmarc=fail", b"dmarc=pass") + forged_ham)
    assert tool.filed()["spam"] == [("spam1@junk.example",)]
    # A DMARC failure reported by our MX counts although the sender wrote "dmarc=pass".
    out = tool.ingest(TRUSTED + human(1, headers=FORGED_BY_SENDER))
    assert "1 quarantined" in out
    reason = tool.rows("SELECT reason FROM quarantine")[0][0]
    assert reason.startswith("forged: DMARC failed (dmarc=fail spf=fail (p=reject) for "
                             f"bank.example, by {MX})")


def test_dmarc_failure_as_spam_and_upstream_verdicts_without_spamd(tmp_path):
    tool = Tool(tmp_path, f'[spam]\nauthserv_ids = ["{MX}"]\ndmarc_failure = "spam"\n')
    tool.ingest(TRUSTED + human(1), b"X-Spam-Flag: YES\r\n" + TRUSTED.replace(
        b"dmarc=fail", b"dmarc=pass") + human(2))
    assert tool.filed()["spam"] == [("r1@example.com",), ("r2@example.com",)]
    sources = [e["verdict_source"] for e in json.loads(tool.ok("spam", "list", "--json"))]
    assert sources == ["none", f"upstream X-Spam-Flag (by {MX})"]
    # The same X-Spam-Flag written below a foreign Received line is the sender's: ignored.
    tool.ingest(TRUSTED.replace(b"dmarc=fail", b"dmarc=pass") + human(
        3, headers={"X-Spam-Flag": "YES"}))
    assert tool.rows("SELECT message_id, spam_verdict FROM messages") == [
        ("r3@example.com", "unscanned")]
