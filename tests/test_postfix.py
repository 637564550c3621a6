"""A private Postfix hands the reply domain to `mailthreads serve`, as in a real deployment.

Postfix (Debian's, as root: its master drops to the postfix user) runs as its own instance
(`postfix -c DIR`, tests/smtp_support.py) on a free loopback port, configured with the lines
of config/postfix/ (main.cf, master.cf, transport, mailthreads_verify) pointed at the test
listener: it relays replies.blog.example to `mailthreads serve` and verifies recipients there
first. Nothing touches a system Postfix.
"""

from __future__ import annotations

import os
import shutil
import smtplib

import pytest
from smtp_support import PostfixInstance, Serve, message, query, wait_for, write_config

pytestmark = pytest.mark.slow

if os.geteuid() != 0:
    pytest.skip("a private Postfix instance needs root", allow_module_level=True)


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    if not shutil.which("postfix"):
        pytest.fail("postfix is not installed: apt-get install postfix")
    directory = tmp_path_factory.mktemp("postfix")
    with Serve(directory / "mail.db", write_config(directory)) as serve, \
            PostfixInstance(relay_to=serve.port) as postfix:
        yield serve, postfix


def test_a_reply_submitted_to_postfix_ends_in_its_thread(relay):
    serve, postfix = relay
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
        refused = client.sendmail(
            "jane@example.com", ["why-i-blog@replies.blog.example"],
            message(message_id="via-postfix@example.com", sender="Jane <jane@example.com>"))
    assert refused == {}

    def filed():
        return query(serve.database,
                     "SELECT m.thread_id, t.post_id, d.envelope_from, d.envelope_to, r.raw "
                     "FROM messages m JOIN threads t ON t.id = m.thread_id "
                     "JOIN deliveries d ON d.raw_sha256 = m.raw_sha256 "
                     "JOIN raw_messages r ON r.sha256 = m.raw_sha256 "
                     "WHERE m.message_id = ?", ("via-postfix@example.com",))

    [(thread, post, envelope_from, envelope_to, raw)] = wait_for(
        filed, "Postfix to hand the message over", 90)
    assert thread is not None
    assert query(serve.database, "SELECT slug FROM posts WHERE id = ?", (post,)) == \
        [("why-i-blog",)]
    assert envelope_from == "jane@example.com"
    assert envelope_to == '["why-i-blog@replies.blog.example"]'
    assert raw.startswith(b"Received: from ")  # Postfix's trace, kept with the message
    wait_for(lambda: "status=sent" in postfix.log(), "Postfix to log the delivery")
    assert "250 2.0.0 OK: stored as delivery" in postfix.log()


def test_postfix_refuses_what_mailthreads_refuses_without_accepting_it_first(relay):
    serve, postfix = relay
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=60) as client:
        client.ehlo("client.example")
        client.mail("jane@example.com")
        # Postfix probes mailthreads (reject_unverified_recipient) and answers for it.
        code, text = client.rcpt("Not_A_Post@replies.blog.example")
        assert code == 550
        assert b"550 5.1.1" in text  # mailthreads' own answer, quoted
        assert client.rcpt("why-i-blog@replies.blog.example")[0] == 250
    # Probes end before DATA: nothing of them is stored.
    assert "not_a_post" not in "".join(
        row[0] for row in query(serve.database, "SELECT envelope_to FROM deliveries"))
