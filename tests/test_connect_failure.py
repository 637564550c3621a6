"""Which connection failures are worth retrying (exit 75) and which need a setting fixed (1).

The real-server cases (TLS on a plain port, a certificate that does not verify, a relay without
STARTTLS, a server that is down) are in test_outbox_relay.py, test_answer_cli.py and
test_imap.py. DNS cannot be made to fail on demand here, so its answers are built by hand.
"""

from __future__ import annotations

import dataclasses
import socket

from mailthreads.transport.connect_failure import Setting, classify

RELAY = Setting(where="smtp.example:587", security="starttls",
                security_key="[outgoing] security = {}", host_key="[outgoing] host",
                trust_hint="point SSL_CERT_FILE at its CA")


def test_a_name_that_does_not_exist_is_a_setting_to_fix():
    failure = classify(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), RELAY)
    assert not failure.temporary
    assert failure.text == ("unknown host smtp.example (Name or service not known): check "
                            "[outgoing] host")


def test_a_dns_lookup_that_failed_for_now_is_retried():
    failure = classify(socket.gaierror(socket.EAI_AGAIN,
                                       "Temporary failure in name resolution"), RELAY)
    assert failure.temporary
    assert "cannot look up smtp.example now" in failure.text


def test_a_greeting_that_never_comes_on_an_implicit_tls_port_names_the_fix():
    on_465 = dataclasses.replace(RELAY, where="smtp.example:465")
    failure = classify(TimeoutError("timed out"), on_465)
    assert failure.temporary  # a slow server looks the same; the hint says what else it may be
    assert failure.text == ('smtp.example:465 timed out waiting for its greeting (if port 465 '
                            'speaks TLS on connect, set [outgoing] security = "tls")')
    assert classify(TimeoutError("timed out"), RELAY).text == "smtp.example:587 timed out"
