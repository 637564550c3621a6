"""The copy in Sent, against a real Dovecot (tests/dovecot.py) and a real relay (aiosmtpd).

An answer sent with ``mailthreads reply`` is appended to the IMAP Sent folder, so the author's
mail client shows it; the next ``mailthreads poll`` meets that copy in Sent and recognises it
as the answer already filed, so nothing is filed twice.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from dovecot import Mailbox, dovecot, dovecot_server  # noqa: F401  (pytest fixtures)
from mailfactory import message
from relay_support import PASSWORD, running_relay

from mailthreads.cli import cli

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

BASE = """\
[addresses]
domain = "blog.example"
secret = "dovecot-test-secret-0123456789"

[author]
name = "Blog Author"
addresses = ["me@blog.example"]

[posts]
create_on_first_reply = true  # replies create their post (the default holds them)
"""


class Setup:
    def __init__(self, root: Path, mailbox: Mailbox, relay, monkeypatch):
        self.root, self.mailbox, self.relay = root, mailbox, relay
        self.config = root / "config.toml"
        self.database = root / "mail.db"
        monkeypatch.setenv("RELAY_TEST_PASSWORD", PASSWORD)
        monkeypatch.setenv("SSL_CERT_FILE", str(relay.cafile))
        monkeypatch.setenv(mailbox.password_env, mailbox.password)
        monkeypatch.setenv("MAILTHREADS_CONFIG", str(self.config))
        monkeypatch.setenv("MAILTHREADS_DB", str(self.database))
        monkeypatch.delenv("MAILTHREADS_SECRET", raising=False)
        self.configure()

    def configure(self, outgoing: dict | None = None, **account: object) -> None:
        self.config.write_text(BASE + "\n" + self.relay.outgoing_toml(**(outgoing or {}))
                               + "\n" + self.mailbox.account_toml(**account), encoding="utf-8")

    def poll(self) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mailthreads", "poll", "-q"], capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL, env=self.mailbox.env | {
                "MAILTHREADS_CONFIG": str(self.config), "MAILTHREADS_DB": str(self.database)})
        assert done.returncode == 0, done.stderr
        return done.stdout

    def run(self, *args: str, code: int = 0):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    def rows(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.database)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


@pytest.fixture
def setup(tmp_path, dovecot, monkeypatch):  # noqa: F811
    with running_relay(tmp_path, security="starttls") as relay:
        yield Setup(tmp_path, dovecot, relay, monkeypatch)


def ada() -> bytes:
    return message(sender="Ada Lovelace <ada@example.net>", to="reply+why-i-blog@blog.example",
                   message_id="<ada1@example.net>", subject="Why I blog",
                   body="Why do you blog?\n")


def test_the_sent_copy_lands_in_sent_and_the_next_poll_files_nothing_twice(setup):
    setup.mailbox.append(ada())
    setup.poll()
    [(thread,)] = setup.rows("SELECT id FROM threads")

    out = setup.run("reply", str(thread), "-m", "Because I like to think in public.").stdout
    assert "Reply 1 sent" in out and "copy saved to test/Sent" in out
    [relayed] = setup.relay.received
    [(uid, copy)] = setup.mailbox.fetch_all("Sent").items()
    assert copy.replace(b"\r\n", b"\n") == relayed.content.replace(b"\r\n", b"\n")
    assert "\\Seen" in setup.mailbox.flags("Sent")[uid]  # the author wrote it: already read
    assert message_from_bytes(copy, policy=policy.default)["In-Reply-To"] == \
        "<ada1@example.net>"
    assert setup.rows("SELECT status, saved_to_sent FROM outbox") == [("sent", 1)]

    before = setup.rows("SELECT message_id, direction, source FROM messages ORDER BY id")
    assert [(d, s) for _, d, s in before] == [("in", "imap"), ("out", "cli")]
    setup.poll()
    setup.poll()
    assert setup.rows("SELECT message_id, direction, source FROM messages ORDER BY id") == before
    # The poller did meet the copy, and knew it.
    # The poller did read the copy in Sent (its checkpoint is past it) and filed nothing.
    assert setup.rows("SELECT folder, last_uid FROM imap_checkpoints WHERE folder = 'Sent'") \
        == [("Sent", uid)]
    [listed] = json.loads(setup.run("threads", "--json").stdout)
    assert (listed["state"], listed["messages"]) == ("answered", 2)


def test_no_copy_when_the_relay_keeps_one_itself(setup):
    setup.configure(outgoing={"save_to_sent": False})
    setup.mailbox.append(ada())
    setup.poll()
    out = setup.run("reply", "1", "-m", "Gmail keeps its own copy.").stdout
    assert "copy saved" not in out
    assert setup.mailbox.fetch_all("Sent") == {}
    assert len(setup.relay.received) == 1
    # Not owed either: a later 'outbox send' never appends it.
    assert setup.rows("SELECT saved_to_sent FROM outbox") == [(None,)]
    assert "The outbox is empty" in setup.run("outbox", "send").stdout
    assert setup.mailbox.fetch_all("Sent") == {}


def test_a_copy_that_could_not_be_saved_is_saved_by_the_next_outbox_send(setup):
    setup.mailbox.append(ada())
    setup.poll()
    setup.configure(port=1)  # nothing listens there: IMAP is down while the answer goes out
    result = setup.run("reply", "1", "-m", "Sent, but Sent was away.")
    assert "Reply 1 sent" in result.stdout
    assert "copy to the Sent folder of test failed" in result.stdout
    assert setup.rows("SELECT status, saved_to_sent FROM outbox") == [("sent", 0)]
    assert setup.mailbox.fetch_all("Sent") == {}

    setup.configure()
    out = setup.run("outbox", "send").stdout
    assert "copy saved to test/Sent" in out
    assert len(setup.mailbox.fetch_all("Sent")) == 1
    assert len(setup.relay.received) == 1  # the answer itself went once
    assert setup.rows("SELECT saved_to_sent FROM outbox") == [(1,)]
    setup.run("outbox", "send")
    assert len(setup.mailbox.fetch_all("Sent")) == 1
