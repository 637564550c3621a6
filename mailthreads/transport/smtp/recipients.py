"""Which envelope recipients the SMTP listener accepts, decided at RCPT time.

Refusing at RCPT (rather than accepting and quarantining) makes the sending server bounce the
message to its sender, who learns at once that the address is wrong, and keeps mailthreads from
ever being an open relay. The answers are SMTP reply lines, as aiosmtpd handler hooks return.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ...config import Config
from ...db import connect, store
from ...ingest import thread_for_token
from ...mail.routing import ReplyAddress, is_own_domain, parse_reply_address

T = TypeVar("T")

ACCEPTED = "250 2.1.5 OK"


def reply_without_lookup(config: Config, address: str) -> str | ReplyAddress:
    """The reply to ``RCPT TO:<address>`` when the address alone decides it (``250`` for this
    blog's reply addresses, else ``550``); else the reply address, for ``reply_after_lookup``.

    The database is needed only for signed addresses, and for unknown posts when
    ``[listener] known_posts_only`` is set.
    """
    reply_address = parse_reply_address(address, config.addresses)
    if reply_address is None:
        if not is_own_domain(address, config.addresses):
            return f"550 5.7.1 <{address}>: relay access denied"
        # RFC 5321 4.5.1: every mail domain takes mail for postmaster. It lands in the
        # quarantine (it names no post), where the author sees it.
        if address.rpartition("@")[0].lower() == "postmaster":
            return ACCEPTED
        return f"550 5.1.1 <{address}>: no such reply address"
    if reply_address.token is None and not config.listener.known_posts_only:
        return ACCEPTED
    return reply_address


def reply_after_lookup(conn: sqlite3.Connection, config: Config,
                       reply_address: ReplyAddress) -> str:
    address = reply_address.address
    if reply_address.token is not None:
        # A signed address names one thread; a token that does not verify is a forgery or
        # an address from before the secret was changed. Either way: refuse it, never file it.
        if thread_for_token(conn, config, reply_address.slug, reply_address.token) is None:
            return f"550 5.7.1 <{address}>: reply address signature does not verify"
        return ACCEPTED
    if store.post_by_slug(conn, reply_address.slug) is None:
        return f"550 5.1.1 <{address}>: no such post"
    return ACCEPTED


class Lookups:
    """The listener's database reads, on a thread of their own with their own connection.

    A read-only connection (readers never wait for the writer in WAL mode), used from that one
    thread only; the event loop hands it work and goes on serving other sessions meanwhile.
    """

    def __init__(self, database_path: Path):
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mailthreads-lookup")
        self._conn = self._thread.submit(connect, database_path).result()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(connection, *args)`` on the lookup thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, function, self._conn, *args)

    def close(self) -> None:
        self._thread.submit(self._conn.close).result()
        self._thread.shutdown()
