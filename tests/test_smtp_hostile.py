"""Hostile senders (issue 8), each against a real `mailthreads serve` on a loopback port."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from smtp_support import Dialogue, Serve, message, query, wait_for, write_config


@pytest.fixture
def serve(tmp_path):
    """``serve(listener=..., secret=...)`` starts a server with those settings."""
    started: list[Serve] = []

    def start(**settings) -> Serve:
        server = Serve(tmp_path / "mail.db", write_config(tmp_path, **settings))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.close()


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


# -- message data made of line ends -------------------------------------------------------------

def test_a_crlf_flood_over_the_limit_is_refused_within_bounded_memory(serve):
    limit = 256 * 1024
    server = serve(listener={"max_message_size": limit})
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(message() + b".\r\n")
        assert dialogue.reply()[0] == 250
        before = peak_rss(server.pid)
        assert dialogue.command("MAIL FROM:<jane@example.com>")[0] == 250
        assert dialogue.command("RCPT TO:<reply+why-i-blog@blog.example>")[0] == 250
        assert dialogue.command("DATA")[0] == 354
        flood = 4 * 1024 * 1024
        dialogue.send(b"\r\n" * (flood // 2) + b".\r\n")
        code, text = dialogue.reply()
        assert (code, text[:5]) == (552, "5.3.4")
        # Byte by byte, this flood cost the listener about 60 bytes of memory per byte.
        assert peak_rss(server.pid) - before < flood
        # The session is still in step.
        assert dialogue.command("NOOP")[0] == 250
    assert query(server.database, "SELECT COUNT(*) FROM deliveries")[0][0] == 1


def test_line_ends_only_under_the_limit_are_stored_exactly(serve):
    server = serve()
    body = b"\r\n" * 100_000
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(body + b".\r\nNOOP\r\n")  # the next command right behind the data
        assert dialogue.reply()[0] == 250
        assert dialogue.reply()[0] == 250
    [(raw,)] = query(server.database, "SELECT raw FROM raw_messages")
    assert raw == body


def test_a_byte_now_and_then_does_not_hold_the_data_timeout_open(serve):
    server = serve(listener={"data_timeout": 1, "command_timeout": 60})
    with Dialogue(server.port, timeout=5) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.sock.settimeout(0.3)
        started = time.monotonic()
        answer = b""
        # Ten times the data timeout; the server must hang up long before.
        while not answer and time.monotonic() - started < 10:
            try:
                dialogue.send(b"\r\n")
                answer = dialogue.sock.recv(100)
            except TimeoutError:
                continue
            except OSError:
                break
        assert answer.startswith(b"421 4.4.2"), "the session outlived its data timeout"
    assert query(server.database, "SELECT COUNT(*) FROM deliveries")[0][0] == 0


def test_data_that_keeps_coming_in_64k_steps_is_not_cut_off(serve):
    server = serve(listener={"data_timeout": 2, "command_timeout": 60})
    with Dialogue(server.port) as dialogue:
        dialogue.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(message())
        for _ in range(6):  # longer than the data timeout in all, but never stalled
            dialogue.send(b"x" * 70_000 + b"\r\n")
            time.sleep(0.5)
        dialogue.send(b".\r\n")
        assert dialogue.reply()[0] == 250
    wait_for(lambda: query(server.database, "SELECT COUNT(*) FROM deliveries")[0][0] == 1,
             "the delivery")
