"""STARTTLS with a configured certificate, against a real `mailthreads serve`."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from smtp_support import Dialogue, Serve, make_certificate, message, query, wait_for, write_config


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    certificate, key = make_certificate(directory)
    config = write_config(directory, listener={"tls_certificate": str(certificate),
                                               "tls_key": str(key)})
    with Serve(directory / "mail.db", config) as serve:
        serve.certificate = certificate
        yield serve


def client_context(server: Serve) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.certificate))


def test_starttls_then_a_reply_is_stored(server):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
        client.ehlo("client.example")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, _ = client.starttls(context=client_context(server))
        assert code == 220
        client.ehlo("client.example")
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")  # inbound mail needs none, even over TLS
        assert client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                               message(message_id="tls@example.com")) == {}
    wait_for(lambda: query(server.database, "SELECT status FROM deliveries WHERE message_id = ?",
                           ("tls@example.com",)) == [("stored",)], "the message to be filed")


def test_commands_pipelined_after_starttls_are_dropped(server):
    with Dialogue(server.port) as dialogue:
        assert dialogue.reply()[0] == 220
        assert dialogue.command("EHLO client.example")[0] == 250
        # CVE-2011-0411 style: plaintext injected behind STARTTLS, in the same packet.
        dialogue.send(b"STARTTLS\r\nMAIL FROM:<injected@attacker.example>\r\n")
        assert dialogue.reply()[0] == 220
        assert dialogue.buffer == b""  # the injected command got no plaintext answer
        dialogue.sock = client_context(server).wrap_socket(dialogue.sock,
                                                           server_hostname="localhost")
        # Had the injected MAIL been run after the handshake, its 250 would come first and every
        # reply from here on would be one behind: RCPT would get EHLO's 250, not its own 503.
        assert dialogue.command("EHLO client.example")[0] == 250
        code, _ = dialogue.command("RCPT TO:<reply+why-i-blog@blog.example>")
        assert code == 503
        assert dialogue.command("MAIL FROM:<jane@example.com>")[0] == 250
        assert dialogue.command("RCPT TO:<reply+why-i-blog@blog.example>")[0] == 250
        assert dialogue.command("QUIT")[0] == 221
