"""`mailthreads serve` over real loopback sockets, with smtplib, Debian's swaks and raw dialogues.

One server (and database) serves this module; every test uses its own Message-IDs and looks
only at its own rows. Limits that need their own config are in test_smtp_limits.py.
"""

from __future__ import annotations

import json
import shutil
import smtplib
import subprocess

import pytest
from smtp_support import Dialogue, Serve, message, query, wait_for, write_config

from mailthreads.tokens import make_token

SECRET = "a-test-secret-of-some-length"
SWAKS = shutil.which("swaks")

DSN = b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r
To: reply+why-i-blog@blog.example\r
Subject: Undelivered Mail Returned to Sender\r
Date: Sun, 01 Nov 2026 09:00:00 +0000\r
Message-ID: <bounce-{n}@mx.example.net>\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r
\r
--B\r
Content-Type: text/plain\r
\r
Your message could not be delivered.\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
\r
Final-Recipient: rfc822; nobody@example.net\r
Action: failed\r
Status: 5.1.1\r
--B--\r
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("smtp")
    with Serve(directory / "mail.db", write_config(directory, secret=SECRET)) as serve:
        yield serve


def delivery(server: Serve, message_id: str, timeout: float = 30.0) -> dict:
    """The filed delivery of the message with ``message_id`` (waits for the filer)."""
    def filed():
        rows = query(server.database,
                     "SELECT d.id, d.status, d.envelope_from, d.envelope_to, d.origin, "
                     "m.thread_id, m.kind, m.post_id FROM deliveries d LEFT JOIN messages m "
                     "ON m.raw_sha256 = d.raw_sha256 WHERE d.message_id = ?", (message_id,))
        return rows[0] if rows else None

    row = wait_for(filed, f"<{message_id}> to be filed", timeout)
    keys = ("id", "status", "envelope_from", "envelope_to", "origin", "thread", "kind", "post_id")
    result = dict(zip(keys, row, strict=True))
    result["envelope_to"] = json.loads(result["envelope_to"])
    return result


def count(server: Serve, sql: str, params: tuple = ()) -> int:
    return query(server.database, sql, params)[0][0]


def send(server: Serve, raw: bytes, *, sender: str = "jane@example.com",
         to: tuple[str, ...] = ("reply+why-i-blog@blog.example",)) -> None:
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        refused = client.sendmail(sender, list(to), raw)
    assert refused == {}


# -- the happy path ---------------------------------------------------------------------------


def test_a_reply_is_stored_durably_and_filed_in_its_thread(server):
    raw = message(message_id="happy@example.com")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        code, reply = client.ehlo("client.example")
        assert code == 250
        code, reply = client.mail("jane@example.com")
        assert code == 250
        code, reply = client.rcpt("Reply+Why-I-Blog@Blog.Example")  # mail systems change case
        assert code == 250 and b"2.1.5" in reply
        code, reply = client.data(raw)
        assert code == 250 and reply.startswith(b"2.0.0")
    row = delivery(server, "happy@example.com")
    assert row["status"] == "stored"
    assert row["envelope_from"] == "jane@example.com"
    assert row["envelope_to"] == ["Reply+Why-I-Blog@Blog.Example"]
    assert row["origin"].startswith("127.0.0.1:") and "helo=client.example" in row["origin"]
    assert row["kind"] == "reply"
    [(slug,)] = query(server.database, "SELECT slug FROM posts WHERE id = ?", (row["post_id"],))
    assert slug == "why-i-blog"
    # The bytes are stored as they came, so the sha256 of the sent message names them.
    [(stored,)] = query(server.database, "SELECT raw FROM raw_messages r JOIN deliveries d "
                        "ON d.raw_sha256 = r.sha256 WHERE d.id = ?", (row["id"],))
    assert stored == raw


def test_the_log_has_a_line_per_message_with_peer_envelope_result_and_thread(server):
    send(server, message(message_id="logged@example.com"), sender="log@example.com")
    row = delivery(server, "logged@example.com")
    log = server.log()
    accepted = [line for line in log.splitlines()
                if " accepted " in line and f"delivery={row['id']}" in line]
    assert len(accepted) == 1
    assert "peer=127.0.0.1:" in accepted[0]
    assert "mail_from=<log@example.com>" in accepted[0]
    assert "to=<reply+why-i-blog@blog.example>" in accepted[0]
    filed = [line for line in log.splitlines()
             if " filed " in line and f"delivery={row['id']} " in line]
    assert len(filed) == 1
    # The filed line alone tells the whole story: peer, envelope, result, thread.
    assert 'origin="127.0.0.1:' in filed[0] and "mail_from=<log@example.com>" in filed[0]
    assert "to=<reply+why-i-blog@blog.example>" in filed[0]
    assert "status=stored" in filed[0] and f"thread={row['thread']}" in filed[0]
    assert "Traceback" not in log


@pytest.mark.skipif(SWAKS is None, reason="swaks is not installed: apt-get install swaks")
def test_swaks_delivers_a_reply(server, tmp_path):
    path = tmp_path / "reply.eml"
    path.write_bytes(message(message_id="swaks@example.com", sender="Sam <sam@example.org>"))
    result = subprocess.run(
        [SWAKS, "--server", f"127.0.0.1:{server.port}", "--from", "sam@example.org",
         "--to", "reply+why-i-blog@blog.example", "--data", str(path), "--helo", "swaks.test"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  250 2.0.0" in result.stdout
    assert delivery(server, "swaks@example.com")["status"] == "stored"


def test_catch_all_address_is_accepted(server):
    send(server, message(message_id="catchall@example.com", to="why-i-blog@replies.blog.example"),
         to=("why-i-blog@replies.blog.example",))
    assert delivery(server, "catchall@example.com")["status"] == "stored"


# -- recipients -------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "reply"), [
    ("someone@blog.example", "5.1.1"),
    ("reply@blog.example", "5.1.1"),
    ("reply+Not_A_Slug!@blog.example", "5.1.1"),
    ("friend@elsewhere.example", "5.7.1"),
    ("reply+why-i-blog@blog.example.evil.example", "5.7.1"),
])
def test_only_reply_addresses_are_accepted_and_nothing_is_relayed(server, address, reply):
    before = count(server, "SELECT COUNT(*) FROM deliveries")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail("jane@example.com")
        code, text = client.rcpt(address)
        assert code == 550
        assert text.startswith(reply.encode())
        # With no accepted recipient there is no transaction to send data into.
        code, _ = client.docmd("DATA")
        assert code == 503
    assert count(server, "SELECT COUNT(*) FROM deliveries") == before


def test_postmaster_is_accepted_and_quarantined_for_the_author(server):
    send(server, message(message_id="pm@example.com", to="postmaster@blog.example"),
         to=("postmaster@blog.example",))
    row = delivery(server, "pm@example.com")
    assert row["status"] == "quarantined"


def test_a_message_for_several_reply_addresses_is_stored_once(server):
    raw = message(message_id="two@example.com")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        refused = client.sendmail("jane@example.com",
                                  ["reply+why-i-blog@blog.example", "foo@elsewhere.example",
                                   "REPLY+why-i-blog@blog.example", "reply+other@blog.example"],
                                  raw)
    assert set(refused) == {"foo@elsewhere.example"}
    row = delivery(server, "two@example.com")
    assert row["envelope_to"] == ["reply+why-i-blog@blog.example", "reply+other@blog.example"]
    assert count(server, "SELECT COUNT(*) FROM deliveries WHERE message_id = ?",
                 ("two@example.com",)) == 1


def test_signed_addresses_are_checked_at_rcpt(server):
    send(server, message(message_id="first@example.com", sender="Tom <tom@example.com>"),
         sender="tom@example.com")
    first = delivery(server, "first@example.com")
    [(correspondent,)] = query(server.database, "SELECT correspondent_id FROM threads "
                               "WHERE id = ?", (first["thread"],))
    token = make_token(SECRET, "why-i-blog", correspondent)
    good = f"reply+why-i-blog.{token}@blog.example"
    forged = f"reply+why-i-blog.{'a' * len(token)}@blog.example"
    wrong_post = f"reply+another-post.{token}@blog.example"
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail("tom@example.com")
        assert client.rcpt(forged)[0] == 550
        code, text = client.rcpt(wrong_post)
        assert code == 550 and text.startswith(b"5.7.1")
        assert client.rcpt(good)[0] == 250
        assert client.data(message(message_id="second@example.com", to=good,
                                   sender="Tom <tom@other.example>"))[0] == 250
    second = delivery(server, "second@example.com")
    # From a new address, the signed address starts a thread of its own, marked "same person
    # as Tom?": nothing merges until the author confirms.
    assert second["thread"] != first["thread"]
    assert query(server.database, "SELECT possibly_same_as FROM threads WHERE id = ?",
                 (second["thread"],)) == [(correspondent,)]


# -- machine mail -----------------------------------------------------------------------------


def test_bounces_with_the_null_sender_are_accepted_and_stored_as_bounces(server):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("mx.example.net")
        code, _ = client.docmd("MAIL FROM:<>")
        assert code == 250
        assert client.rcpt("reply+why-i-blog@blog.example")[0] == 250
        assert client.data(DSN.replace(b"{n}", b"1"))[0] == 250
    row = delivery(server, "bounce-1@mx.example.net")
    assert row["envelope_from"] == ""
    assert (row["status"], row["kind"]) == ("stored", "bounce")


def test_auto_replies_are_accepted_and_stored_as_auto_replies(server):
    send(server, message(message_id="ooo@example.com", subject="Out of office",
                         body="I am away until Monday.\n",
                         headers={"Auto-Submitted": "auto-replied"}))
    row = delivery(server, "ooo@example.com")
    assert (row["status"], row["kind"]) == ("stored", "auto_reply")


# -- durability and the protocol's edges ------------------------------------------------------


def test_a_resent_message_after_a_lost_250_is_stored_once(server):
    raw = message(message_id="resent@example.com")
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(raw + b".\r\n")
        # The client never reads the 250: as if the connection broke right after the commit.
        wait_for(lambda: count(server, "SELECT COUNT(*) FROM deliveries d JOIN raw_messages r "
                                       "ON r.sha256 = d.raw_sha256 WHERE r.raw = ?", (raw,)),
                 "the message to be committed")
    send(server, raw)  # the client tries again, as it must
    wait_for(lambda: count(server, "SELECT COUNT(*) FROM deliveries WHERE message_id = ? AND "
                                   "status != 'pending'", ("resent@example.com",)) == 2,
             "both deliveries to be filed")
    statuses = sorted(row[0] for row in query(
        server.database, "SELECT status FROM deliveries WHERE message_id = ?",
        ("resent@example.com",)))
    assert statuses == ["duplicate", "stored"]
    assert count(server, "SELECT COUNT(*) FROM messages WHERE message_id = ?",
                 ("resent@example.com",)) == 1


@pytest.mark.parametrize("smuggled", [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\n.\r\r\n"])
def test_smtp_smuggling_yields_exactly_one_message(server, smuggled):
    marker = f"smuggle-{smuggled.hex()}"
    evil = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<reply+why-i-blog@blog.example>\r\n"
            b"DATA\r\nFrom: <evil@attacker.example>\r\nMessage-ID: <evil-" + marker.encode()
            + b"@attacker.example>\r\n\r\nsmuggled\r\n")
    raw = message(message_id=f"{marker}@example.com").rstrip(b"\r\n") + smuggled + evil
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(raw + b"\r\n.\r\n")
        code, _ = dialogue.reply()
        assert code == 250
        # Exactly one reply for the whole DATA: none of the smuggled commands was run.
        assert dialogue.command("QUIT")[0] == 221
    row = delivery(server, f"{marker}@example.com")
    assert row["status"] == "stored"
    assert count(server, "SELECT COUNT(*) FROM deliveries WHERE message_id LIKE ?",
                 (f"evil-{marker}%",)) == 0
    [(stored,)] = query(server.database, "SELECT raw FROM raw_messages r JOIN deliveries d ON "
                        "d.raw_sha256 = r.sha256 WHERE d.id = ?", (row["id"],))
    # The smuggled text is data, kept as it came (a line that starts with a dot loses that
    # dot, as RFC 5321 4.5.2 says: an honest client would have doubled it).
    assert stored == raw.replace(b"\r\n.", b"\r\n") + b"\r\n"


def test_dot_stuffing_is_undone_and_an_empty_message_is_a_message(server):
    body = ".starts with a dot\r\n..two dots\r\n.\r\nnot the end, a stuffed lone dot\r\n"
    raw = message(message_id="dots@example.com", body=body)
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(stuffed + b".\r\n")
        code, text = dialogue.reply()
        assert code == 250
        delivery_id = int(text.rsplit(" ", 1)[1])
        # An empty message: "." as the first line.
        dialogue.command("MAIL FROM:<jane@example.com>")
        dialogue.command("RCPT TO:<reply+why-i-blog@blog.example>")
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(b".\r\n")
        code, text = dialogue.reply()
        assert code == 250
        empty_id = int(text.rsplit(" ", 1)[1])
    rows = dict(query(server.database, "SELECT d.id, r.raw FROM deliveries d JOIN raw_messages r "
                      "ON r.sha256 = d.raw_sha256 WHERE d.id IN (?, ?)", (delivery_id, empty_id)))
    assert rows == {delivery_id: raw, empty_id: b""}


def test_ehlo_offers_size_and_8bitmime_but_no_auth(server):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        code, _ = client.ehlo("client.example")
        assert code == 250
        assert client.has_extn("size") and client.has_extn("8bitmime")
        assert not client.has_extn("auth")
        assert not client.has_extn("starttls")  # no certificate configured


def test_unknown_commands_end_the_session(server):
    with Dialogue(server.port) as dialogue:
        assert dialogue.reply()[0] == 220
        codes = [dialogue.command(f"XYZZY{n}")[0] for n in range(5)]
        assert codes[:4] == [500] * 4
        assert codes[4] in (421, 502)
        assert dialogue.closed()
