"""The outbox against a real relay: aiosmtpd on 127.0.0.1 with STARTTLS or TLS, and AUTH.

What is promised: an answer is committed before the first attempt; a relay that is down, or
says no, costs a retry and never the answer; nothing is ever sent twice, not even after a
connection that broke while the relay had the whole message.
"""

from __future__ import annotations

import sqlite3
from email import message_from_bytes, policy

import pytest
from mailfactory import message
from relay_support import PASSWORD, USERNAME, Handler, running_relay

from mailthreads.config import Addresses, Author, Config, Outgoing, Posts
from mailthreads.db import open_database, store
from mailthreads.ingest import Pipeline
from mailthreads.mail import compose
from mailthreads.outgoing import outbox

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SECRET = "outbox-test-secret-0123456789"
PASSWORD_ENV = "RELAY_TEST_PASSWORD"


@pytest.fixture
def conn(tmp_path) -> sqlite3.Connection:
    db = open_database(tmp_path / "mail.db")
    yield db.conn
    db.conn.close()


@pytest.fixture
def config() -> Config:
    return Config(addresses=Addresses(domain="blog.example", secret=SECRET),
                  author=Author(name="Zoë Author", addresses=("me@blog.example",)),
                  posts=Posts(create_on_first_reply=True))  # the default holds them


@pytest.fixture(autouse=True)
def relay_password(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


def with_relay(config: Config, relay, **overrides) -> Config:
    values = dict(host=relay.host, port=relay.port, security=relay.security,
                  username=USERNAME if relay.auth else None,
                  password_env=PASSWORD_ENV if relay.auth else None, timeout=10.0)
    values.update(overrides)
    return config._replace(outgoing=Outgoing(**values))


def queued_answer(conn, config, body="Thank you, Ada.\n") -> tuple[int, int]:
    """Ada writes in; the author's answer is queued. Returns (thread id, outbox id)."""
    outcome = Pipeline(conn, config).accept(
        message(sender="Ada Lovelace <ada@example.net>", message_id="<ada1@example.net>",
                body="Why do you blog?\n"), "file")
    assert outcome.status == "stored"
    thread = store.get_thread(conn, outcome.thread)
    messages = store.reply_candidates(conn, outcome.thread)
    draft = outbox.draft_reply(config, thread, messages, messages[-1])
    raw = compose.compose(draft, body)
    entry = outbox.queue(conn, thread_id=outcome.thread, message_id=draft.message_id,
                         in_reply_to=draft.in_reply_to, to_address=draft.to_address,
                         subject=compose.reply_subject(draft.subject), body=body, raw=raw)
    return outcome.thread, entry


def entry(conn, entry_id):
    return store.outbox_entry(conn, entry_id)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_sends_over_tls_with_auth_and_files_the_answer(tmp_path, conn, config, security):
    thread_id, entry_id = queued_answer(conn, config)
    assert entry(conn, entry_id)["status"] == "pending"  # committed before any attempt
    with running_relay(tmp_path, security=security) as relay:
        result = outbox.deliver(conn, with_relay(config, relay), entry_id,
                                context=relay.client_context())
    assert result.ok, result.text
    assert len(relay.received) == 1
    got = relay.received[0]
    assert got.encrypted and got.login == USERNAME
    assert relay.handler.logins == [(USERNAME, PASSWORD)]
    assert got.mail_from == "me@blog.example" and got.rcpt_tos == ["ada@example.net"]
    assert got.content == entry(conn, entry_id)["raw"]  # byte for byte what was queued
    sent = message_from_bytes(got.content, policy=policy.default)
    assert sent["In-Reply-To"] == "<ada1@example.net>"

    row = entry(conn, entry_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)
    assert row["sent_at"]
    # No IMAP account: no copy owed, none retried later.
    assert row["saved_to_sent"] is None
    # The answer is in its thread, as the author's, and the thread is answered.
    messages = store.thread_messages(conn, thread_id)
    assert [(m.direction, m.source) for m in messages] == [("in", "file"), ("out", "cli")]
    assert messages[1].message_id == row["message_id"]
    assert store.get_thread(conn, thread_id).state == "answered"


def test_password_command_is_used_when_no_variable_is_set(tmp_path, conn, config,
                                                          monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    _, entry_id = queued_answer(conn, config)
    with running_relay(tmp_path, security="tls") as relay:
        configured = with_relay(config, relay, password_env=None,
                                password_command=f"printf '%s\\n' '{PASSWORD}'")
        assert outbox.deliver(conn, configured, entry_id, context=relay.client_context()).ok
    assert relay.handler.logins == [(USERNAME, PASSWORD)]


def test_relay_down_keeps_the_answer_and_a_retry_sends_it_exactly_once(tmp_path, conn,
                                                                       config):
    _, entry_id = queued_answer(conn, config)
    with running_relay(tmp_path) as relay:
        configured = with_relay(config, relay)
        relay.stop()
        result = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert result.status == "failed" and result.temporary  # worth retrying: exit 75
        assert "connection refused" in result.text
        row = entry(conn, entry_id)
        assert (row["status"], row["attempts"]) == ("failed", 1)
        assert "connection refused" in row["last_error"]
        assert row["raw"] and row["body"] == "Thank you, Ada.\n"  # nothing lost

        relay.start()
        results = outbox.deliver_all(conn, configured, context=relay.client_context())
        assert [r.status for r in results] == ["sent"]
        # Again, and once more for a named entry: nothing goes out twice.
        assert outbox.deliver_all(conn, configured, context=relay.client_context()) == []
        again = outbox.deliver_all(conn, configured, [entry_id], context=relay.client_context())
        assert [r.status for r in again] == ["skipped"] and "sent already" in again[0].text
        assert outbox.deliver(conn, configured, entry_id, force=True,
                              context=relay.client_context()).status == "skipped"
    assert len(relay.received) == 1
    assert (entry(conn, entry_id)["status"], entry(conn, entry_id)["attempts"]) == ("sent", 2)


def test_a_refusal_at_data_is_a_failure_that_can_be_retried(tmp_path, conn, config):
    _, entry_id = queued_answer(conn, config)
    answers = iter(["451 4.3.0 try again later", None])
    handler = Handler(on_data=lambda message: next(answers))
    with running_relay(tmp_path, handler=handler) as relay:
        configured = with_relay(config, relay)
        first = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert first.status == "failed" and "451 4.3.0 try again later" in first.text
        assert outbox.deliver(conn, configured, entry_id, context=relay.client_context()).ok
    assert len(relay.received) == 1


def test_a_connection_lost_mid_send_is_never_retried_without_force(tmp_path, conn, config):
    _, entry_id = queued_answer(conn, config)
    handler = Handler(hang_up_after_data=1)
    with running_relay(tmp_path, handler=handler) as relay:
        configured = with_relay(config, relay)
        result = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert result.status == "sending"
        assert "may or may not have been sent" in result.text
        assert f"outbox send --force {entry_id}" in result.text
        assert len(relay.received) == 1  # it did arrive: sending it again would duplicate it
        row = entry(conn, entry_id)
        assert row["status"] == "sending" and "lost" in row["last_error"]

        skipped = outbox.deliver_all(conn, configured, context=relay.client_context())
        assert [r.status for r in skipped] == ["skipped"]
        assert "may have been sent already" in skipped[0].text
        assert len(relay.received) == 1

        forced = outbox.deliver_all(conn, configured, [entry_id], force=True,
                                    context=relay.client_context())
        assert [r.status for r in forced] == ["sent"]
    assert len(relay.received) == 2  # exactly what the author asked for with --force


def test_an_untrusted_certificate_stops_before_the_password_is_sent(tmp_path, conn, config,
                                                                    monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    _, entry_id = queued_answer(conn, config)
    with running_relay(tmp_path) as relay:
        result = outbox.deliver(conn, with_relay(config, relay), entry_id)  # system CAs only
    assert result.status == "failed" and not result.temporary  # retrying cannot help
    assert "certificate of 127.0.0.1:" in result.text and "does not verify" in result.text
    assert "SSL_CERT_FILE" in result.text
    assert relay.handler.logins == [] and relay.received == []


def test_starttls_is_never_silently_skipped(tmp_path, conn, config):
    _, entry_id = queued_answer(conn, config)
    with running_relay(tmp_path, security="none", auth=False) as relay:
        configured = with_relay(config, relay, security="starttls")
        result = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert result.status == "failed" and "does not offer STARTTLS" in result.text
        assert not result.temporary
        assert relay.handler.mail_commands == 0  # not one envelope command in the clear
        # Configured as a plain local relay, it goes.
        assert outbox.deliver(conn, with_relay(config, relay), entry_id).ok
    assert len(relay.received) == 1 and not relay.received[0].encrypted


def test_tls_to_a_plain_relay_is_a_setting_to_fix_not_a_retry(tmp_path, conn, config):
    _, entry_id = queued_answer(conn, config)
    with running_relay(tmp_path, security="none", auth=False) as relay:
        configured = with_relay(config, relay, security="tls")
        result = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert result.status == "failed" and not result.temporary
        assert result.text == (f'reply {entry_id} not sent: 127.0.0.1:{relay.port} does not '
                               'speak TLS on connect: set [outgoing] security = "starttls"')
        assert relay.handler.mail_commands == 0 and relay.received == []


def test_a_permanent_refusal_is_not_retried_by_cron_but_a_4xx_is(tmp_path, conn, config):
    _, entry_id = queued_answer(conn, config)
    answers = iter(["554 5.7.1 rejected as spam", "451 4.3.0 busy"])
    handler = Handler(on_data=lambda message: next(answers))
    with running_relay(tmp_path, handler=handler) as relay:
        configured = with_relay(config, relay)
        first = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert first.status == "failed" and not first.temporary
        second = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert second.status == "failed" and second.temporary


def test_a_wrong_password_or_a_missing_one_is_a_clear_failure(tmp_path, conn, config,
                                                              monkeypatch):
    _, entry_id = queued_answer(conn, config)
    with running_relay(tmp_path) as relay:
        configured = with_relay(config, relay)
        monkeypatch.setenv(PASSWORD_ENV, "wrong")
        result = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert result.status == "failed" and "refused the login" in result.text
        assert not result.temporary  # 535: the password is wrong until someone changes it
        monkeypatch.delenv(PASSWORD_ENV)
        result = outbox.deliver(conn, configured, entry_id, context=relay.client_context())
        assert result.status == "failed" and not result.temporary
        assert f"environment variable {PASSWORD_ENV} is not set" in result.text
        assert result.text.count("\n") == 0
    assert relay.received == []
    assert entry(conn, entry_id)["attempts"] == 2


def test_only_one_of_two_senders_claims_an_entry(tmp_path, config):
    path = tmp_path / "mail.db"
    first, second = open_database(path).conn, open_database(path).conn
    _, entry_id = queued_answer(first, config)
    assert store.claim_outbox(first, entry_id)
    first.commit()
    assert not store.claim_outbox(second, entry_id)
    result = outbox.deliver(second, config, entry_id)
    assert result.status == "skipped" and "may have been sent already" in result.text
    first.close()
    second.close()


def test_without_an_outgoing_section_the_answer_waits_in_the_outbox(conn, config):
    _, entry_id = queued_answer(conn, config)
    result = outbox.deliver(conn, config, entry_id)
    assert result.status == "failed" and "[outgoing]" in result.text
    assert entry(conn, entry_id)["status"] == "failed"
