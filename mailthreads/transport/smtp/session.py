"""The SMTP listener: aiosmtpd's ``SMTP`` with mailthreads' limits, and its handler.

``ReplyHandler`` follows aiosmtpd's handler conventions: hooks that return SMTP reply lines.
It accepts this blog's reply addresses at RCPT, and answers ``250`` to DATA only once the raw
message is committed durably (``GroupCommitter``); filing it into a thread happens afterwards,
in the filer process. ``ListenerSMTP`` adds what aiosmtpd leaves to its users: a data timeout
separate from the command timeout, a ``421`` before a timeout closes a session, a cap on
commands answered with errors, and a clean goodbye at shutdown. It also reads message data in
large chunks instead of line by line, which is most of the CPU a message costs in aiosmtpd.

Serving (sockets, signals, the filer) is in ``smtp_server``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import sqlite3
import types
from collections.abc import Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from ...config import Config
from ...ingest import Envelope as DeliveryEnvelope
from .commit import GroupCommitter, StorageError
from .log import LOGGER, fields
from .recipients import Lookups, reply_after_lookup, reply_without_lookup

log = logging.getLogger(LOGGER)

# The end of message data. Only CR LF "." CR LF ends it: a lone dot after a bare LF or CR
# ("\n.\n", "\n.\r\n", "\r.\r") is data, so that no SMTP smuggling gets a second message past
# a server that reads the end differently.
END_OF_DATA = b"\r\n.\r\n"
# How much message data is read (and buffered) at a time; also the longest command line.
READ_CHUNK = 64 * 1024

TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_BIG = "552 5.3.4 Message too big for this server"
STORAGE_FAILED = "451 4.3.0 Cannot store the message now, try again later"
LOOKUP_FAILED = "451 4.3.0 Cannot check this recipient now, try again later"
TIMEOUT = b"421 4.4.2 Timeout exceeded, closing connection\r\n"
SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
TOO_MANY_COMMANDS = b"421 4.7.0 Too many commands without a message, closing connection\r\n"

# The aiosmtpd internals ``ListenerSMTP`` uses, each with the parameters it expects (as of
# aiosmtpd 1.4.6). Its public API has no way to say a 421 before a timeout, to restart the
# data timeout per chunk of progress, to read message data in chunks (which bounds memory and
# time for a CRLF flood), or to count every command; and two shortcuts keep the listener at
# its speed. tests/test_smtp_upstream.py checks these against the installed aiosmtpd, so an
# upgrade that changes them fails loudly there instead of quietly dropping a protection;
# nothing else of aiosmtpd's that is private is touched (``_unread`` uses asyncio's
# StreamReader buffer, as aiosmtpd itself does for STARTTLS).
UPSTREAM_METHODS: dict[str, tuple[str, ...]] = {
    "_timeout_cb": ("self",),  # overridden: a 421 before the timeout closes the session
    "_reset_timeout": ("self", "duration"),  # called: the data timeout, per chunk read
    "_call_handler_hook": ("self", "command", "args"),  # called: the handler's DATA hook
    "_set_post_data_state": ("self",),  # called: a new envelope after a message
    # overridden, for speed: aiosmtpd's defines a class on every call (twice a message);
    # tests/test_smtp_data.py checks both give the same answer for every kind of path
    "_getaddr": ("self", "arg"),
    # ListenerSMTP.factory copies a template session's state (aiosmtpd works it out anew, at
    # a cost, for every connection) and renews what is bound to the session: its stream
    # (through this callback) and _smtp_methods
    "_cb_client_connected": ("self", "reader", "writer"),
}
UPSTREAM_ATTRIBUTES = (
    "_smtp_methods",  # command name -> its smtp_<NAME> method: wrapped for the command cap
    "_reader",  # the session's StreamReader: message data is read from it in chunks
)
UPSTREAM_OVERRIDDEN = ("_timeout_cb", "_getaddr")

# "<local@domain>" with dot-atoms on both sides: what almost every client sends. The email
# package's parser gives the same address for these, at twenty times the cost.
_SIMPLE_PATH = re.compile(r"<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
                          r"@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>(.*)", re.DOTALL)


def peer_text(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _angle(address: str | None) -> str:
    return "<>" if address in (None, "", "<>") else f"<{address}>"


class ReplyHandler:
    """aiosmtpd handler: reply addresses only, and ``250`` only for what is on disk."""

    def __init__(self, config: Config, committer: GroupCommitter, lookups: Lookups):
        self.config = config
        self.committer = committer
        self.lookups = lookups

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        # Inbound mail needs no AUTH, and aiosmtpd's built-in mechanisms only ever say no.
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        limit = self.config.listener.max_recipients
        if limit and len(envelope.rcpt_tos) >= limit:
            reply = TOO_MANY_RECIPIENTS
        else:
            try:
                reply = await self._check(address)
            except sqlite3.Error as error:
                log.error("recipient lookup failed %s", fields(
                    peer=peer_text(session), to=_angle(address), error=error))
                reply = LOOKUP_FAILED
        if not reply.startswith("2"):
            log.info("rejected %s", fields(peer=peer_text(session),
                                           mail_from=_angle(envelope.mail_from),
                                           to=_angle(address), reply=reply))
            return reply
        if address.lower() not in (known.lower() for known in envelope.rcpt_tos):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def _check(self, address: str) -> str:
        decided = reply_without_lookup(self.config, address)
        if isinstance(decided, str):
            return decided
        return await self.lookups.run(reply_after_lookup, self.config, decided)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail_from = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        delivery = DeliveryEnvelope(mail_from, tuple(envelope.rcpt_tos))
        peer = peer_text(session)
        origin = f"{peer} helo={session.host_name}" if session.host_name else peer
        summary = dict(peer=peer, mail_from=_angle(mail_from),
                       to=",".join(_angle(a) for a in envelope.rcpt_tos), size=len(raw))
        try:
            delivery_id = await self.committer.store(raw, delivery, origin)
        except StorageError as error:
            log.error("not stored %s", fields(**summary, reply=STORAGE_FAILED, error=error))
            return STORAGE_FAILED
        log.info("accepted %s", fields(**summary, delivery=delivery_id))
        return f"250 2.0.0 OK: stored as delivery {delivery_id}"

    async def handle_exception(self, error: Exception) -> str:
        # Reached only by bugs: expected failures are answered where they happen.
        log.error("session failed: %s: %s", type(error).__name__, error,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        return "451 4.3.0 Internal error, try again later"


class ListenerSMTP(SMTP):
    """One SMTP session. ``sessions`` is the server's set of live sessions (for shutdown).

    Everything else goes through aiosmtpd's public API (handler hooks, constructor options,
    ``push``, ``smtp_<COMMAND>`` methods). What cannot (a ``421`` before a timeout closes the
    session, a data timeout per chunk of progress, message data read in chunks, the command
    cap; and two shortcuts for speed) uses the aiosmtpd internals named in ``UPSTREAM_*``, and
    nothing else of theirs; tests/test_smtp_upstream.py fails loudly when an aiosmtpd release
    changes them.
    """

    # A documented class attribute: aiosmtpd sizes its StreamReader by it; this class also
    # reads message data in chunks of it.
    line_length_limit = READ_CHUNK

    def __init__(self, handler: ReplyHandler, *, sessions: set[ListenerSMTP],
                 data_timeout: float, max_bad_commands: int, max_commands: int = 0,
                 **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.command_size_limits = _command_size_limits()
        self._smtp_methods = self._counted(self._smtp_methods)
        self._sessions = sessions
        self._data_timeout = data_timeout
        self._max_bad_commands = max_bad_commands
        self._bad_commands = 0
        # Commands since the last message (new recipients not counted): 0 turns the cap off,
        # as the server does for trusted relays. ``peer_host`` is the client's IP address.
        self.max_commands = max_commands
        self._commands = 0
        self.peer_host = ""
        self._in_transaction = False
        self._leaving = False
        self._goodbye_sent = False

    @classmethod
    def factory(cls, handler: ReplyHandler, **kwargs: Any) -> Callable[[], ListenerSMTP]:
        """A maker of sessions that share what aiosmtpd works out anew for each one.

        aiosmtpd's ``__init__`` inspects the handler and the class (``inspect.getmembers``,
        ``inspect.signature``) on every connection: about a tenth of a millisecond, a sizeable
        part of what a message costs. The result is the same every time, so it is worked out
        once, for a template session, and each new session starts from a copy of the
        template's state, with its stream and its bound methods made new. Should a future
        aiosmtpd keep other state this copy does not know to renew, sessions are built the
        slow way instead (tests/test_smtp_upstream.py checks that a copy and a session built in
        full hold the same state).
        """
        template = cls(handler, **kwargs)
        loop = template.loop
        state = dict(template.__dict__)
        commands = list(state["_smtp_methods"])
        if not _copyable(template, state):
            log.debug("aiosmtpd keeps unknown per-session state: building sessions in full")
            return lambda: cls(handler, **kwargs)

        def make() -> ListenerSMTP:
            session = cls.__new__(cls)
            session.__dict__.update(state)
            asyncio.StreamReaderProtocol.__init__(
                session, asyncio.StreamReader(limit=cls.line_length_limit, loop=loop),
                client_connected_cb=session._cb_client_connected, loop=loop)
            session._smtp_methods = session._counted(
                {name: getattr(session, f"smtp_{name}") for name in commands})
            session.command_size_limits = _command_size_limits()
            return session

        return make

    # -- lifecycle ---------------------------------------------------------------------------

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)

    @property
    def in_transaction(self) -> bool:
        """Between DATA and its answer: a message the client is sending or waiting for."""
        return self._in_transaction

    def shut_down(self) -> None:
        """Say goodbye now, or right after the message in flight has its answer."""
        if self._in_transaction:
            self._leaving = True
        else:
            self._goodbye(SHUTTING_DOWN)

    def _goodbye(self, reply: bytes) -> None:
        # Closing the transport makes aiosmtpd's connection_lost cancel the session's task.
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self._goodbye_sent:
            self._goodbye_sent = True
            transport.write(reply)
        transport.close()

    def _timeout_cb(self) -> None:  # overrides an aiosmtpd internal (UPSTREAM_OVERRIDDEN)
        if self.transport is None or self.transport.is_closing():
            return  # the session is over; a timer set on its way out has nothing to do
        # RFC 5321 4.5.3.2: say why before closing, so the client knows to try again.
        log.info("timeout %s", fields(peer=peer_text(self.session) if self.session else None))
        self._goodbye(TIMEOUT)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd's version defines a typing.Protocol class on every call (twice a message).
        if not arg:
            return "", ""
        simple = _SIMPLE_PATH.match(arg.lstrip())
        # The parser also takes the white space after the path (and any comment: those are
        # left to it).
        rest = simple.group(2).lstrip(" \t") if simple else ""
        if simple and not rest.startswith("("):
            address = simple.group(1)
        else:
            try:
                token, rest = (get_angle_addr if arg.lstrip().startswith("<")
                               else get_addr_spec)(arg)
            except HeaderParseError:
                return None, None
            address = token.addr_spec
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    # -- commands ----------------------------------------------------------------------------

    def _counted(self, methods: dict[str, Any]) -> dict[str, Any]:
        return {name: _CountedCommand(self, name, method) for name, method in methods.items()}

    async def run_command(self, name: str, method: Callable[[str | None], Any],
                          arg: str | None) -> None:
        """Run one command, or end the session when it has sent too many without a message.

        aiosmtpd restarts the command timeout after every command and allows thousands of
        each: without this cap, a client could keep a session (and its place) for days.
        """
        if self._goodbye_sent:
            return  # commands the client pipelined behind the goodbye: the session is over
        if self.max_commands and self._commands >= self.max_commands:
            log.info("too many commands %s", fields(peer=peer_text(self.session)))
            self._goodbye(TOO_MANY_COMMANDS)
            return
        self._commands += 1
        envelope = self.envelope
        recipients = len(envelope.rcpt_tos) if envelope else 0
        await method(arg)
        if name == "RCPT" and envelope and len(envelope.rcpt_tos) > recipients:
            self._commands -= 1  # a new recipient: max_recipients bounds those

    # -- replies -----------------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        await super().push(status)
        code = status[:1] if isinstance(status, str) else status[:1].decode("ascii", "replace")
        if code not in ("4", "5") or not self._max_bad_commands:
            return
        self._bad_commands += 1
        if self._bad_commands >= self._max_bad_commands and not self._goodbye_sent:
            log.info("too many errors %s", fields(peer=peer_text(self.session)))
            self._goodbye((TOO_MANY_ERRORS + "\r\n").encode("ascii"))

    # -- DATA --------------------------------------------------------------------------------

    @syntax("DATA")  # as upstream's: HELP lists it and gives its syntax
    async def smtp_DATA(self, arg: str | None) -> None:
        # aiosmtpd's own checks, in its order (its smtp_DATA reads the data line by line).
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        self._in_transaction = True
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            content = await self._read_data()
            if content is None:
                status = TOO_BIG
            else:
                self.envelope.content = self.envelope.original_content = content
                # The commit may take a moment; that is no reason to hang up on the client.
                self._reset_timeout()
                status = await self._call_handler_hook("DATA")
            self._commands = 0  # a message: the client is doing what it came for
            self._set_post_data_state()
            await self.push(status)
        finally:
            self._in_transaction = False
            self._reset_timeout()
            if self._leaving:
                self._goodbye(SHUTTING_DOWN)

    async def _read_data(self) -> bytes | None:
        """The message, dot-unstuffed; None when it was over the size limit (and discarded).

        Whatever bytes arrive, the data is read in chunks of up to ``READ_CHUNK`` and the end
        is found by a scan of each chunk (and the four bytes before it), so memory stays within
        the size limit and the time per byte is the same for a CRLF flood as for text. The data
        timeout runs on progress: each further ``READ_CHUNK`` bytes give it a fresh start, so a
        client that trickles a byte now and then cannot hold the session open.
        """
        reader = self._reader
        limit = self.data_size_limit
        parts: list[bytes] = []
        size = 0  # bytes read, the end marker included
        # The DATA command's own line end counts: "." as the very first line ends an empty
        # message.
        tail = b"\r\n"
        self._reset_timeout(self._data_timeout)
        timed_from = 0
        while True:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                raise asyncio.IncompleteReadError(b"", None)
            window = tail + chunk
            end = window.find(END_OF_DATA)
            if end != -1:
                used = end + len(END_OF_DATA) - len(tail)
                _unread(reader, chunk[used:])  # a command sent right behind the data
                chunk = chunk[:used]
            size += len(chunk)
            if limit and size > limit + 3:
                parts.clear()  # keep reading to the end, so the session stays in step
            else:
                parts.append(chunk)
            if end != -1:
                break
            tail = window[-(len(END_OF_DATA) - 1):]
            if size - timed_from >= READ_CHUNK:
                timed_from = size
                self._reset_timeout(self._data_timeout)
        if limit and size > limit + 3:
            return None
        content = b"".join(parts)[:-3]  # drop ".\r\n", keep the last line's end
        if content.startswith(b"."):
            content = content[1:]
        return content.replace(b"\r\n.", b"\r\n")


class _CountedCommand:
    """A command method that goes through ``ListenerSMTP.run_command``.

    Attribute look-ups reach the method itself: aiosmtpd's HELP reads its syntax from there.
    """

    __slots__ = ("_session", "_name", "_method")

    def __init__(self, session: ListenerSMTP, name: str, method: Callable[[str | None], Any]):
        self._session = session
        self._name = name
        self._method = method

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._method, attribute)

    def __call__(self, arg: str | None) -> Any:
        return self._session.run_command(self._name, self._method, arg)


def _command_size_limits() -> collections.defaultdict[str, int]:
    # aiosmtpd keeps these in one dict for all sessions and grows it with every EHLO.
    return collections.defaultdict(lambda: SMTP.command_size_limit)


# Per-session attributes that hold methods bound to the session, and what renews them.
_RENEWED = {"_smtp_methods", "_client_connected_cb"}


def _copyable(template: SMTP, state: dict[str, Any]) -> bool:
    """Whether every attribute bound to ``template`` is one that ``factory`` renews."""
    def bound_here(value: Any) -> bool:
        if isinstance(value, types.MethodType):
            return value.__self__ is template
        if isinstance(value, dict):
            return any(bound_here(v) or (isinstance(v, tuple) and any(map(bound_here, v)))
                       for v in value.values())
        return False

    return all(name in _RENEWED for name, value in state.items() if bound_here(value))


def _unread(reader: asyncio.StreamReader, data: bytes) -> None:
    """Give back bytes read past the end of message data, for the command reader.

    StreamReader has no public way to do this; aiosmtpd itself clears ``_buffer`` for
    STARTTLS. Nothing else reads from this stream in between: the bytes go back in front.
    """
    if data:
        reader._buffer[:0] = data  # type: ignore[attr-defined]
