"""'mailthreads digest': mail the author the replies no digest has listed yet, grouped by
thread with their visible text, through the [outgoing] relay. A digest is recorded (and its
replies marked) only after the relay accepted it: a relay that is down costs a retry at the
next run, never a reply, and nothing is listed twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from itertools import groupby
from typing import Any

from ..config import Config
from ..db import store
from ..mail.compose import new_message_id
from ..printable import neutralise
from . import relay

# One digest lists at most this many replies; the rest go in the next one.
MAX_REPLIES = 500


def problems(config: Config) -> list[str]:
    """What stops a digest before anything is read."""
    found = []
    if not config.notify.digest:
        found.append("no [notify] digest in the config: set it to true (mail the first "
                     "[author] address) or to the address to mail")
    found.extend(relay.problems(config.outgoing))
    return found


def pending(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return store.undigested_replies(conn)[:MAX_REPLIES]


def compose(config: Config, replies: Sequence[dict[str, Any]], moment: datetime) -> bytes:
    """The digest as it goes on the wire; every text from mail is neutralised first."""
    recipient = config.notify.digest or ""
    threads = [list(group) for _, group in groupby(replies, key=lambda r: r["thread"])]
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = (config.author.addresses or (recipient,))[0]
    message["To"] = recipient
    message["Subject"] = (f"mailthreads: {len(replies)} new "
                          f"{'reply' if len(replies) == 1 else 'replies'} in {len(threads)} "
                          f"{'discussion' if len(threads) == 1 else 'discussions'}")
    message["Date"] = format_datetime(moment.astimezone(UTC))
    message["Message-ID"] = f"<{new_message_id(recipient.rpartition('@')[2] or 'localhost')}>"
    # Machine mail: a poller that meets it in the author's mailbox never files it as a reply.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text(replies), charset="utf-8", cte="quoted-printable")
    return message.as_bytes()


def text(replies: Sequence[dict[str, Any]]) -> str:
    """The digest's body: each discussion with its new replies' visible text."""
    return "\n".join(_thread_text(list(group))
                     for _, group in groupby(replies, key=lambda r: r["thread"]))


def _thread_text(replies: list[dict[str, Any]]) -> str:
    first = replies[0]
    lines = [f"== Thread {first['thread']} about {first['post'] or '(no post)'}: "
             f"{neutralise(first['subject'] or '', multiline=False)}", ""]
    for reply in replies:
        who = reply["from_address"]
        if reply["from_name"]:
            who = f"{reply['from_name']} <{who}>"
        lines.append(f"From {neutralise(who, multiline=False)}, {reply['received_at']}:")
        lines.extend(f"  {line}" for line in
                     neutralise(reply["visible_text"] or "").splitlines() or ["(no text)"])
        lines.append("")
    lines.append(f"Read and answer: mailthreads show {first['thread']}")
    return "\n".join(lines) + "\n"


def send(conn: sqlite3.Connection, config: Config,
         replies: Sequence[dict[str, Any]]) -> relay.Sent:
    """Mail ``replies`` and record them as listed; raises ``relay.RelayError``."""
    assert config.outgoing is not None and config.notify.digest
    raw = compose(config, replies, datetime.now(UTC))
    sender = (config.author.addresses or (config.notify.digest,))[0]
    sent = relay.send(config.outgoing, raw, sender, [config.notify.digest])
    with conn:
        store.record_digest(conn, config.notify.digest, [r["id"] for r in replies],
                            sent.response)
    return sent
