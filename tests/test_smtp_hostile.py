"""Hostile senders (issue 8), each against a real `mailthreads serve` on a loopback port."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import time
from pathlib import Path

from smtp_support import Dialogue, Serve, message, query, wait_filed, wait_for

from mailthreads.tokens import make_token


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


# -- many sessions, many commands ---------------------------------------------------------------

def greeting(port: int, source: str) -> tuple[Dialogue, int]:
    """A session from ``source``, and the code it was greeted with."""
    dialogue = Dialogue(port, source=source)
    return dialogue, dialogue.reply()[0]


def greeted(port: int, source: str) -> int:
    dialogue, code = greeting(port, source)
    dialogue.close()
    return code


def test_one_peer_cannot_take_every_place(serve):
    server = serve(listener={"max_connections_per_peer": 3, "trusted_peers": []})
    held: list[Dialogue] = []
    try:
        for _ in range(3):
            dialogue, code = greeting(server.port, "127.0.0.2")
            held.append(dialogue)
            assert code == 220
        with Dialogue(server.port, source="127.0.0.2") as fourth:
            code, text = fourth.reply()
            assert (code, text[:5]) == (421, "4.7.0")
            assert fourth.closed()
        assert greeted(server.port, "127.0.0.3") == 220
        held.pop().close()
        wait_for(lambda: greeted(server.port, "127.0.0.2") == 220,
                 "a place for the peer again once one of its sessions ended")
    finally:
        for dialogue in held:
            dialogue.close()


def test_trusted_relays_have_no_per_peer_cap(serve):
    server = serve(listener={"max_connections_per_peer": 2,
                             "trusted_peers": ["127.0.0.1", "127.0.0.2/31"]})
    held = [greeting(server.port, source) for source in ["127.0.0.1"] * 4 + ["127.0.0.3"] * 4]
    try:
        assert [code for _, code in held] == [220] * 8
    finally:
        for dialogue, _ in held:
            dialogue.close()
    assert greeted(server.port, "127.0.0.4") == 220


def test_commands_without_a_message_are_capped(serve):
    server = serve(listener={"max_commands": 5, "trusted_peers": []})
    with Dialogue(server.port, source="127.0.0.2") as dialogue:
        assert dialogue.reply()[0] == 220
        codes = [dialogue.command("HELO client.example")[0] for _ in range(5)]
        assert codes == [250] * 5
        code, text = dialogue.command("HELO client.example")
        assert (code, text[:5]) == (421, "4.7.0")
        assert dialogue.closed()


def test_sessions_that_deliver_are_not_capped(serve):
    server = serve(listener={"max_commands": 5, "trusted_peers": []})
    with Dialogue(server.port, source="127.0.0.2") as dialogue:
        assert dialogue.reply()[0] == 220
        assert dialogue.command("EHLO client.example")[0] == 250
        for n in range(4):
            assert dialogue.command("MAIL FROM:<jane@example.com>")[0] == 250
            for post in ("one", "two", "three", "four", "five", "six"):
                assert dialogue.command(f"RCPT TO:<reply+{post}@blog.example>")[0] == 250
            assert dialogue.command("DATA")[0] == 354
            dialogue.send(message(message_id=f"m{n}@example.com") + b".\r\n")
            assert dialogue.reply()[0] == 250
        assert dialogue.command("QUIT")[0] == 221


def test_trusted_relays_have_no_command_cap(serve):
    server = serve(listener={"max_commands": 5})  # 127.0.0.1 is trusted by default
    with Dialogue(server.port) as dialogue:
        assert dialogue.reply()[0] == 220
        assert [dialogue.command("HELO relay.example")[0] for _ in range(20)] == [250] * 20


# -- signed addresses -----------------------------------------------------------------------------

SECRET = "hostile-test-secret-0123"


def rcpt(port: int, address: str) -> int:
    with Dialogue(port) as dialogue:
        assert dialogue.reply()[0] == 220
        assert dialogue.command("EHLO client.example")[0] == 250
        assert dialogue.command("MAIL FROM:<jane@example.com>")[0] == 250
        return dialogue.command(f"RCPT TO:<{address}>")[0]


def deliver_one(server: Serve) -> None:
    """A reply to the plain address, filed: a thread for jane@example.com."""
    with Dialogue(server.port) as dialogue:
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        dialogue.send(message() + b".\r\n")
        assert dialogue.reply()[0] == 250
    wait_filed(server.database, 1)


def signed(secret: str, correspondent_id: int, slug: str = "why-i-blog") -> str:
    return f"reply+{slug}.{make_token(secret, slug, correspondent_id)}@blog.example"


def token_key(token: str) -> str:
    """threads.reply_token_sha256, as the README documents it."""
    return hashlib.sha256(token.encode()).hexdigest()


def thread_keys(database: Path) -> list[tuple[int, str | None]]:
    return query(database, "SELECT correspondent_id, reply_token_sha256 FROM threads ORDER BY id")


def test_threads_are_found_by_their_token_key_and_old_addresses_keep_verifying(serve, tmp_path):
    server = serve(secret=SECRET)
    deliver_one(server)
    [(person, key)] = thread_keys(server.database)
    assert key == token_key(make_token(SECRET, "why-i-blog", person))  # keyed as it was filed
    server.stop()

    # As the migration leaves a database of the old schema: threads, no keys.
    with sqlite3.connect(server.database) as conn:
        conn.execute("UPDATE threads SET reply_token_sha256 = NULL")
    server = serve(secret=SECRET)
    assert thread_keys(server.database) == [(person, key)]  # keyed at start
    assert rcpt(server.port, signed(SECRET, person)) == 250
    assert rcpt(server.port, signed(SECRET, person + 1)) == 550
    server.stop()

    # A new secret: the old addresses stop verifying, the new ones verify.
    server = serve(secret=SECRET[::-1])
    assert rcpt(server.port, signed(SECRET, person)) == 550
    assert rcpt(server.port, signed(SECRET[::-1], person)) == 250
    assert thread_keys(server.database) == [
        (person, token_key(make_token(SECRET[::-1], "why-i-blog", person)))]


def test_a_thread_given_to_another_correspondent_verifies_for_them_only(serve):
    server = serve(secret=SECRET)
    deliver_one(server)
    [(person, _)] = thread_keys(server.database)
    with sqlite3.connect(server.database) as conn:  # as merging two correspondents may do
        other = conn.execute("INSERT INTO correspondents (name, created_at) "
                             "VALUES ('Jane', '2026-11-25T00:00:00Z')").lastrowid
        conn.execute("UPDATE threads SET correspondent_id = ?", (other,))
    assert thread_keys(server.database) == [(other, None)]
    assert rcpt(server.port, signed(SECRET, other)) == 250
    assert rcpt(server.port, signed(SECRET, person)) == 550
