"""The listener's limits, each against a real `mailthreads serve` configured for it."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys

import pytest
from smtp_support import REPO, Dialogue, Serve, message, query, wait_for


def deliveries(server: Serve) -> int:
    return query(server.database, "SELECT COUNT(*) FROM deliveries")[0][0]


def test_oversize_by_size_is_refused_at_mail(serve):
    server = serve(listener={"max_message_size": 10_000})
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.example")
        assert client.esmtp_features["size"] == "10000"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            # smtplib declares the size (MAIL FROM:<...> SIZE=n) since the server offers SIZE.
            client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                            message(body="x" * 20_000))
        assert refused.value.smtp_code == 552
    assert deliveries(server) == 0


def test_oversize_by_data_gets_552_and_the_session_goes_on(serve):
    server = serve(listener={"max_message_size": 10_000})
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(message(body="x" * 50 + "\n" + ("y" * 70 + "\n") * 300) + b".\r\n")
        code, text = dialogue.reply()
        assert (code, text[:5]) == (552, "5.3.4")
        # The whole message was read: the next transaction works.
        assert dialogue.command("MAIL FROM:<jane@example.com>")[0] == 250
        assert dialogue.command("RCPT TO:<reply+why-i-blog@blog.example>")[0] == 250
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(message(message_id="small@example.com") + b".\r\n")
        assert dialogue.reply()[0] == 250
    wait_for(lambda: query(server.database, "SELECT message_id FROM deliveries WHERE "
                           "status != 'pending'") == [("small@example.com",)],
             "the small message, and only it, to be filed")


def test_too_many_recipients_get_452(serve):
    server = serve(listener={"max_recipients": 3})
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail("jane@example.com")
        codes = [client.rcpt(f"reply+post-{n}@blog.example") for n in range(5)]
        assert [code for code, _ in codes] == [250, 250, 250, 452, 452]
        assert codes[3][1].startswith(b"4.5.3")
        assert client.data(message())[0] == 250
    wait_for(lambda: query(server.database, "SELECT envelope_to FROM deliveries"),
             "the delivery")
    [(envelope_to,)] = query(server.database, "SELECT envelope_to FROM deliveries")
    assert envelope_to == '["reply+post-0@blog.example", "reply+post-1@blog.example", ' \
                          '"reply+post-2@blog.example"]'


def test_connections_past_the_cap_get_421(serve):
    server = serve(listener={"max_connections": 2})
    first, second = Dialogue(server.port), Dialogue(server.port)
    try:
        assert first.reply()[0] == 220
        assert second.reply()[0] == 220
        with Dialogue(server.port) as third:
            code, text = third.reply()
            assert (code, text[:5]) == (421, "4.7.0")
            assert third.closed()
        first.command("QUIT")
        first.close()

        def a_place_again() -> bool:
            with Dialogue(server.port) as again:
                return again.reply()[0] == 220

        wait_for(a_place_again, "a free place after one session ended")
    finally:
        first.close()
        second.close()


def test_an_idle_session_times_out_with_421(serve):
    server = serve(listener={"command_timeout": 0.5})
    with Dialogue(server.port) as dialogue:
        assert dialogue.reply()[0] == 220
        assert dialogue.command("EHLO client.example")[0] == 250
        code, text = dialogue.reply()  # nothing sent: the server speaks first, then hangs up
        assert (code, text[:5]) == (421, "4.4.2")
        assert dialogue.closed()


def test_a_stalled_data_transfer_times_out_and_nothing_is_stored(serve):
    server = serve(listener={"data_timeout": 0.5, "command_timeout": 60})
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(message()[:100])
        code, text = dialogue.reply()
        assert (code, text[:5]) == (421, "4.4.2")
        assert dialogue.closed()
    assert deliveries(server) == 0


def test_too_many_errors_end_the_session(serve):
    server = serve(listener={"max_bad_commands": 3})
    with Dialogue(server.port) as dialogue:
        assert dialogue.reply()[0] == 220
        assert dialogue.command("EHLO client.example")[0] == 250
        assert dialogue.command("MAIL FROM:<spammer@example.com>")[0] == 250
        assert dialogue.command("RCPT TO:<alice@blog.example>")[0] == 550
        assert dialogue.command("RCPT TO:<bob@blog.example>")[0] == 550
        assert dialogue.command("RCPT TO:<carol@blog.example>")[0] == 550
        code, text = dialogue.reply()
        assert (code, text[:5]) == (421, "4.7.0")
        assert dialogue.closed()


def test_unknown_posts_are_refused_when_only_known_posts_are_wanted(serve, tmp_path):
    server = serve(listener={"known_posts_only": True})
    subprocess.run([sys.executable, "-m", "mailthreads", "-d", str(server.database),
                    "-c", str(server.config), "posts", "add", "known-post"],
                   check=True, cwd=REPO, capture_output=True)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail("jane@example.com")
        code, text = client.rcpt("reply+unknown-post@blog.example")
        assert (code, text[:5]) == (550, b"5.1.1")
        assert client.rcpt("reply+known-post@blog.example")[0] == 250


def deep_mime(depth: int) -> bytes:
    head = ("From: Jane <jane@example.com>\r\nTo: reply+why-i-blog@blog.example\r\n"
            "Subject: nested\r\nMessage-ID: <deep@example.com>\r\nMIME-Version: 1.0\r\n")
    body = "Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        body = (f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n'
                f"--b{level}\r\n{body}--b{level}--\r\n")
    return (head + body).encode()


@pytest.mark.parametrize(("raw", "reason"), [
    (message(message_id="big-header@example.com",
             headers={"X-Padding": " ".join(["padding"] * 800)}), "header"),
    (deep_mime(8), "nested"),
])
def test_header_size_and_mime_nesting_are_quarantined_not_crashed(serve, raw, reason):
    server = serve(limits={"max_header_size": 4096, "max_mime_depth": 4})
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        assert client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"], raw) == {}
    wait_for(lambda: query(server.database, "SELECT status FROM deliveries") == [("quarantined",)],
             "the message to be quarantined")
    [(text,)] = query(server.database, "SELECT reason FROM quarantine")
    assert reason in text
    # The server is still there for the next message.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        assert sock.recv(100).startswith(b"220")
