"""The aiosmtpd internals the listener relies on are still there and still behave.

aiosmtpd is not pinned below a version: this test is what guards an upgrade. ``ListenerSMTP``
uses a few private names of aiosmtpd's ``SMTP`` (declared in ``session.UPSTREAM_*``) for the
limits its public API cannot express. If a release renames one, changes its parameters, or
changes the upstream code the listener re-implements or relies on, a test here fails and says
what to review; a real session through each of them checks they still do their work.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import inspect
import textwrap
import types

import aiosmtpd
import pytest
from aiosmtpd.smtp import SMTP

from mailthreads.transport.smtp.session import (
    TIMEOUT,
    TOO_MANY_COMMANDS,
    TOO_MANY_ERRORS,
    UPSTREAM_ATTRIBUTES,
    UPSTREAM_METHODS,
    UPSTREAM_OVERRIDDEN,
    ListenerSMTP,
)

# sha256 of the source of the aiosmtpd methods whose behaviour ListenerSMTP re-implements or
# depends on, as reviewed for aiosmtpd 1.4.6. A new release that changes one of them fails
# here: read the new code against ListenerSMTP (smtp_DATA's checks before 354, the command
# loop that calls _reset_timeout and then a method of _smtp_methods), adapt the listener if
# needed, and record the new digest.
REVIEWED = {
    "smtp_DATA": "025c94766a3c653c032d25e389b3c807779d90b8dd19b719340fd92694f5fdf7",
    "_handle_client": "49324c69de994eb0b71534a5d3232ee8023e1c1fcb7d003fccae6f7d125ba265",
    "_timeout_cb": "2fed1205429f2e0f273421dc516dd2391226f5038189d8138c9fd6802bec5545",
    "_reset_timeout": "a6ee240dba077e033a26bb0a37ec825915033ff6ebea4ec9eee31318cb6cd4c9",
    "_call_handler_hook": "ba0ae3757b244f8da60258731e0829ea2b1af63af97dc247125981d1896b1ded",
    "_set_post_data_state": "5ba57233145a4836fc208ad802cd666900b5ccd09b54435749042365d238b946",
    "connection_lost": "113bdb9e32d673b6018954f3d9ae84e32dc9f70162a61a5cfcc4e5ba0e220a89",
}


def _digest(name: str) -> str:
    source = textwrap.dedent(inspect.getsource(getattr(SMTP, name)))
    return hashlib.sha256(source.encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(REVIEWED))
def test_the_upstream_code_the_listener_relies_on_is_the_reviewed_code(name):
    assert _digest(name) == REVIEWED[name], (
        f"aiosmtpd {aiosmtpd.__version__} changed SMTP.{name}: review ListenerSMTP "
        f"(mailthreads/transport/smtp/session.py) against it, then record the new digest")


@pytest.mark.parametrize("name", sorted(UPSTREAM_METHODS))
def test_each_private_method_used_exists_with_the_expected_parameters(name):
    method = getattr(SMTP, name, None)
    assert callable(method), f"aiosmtpd {aiosmtpd.__version__} has no SMTP.{name}"
    parameters = tuple(inspect.signature(method).parameters)
    assert parameters == UPSTREAM_METHODS[name], (
        f"aiosmtpd {aiosmtpd.__version__}: SMTP.{name}{parameters}, "
        f"the listener expects {UPSTREAM_METHODS[name]}")


def _private_names_of_listener() -> tuple[set[str], set[str]]:
    """(names ListenerSMTP defines in its class body, attribute names it reads or sets)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(ListenerSMTP)))
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    defined = {node.name for node in body.body
               if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    used = {node.attr for node in ast.walk(body) if isinstance(node, ast.Attribute)}

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    return {n for n in defined if private(n)}, {n for n in used if private(n)}


def test_the_listener_touches_no_undeclared_aiosmtpd_internal(upstream_names):
    defined, used = _private_names_of_listener()
    overridden = {name for name in defined if name in upstream_names}
    assert overridden == set(UPSTREAM_OVERRIDDEN), (
        "ListenerSMTP overrides private aiosmtpd methods not declared in UPSTREAM_OVERRIDDEN "
        "(or a name of its own clashes with one of aiosmtpd's)")
    undeclared = {name for name in used | defined if name in upstream_names} \
        - set(UPSTREAM_METHODS) - set(UPSTREAM_ATTRIBUTES)
    assert not undeclared, f"ListenerSMTP uses undeclared aiosmtpd internals: {undeclared}"
    assert set(UPSTREAM_OVERRIDDEN) <= set(UPSTREAM_METHODS)


def test_the_stream_reader_still_has_the_buffer_unread_writes_to():
    # session._unread gives back bytes read past the end of data; aiosmtpd itself clears the
    # same buffer for STARTTLS.
    async def buffer_type() -> type:
        return type(asyncio.StreamReader()._buffer)

    assert asyncio.run(buffer_type()) is bytearray


# What sessions made by ListenerSMTP.factory share: the loop, the handler, and what aiosmtpd
# works out from them and only reads afterwards (reviewed for 1.4.6); and the server's set of
# live sessions. Anything else shared would be one session's state leaking into another.
SHARED = {"loop", "_loop", "event_handler", "_auth_callback", "_auth_methods", "_handle_hooks",
          "_call_limit_base", "_sessions"}
_VALUES = (int, float, str, bytes, bool, tuple, type(None))


def test_a_copied_session_holds_the_state_of_one_built_in_full():
    async def sessions():
        options = dict(sessions=set(), data_timeout=30, max_bad_commands=0, hostname="test",
                       loop=asyncio.get_running_loop(), command_call_limit={"*": 100},
                       auth_exclude_mechanism=["LOGIN", "PLAIN"])
        handler = Handler()
        make = ListenerSMTP.factory(handler, **options)
        return make(), make(), ListenerSMTP(handler, **options)

    copied, other, built = asyncio.run(sessions())
    assert set(vars(copied)) == set(vars(built))
    for name, value in vars(built).items():
        mine = vars(copied)[name]
        assert type(mine) is type(value), name
        if isinstance(value, _VALUES):
            assert mine == value, name
        elif isinstance(value, types.MethodType):
            assert (mine.__func__, mine.__self__) == (value.__func__, copied), name
        elif name not in SHARED:
            assert mine is not vars(other)[name], f"sessions share their {name}"
    assert set(copied._smtp_methods) == set(built._smtp_methods)
    assert all(getattr(command, "__self__", None) is copied
               for command in copied._smtp_methods.values())
    assert copied.command_size_limits is not other.command_size_limits


# -- a real session through every internal -----------------------------------------------------

class Handler:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.content)
        return f"250 2.0.0 got {len(envelope.content)}"


async def _serve(handler: Handler, **options):
    """A listening socket whose sessions are ListenerSMTP; (server, port, sessions)."""
    loop = asyncio.get_running_loop()
    sessions: set[ListenerSMTP] = set()

    make = ListenerSMTP.factory(handler, sessions=sessions, hostname="test", loop=loop,
                               **{"data_timeout": 30, "max_bad_commands": 0, **options})

    def session() -> ListenerSMTP:
        made = make()
        sessions.add(made)
        return made

    server = await loop.create_server(session, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], sessions


async def _reply(reader: asyncio.StreamReader) -> bytes:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 20)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


async def _dialogue(port: int, *commands: bytes) -> tuple[list[bytes], bytes]:
    """Each command's reply, then whatever the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await _reply(reader)]
    for command in commands:
        writer.write(command)
        replies.append(await _reply(reader))
    rest = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return replies, rest


def test_a_session_through_the_internals_still_behaves():
    handler = Handler()
    body = b"Subject: x\r\n\r\n..stuffed\r\n" + b"\r\n" * 200_000 + b"end\r\n"

    async def scenario():
        server, port, sessions = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await _reply(reader)
            listener = next(iter(sessions))
            replies = []
            for command in (b"EHLO c\r\n", b"HELP DATA\r\n", b"MAIL FROM:<a@b.example>\r\n",
                            b"RCPT TO:<c@d.example>\r\n", b"DATA\r\n"):
                writer.write(command)
                replies.append(await _reply(reader))
            assert type(listener._reader) is asyncio.StreamReader
            # The data in pieces, the end marker split, a command pipelined behind it.
            for piece in (body[:70_000], body[70_000:-1],
                          b"\n.\r\nMAIL FROM:<e@f.example>\r\n"):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.01)
            replies.append(await _reply(reader))
            replies.append(await _reply(reader))  # the pipelined MAIL: a new envelope
            writer.write(b"QUIT\r\n")
            replies.append(await _reply(reader))
            writer.close()
            return replies

    replies = asyncio.run(scenario())
    assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"250", b"354", b"250",
                                        b"250", b"221"], replies
    assert b"Syntax: DATA" in replies[1]  # HELP reads the syntax through the command wrapper
    assert handler.messages == [body.replace(b"\r\n..", b"\r\n.")]
    assert replies[5].strip() == f"250 2.0.0 got {len(handler.messages[0])}".encode()


def test_the_command_cap_closes_with_a_421():
    async def scenario():
        server, port, _ = await _serve(Handler(), max_commands=3)
        async with server:
            return await _dialogue(port, b"EHLO c\r\n", b"NOOP\r\n", b"NOOP\r\n",
                                   b"NOOP\r\nNOOP\r\n")

    replies, rest = asyncio.run(scenario())
    assert [r[:3] for r in replies[1:]] == [b"250", b"250", b"250", b"421"]
    assert replies[-1] == TOO_MANY_COMMANDS
    assert rest == b""  # closed, and the pipelined NOOP behind the cap was not answered


def test_nothing_pipelined_behind_a_goodbye_is_run():
    # The listener closes the transport and relies on aiosmtpd's connection_lost to end the
    # session's task (it no longer cancels that private task itself): commands already read
    # must not run in between, least of all a message stored without its 250.
    handler = Handler()

    async def scenario():
        server, port, _ = await _serve(handler, max_bad_commands=2)
        async with server:
            return await _dialogue(port, b"EHLO c\r\n", b"BOGUS\r\n",
                                   b"BOGUS\r\nMAIL FROM:<a@b.example>\r\n"
                                   b"RCPT TO:<c@d.example>\r\nDATA\r\nlost\r\n.\r\n")

    replies, rest = asyncio.run(scenario())
    assert [r[:3] for r in replies[1:]] == [b"250", b"500", b"500"]
    assert rest == TOO_MANY_ERRORS.encode() + b"\r\n"  # and then nothing: closed
    assert handler.messages == []


def test_the_data_timeout_restarts_per_chunk_and_ends_with_a_421():
    async def scenario():
        server, port, _ = await _serve(Handler(), data_timeout=2.0, timeout=60)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await _reply(reader)
            for command in (b"EHLO c\r\n", b"MAIL FROM:<a@b.example>\r\n",
                            b"RCPT TO:<c@d.example>\r\n", b"DATA\r\n"):
                writer.write(command)
                await _reply(reader)
            # Progress keeps the session: a chunk (64 KiB) every 0.5 s, for longer than the
            # data timeout, and the server says nothing meanwhile.
            heard = b""
            for _ in range(6):
                writer.write(b"x" * 65_536 + b"\r\n")
                with contextlib.suppress(TimeoutError):
                    heard += await asyncio.wait_for(reader.read(100), 0.5)
            # Then nothing: the data timeout (not the 60 s command timeout) ends it.
            goodbye = await asyncio.wait_for(reader.read(), 30)
            writer.close()
            return heard, goodbye

    heard, goodbye = asyncio.run(scenario())
    assert heard == b""
    assert goodbye == TIMEOUT


@pytest.fixture(scope="module")
def upstream_names() -> set[str]:
    """Every private name of aiosmtpd's SMTP: class attributes and a live session's state."""
    names = {name for name in dir(SMTP) if name.startswith("_") and not name.startswith("__")}

    async def live_state() -> set[str]:
        loop = asyncio.get_running_loop()
        captured: list[SMTP] = []

        def make() -> SMTP:
            captured.append(SMTP(Handler(), hostname="test", loop=loop))
            return captured[0]

        server = await loop.create_server(make, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            await _dialogue(port, b"EHLO c\r\n", b"QUIT\r\n")
        return set(vars(captured[0]))

    return names | {n for n in asyncio.run(live_state()) if n.startswith("_")}
