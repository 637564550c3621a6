"""What the listener reads differently from aiosmtpd (for speed) must read the same.

Addresses: ``ListenerSMTP._getaddr`` takes a shortcut for plain ``<local@domain>`` paths and
must give aiosmtpd's answer for every path. Message data: it is read in large chunks, so the
end of data must be found wherever the network splits it, including across chunks.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiosmtpd.smtp import SMTP
from smtp_support import Dialogue, Serve, message, query, wait_for, write_config

from mailthreads.transport.smtp.session import READ_CHUNK, ListenerSMTP

PATHS = [
    "<jane@example.com>", "<Jane.Doe+tag@Sub.Example.COM>", "<>", "<> SIZE=100",
    "<jane@example.com> SIZE=12345 BODY=8BITMIME", "jane@example.com", "<\"quoted local\"@x.org>",
    "<jane@[192.0.2.1]>", "<@relay.example:jane@example.com>", "<jane..doe@example.com>",
    "<.jane@example.com>", "<jane@example.com", "<jane@-example-.com>", "<jane@example.>",
    "<jané@exämple.com>", "<a!#$%&'*+/=?^_`{|}~-@example.com>", "<jane@example.com>trailing",
    "<jane@exa mple.com>", "< jane@example.com >", "<jane@example.com>  ",
    "<jane@example.com>\tSIZE=1", "<jane@example.com> (a comment) SIZE=1", "(c)<a@b.example>",
]


@pytest.fixture(scope="module")
def session():
    loop = asyncio.new_event_loop()
    yield ListenerSMTP(object(), sessions=set(), data_timeout=1, max_bad_commands=0,
                       hostname="test", loop=loop, enable_SMTPUTF8=True)
    loop.close()


@pytest.mark.parametrize("path", PATHS)
def test_addresses_are_read_as_aiosmtpd_reads_them(session, path):
    assert ListenerSMTP._getaddr(session, path) == SMTP._getaddr(session, path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    with Serve(directory / "mail.db", write_config(directory)) as serve:
        yield serve


def send_in_pieces(server: Serve, pieces: list[bytes]) -> int:
    """Send the message data in separate packets; the delivery id of the 250."""
    with Dialogue(server.port) as dialogue:
        dialogue.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dialogue.open_transaction()
        assert dialogue.command("DATA")[0] == 354
        for piece in pieces:
            dialogue.send(piece)
            time.sleep(0.02)  # pacing only, so that the pieces arrive apart
        code, text = dialogue.reply()
        assert code == 250, text
        return int(text.rsplit(" ", 1)[1])


def stored(server: Serve, delivery_id: int) -> bytes:
    return wait_for(lambda: query(server.database, "SELECT r.raw FROM deliveries d JOIN "
                                  "raw_messages r ON r.sha256 = d.raw_sha256 WHERE d.id = ?",
                                  (delivery_id,)), "the delivery")[0][0]


@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_the_end_of_data_is_found_however_it_is_split(server, split):
    raw = message(message_id=f"split-{split}@example.com")
    data = raw + b".\r\n"
    at = len(data) - 5 + split  # inside the final CRLF "." CRLF
    assert stored(server, send_in_pieces(server, [data[:at], data[at:]])) == raw


@pytest.mark.parametrize("split", [0, 1, 2, 3])
def test_an_empty_message_is_found_however_it_is_split(server, split):
    pieces = [b".\r\n"[:split], b".\r\n"[split:]] if split else [b".\r\n"]
    assert stored(server, send_in_pieces(server, pieces)) == b""


def test_a_message_larger_than_a_read_chunk_survives_intact(server):
    lines = "".join(f"{n:06d} " + "x" * 70 + "\n" for n in range(3 * READ_CHUNK // 78))
    lines += ".a line that starts with a dot\n"
    raw = message(message_id="large@example.com", body=lines)
    data = raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    # Split just before the end of a chunk and inside a stuffed dot.
    cut = data.index(b"\r\n..a line") + 3
    pieces = [data[:READ_CHUNK - 2], data[READ_CHUNK - 2:cut], data[cut:]]
    assert stored(server, send_in_pieces(server, pieces)) == raw
