"""Which envelope recipients the SMTP listener accepts, decided at RCPT time.

Refusing at RCPT (rather than accepting and quarantining) makes the sending server bounce the
message to its sender, who learns at once that the address is wrong, and keeps mailthreads from
ever being an open relay. The answers are SMTP reply lines, as aiosmtpd handler hooks return.
"""

from __future__ import annotations

import sqlite3

from .. import store
from ..config import Config
from ..ingest import thread_for_token
from ..mail.routing import is_own_domain, parse_reply_address

ACCEPTED = "250 2.1.5 OK"


def check_recipient(conn: sqlite3.Connection, config: Config, address: str) -> str:
    """The reply to ``RCPT TO:<address>``: ``250`` for this blog's reply addresses, else ``550``.

    Reads the database only when it has to: for signed addresses, and for unknown posts when
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
    if reply_address.token is not None:
        # A signed address names one thread; a token that does not verify is a forgery or
        # an address from before the secret was changed. Either way: refuse it, never file it.
        if thread_for_token(conn, config, reply_address.slug, reply_address.token) is None:
            return f"550 5.7.1 <{address}>: reply address signature does not verify"
        return ACCEPTED
    if config.listener.known_posts_only and store.post_by_slug(conn, reply_address.slug) is None:
        return f"550 5.1.1 <{address}>: no such post"
    return ACCEPTED
