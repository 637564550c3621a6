"""Run the SMTP listener: the socket, the sessions, the writer thread, the filer, shutdown.

One process accepts (asyncio, one thread for durable commits); a second one files what was
accepted (``smtp_filer``). SIGTERM or SIGINT stops accepting, lets every message in flight
get its answer, says ``421`` to idle sessions, lets the filer finish, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...config import Config
from ...db import open_database, store
from ...ingest import index_thread_tokens
from .commit import GroupCommitter, WriteTurn
from .filer import FilerProcess
from .log import LOGGER, fields
from .recipients import Lookups
from .session import ListenerSMTP, ReplyHandler

log = logging.getLogger(LOGGER)

TOO_MANY_CONNECTIONS = b"421 4.7.0 Too many connections, try again later\r\n"
# After SIGTERM, how long a session may take to finish the message it is sending.
SHUTDOWN_GRACE_SECONDS = 30.0
FILER_CHECK_SECONDS = 1.0
FILER_RESTART_MAX_SECONDS = 60.0


class ServeError(Exception):
    """The listener cannot start; ``temporary`` says whether trying again later can help."""

    def __init__(self, message: str, *, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class Options:
    database_path: Path
    config: Config
    host: str
    port: int
    verbosity: int = 0


class _Admission(asyncio.Protocol):
    """A new connection: a session if its peer may have one more, else ``421`` and goodbye.

    The peer is known only once the connection is made, so the decision is taken here and an
    admitted connection is then handed to its session (``set_protocol``).
    """

    def __init__(self, admit: Callable[[str], ListenerSMTP | None]):
        self._admit = admit

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        peer = transport.get_extra_info("peername")
        session = self._admit(peer[0] if isinstance(peer, tuple) else "")
        if session is None:
            log.info("refused %s", fields(peer=_peer(transport), reply="421 4.7.0"))
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        transport.set_protocol(session)
        session.connection_made(transport)


class Networks:
    """IP addresses and networks (config strings, already validated), and who is in them."""

    def __init__(self, networks: tuple[str, ...]):
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def contains(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # not an IP peer (a Unix socket): nobody to trust
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
        return any(address in network for network in self._networks)


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def tls_context(config: Config) -> ssl.SSLContext | None:
    listener = config.listener
    if not listener.tls_certificate or not listener.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(Path(listener.tls_certificate).expanduser(),
                                Path(listener.tls_key).expanduser())
    except (OSError, ssl.SSLError) as error:
        raise ServeError(f"cannot use the TLS certificate {listener.tls_certificate} and key "
                         f"{listener.tls_key}: {error}", temporary=False) from None
    return context


class ReplyServer:
    """The listening socket and its sessions, the writer thread and the filer."""

    def __init__(self, options: Options):
        self.options = options
        config = options.config
        self.tls = tls_context(config)  # before anything is opened: a mistake to fix first
        self.database = open_database(options.database_path, durable=True)
        self._key_reply_tokens()
        self.lookups = Lookups(options.database_path)
        turn = WriteTurn()
        self.filer = FilerProcess(options.database_path, config, options.verbosity, turn)
        self.committer = GroupCommitter(self.database.conn, config, self.filer.notify, turn=turn)
        self.handler = ReplyHandler(config, self.committer, self.lookups)
        self.sessions: set[ListenerSMTP] = set()
        self.trusted = Networks(config.listener.trusted_peers)
        self.closing = False
        # Asked once: aiosmtpd would ask the resolver again for every connection.
        self.hostname = socket.getfqdn()
        self.server: asyncio.Server | None = None
        self._new_session = self._make_session_factory()

    def _key_reply_tokens(self) -> None:
        """Before the first RCPT: every thread's token key, under the secret of this config."""
        conn = self.database.conn
        try:
            keyed = index_thread_tokens(conn, self.options.config, check_secret=True)
            conn.commit()
        except sqlite3.Error as error:
            conn.close()
            raise ServeError(f"cannot index the reply tokens in {self.options.database_path}: "
                             f"{error}", temporary=True) from None
        if keyed:
            log.info("keyed reply tokens %s", fields(threads=keyed))

    def _make_session_factory(self) -> Callable[[], ListenerSMTP]:
        listener = self.options.config.listener
        return ListenerSMTP.factory(
            self.handler,
            sessions=self.sessions,
            data_timeout=listener.data_timeout,
            max_bad_commands=listener.max_bad_commands,
            max_commands=listener.max_commands,
            hostname=self.hostname,
            ident="ESMTP mailthreads",
            data_size_limit=listener.max_message_size or None,
            enable_SMTPUTF8=True,
            tls_context=self.tls,
            timeout=listener.command_timeout,
            # Inbound mail needs no AUTH: offer no mechanism at all.
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            # Junk commands cost nothing to send; 10,000 messages a session is plenty.
            command_call_limit={"NOOP": 100, "RSET": 100, "VRFY": 20, "EXPN": 20,
                                "HELP": 20, "*": 10_000},
        )

    def _session(self) -> asyncio.Protocol:
        return _Admission(self._admit)

    def _admit(self, host: str) -> ListenerSMTP | None:
        """A new session for a peer at ``host``, or None when it must be refused."""
        listener = self.options.config.listener
        limit, per_peer = listener.max_connections, listener.max_connections_per_peer
        if self.closing or (limit and len(self.sessions) >= limit):
            return None
        trusted = self.trusted.contains(host)
        if per_peer and not trusted and \
                sum(session.peer_host == host for session in self.sessions) >= per_peer:
            return None
        session = self._new_session()
        session.peer_host = host
        if trusted:
            session.max_commands = 0
        self.sessions.add(session)
        return session

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            self.server = await loop.create_server(self._session, options.host, options.port,
                                                   reuse_address=True)
        except OSError as error:
            # In use: another listener (or the last one) still holds it, which passes.
            # Anything else (no such address, a privileged port) needs the user.
            raise ServeError(
                f"cannot listen on {options.host}:{options.port}: "
                f"{error.strerror or error}",
                temporary=error.errno == errno.EADDRINUSE) from None
        self.committer.start(loop)
        self.filer.start()
        host, port = self.server.sockets[0].getsockname()[:2]
        pending = await self._pending()
        log.info("listening on %s:%s %s", host, port,
                 fields(database=options.database_path, filer_pid=self.filer.pid,
                        pending=pending or None, tls="yes" if self.tls else None))
        _notify_systemd("READY=1")
        supervisor = asyncio.create_task(self._watch_filer(stop))
        await stop.wait()
        _notify_systemd("STOPPING=1")
        supervisor.cancel()
        await self._shut_down()

    async def _pending(self) -> int:
        try:
            return await self.lookups.run(store.count_pending_deliveries)
        except sqlite3.Error:
            return 0

    async def _watch_filer(self, stop: asyncio.Event) -> None:
        """Restart the filer if it dies: accepted mail stays safe, but it must get filed."""
        delay = 1.0
        while not stop.is_set():
            await asyncio.sleep(FILER_CHECK_SECONDS)
            code = self.filer.exitcode()
            if code is None:
                delay = 1.0
                continue
            log.error("filer exited (code %s); restarting it in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, FILER_RESTART_MAX_SECONDS)
            if not stop.is_set():
                self.filer.start()

    async def _shut_down(self) -> None:
        loop = asyncio.get_running_loop()
        self.closing = True
        assert self.server is not None
        self.server.close()  # no new connections from here on
        busy = [s for s in self.sessions if s.in_transaction]
        log.info("stopping %s", fields(sessions=len(self.sessions), in_flight=len(busy)))
        for session in list(self.sessions):
            session.shut_down()
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):  # past the grace: their clients will retry
            if session.transport is not None:
                session.transport.abort()
        await loop.run_in_executor(None, self.committer.close)
        code = await loop.run_in_executor(None, self.filer.stop)
        if code not in (0, None):
            log.warning("filer exited with code %s", code)
        self.database.conn.close()
        await loop.run_in_executor(None, self.lookups.close)
        log.info("stopped %s", fields(messages=self.committer.messages,
                                      commits=self.committer.commits))


def serve(options: Options) -> None:
    """Serve until SIGTERM or SIGINT. Raises ``ServeError`` when the socket cannot be had."""
    asyncio.run(_main(options))


async def _main(options: Options) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await ReplyServer(options).run(stop)


def _notify_systemd(state: str) -> None:
    """sd_notify(3) for ``Type=notify`` units, without a dependency."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
