"""The way out: every answer is committed to the outbox, then sent, at most once.

1. ``queue`` commits the composed bytes before anything touches the network, so a relay that is
   down costs a retry, never the author's text.
2. ``deliver`` claims the entry (``sending``, committed) before it connects, so two processes
   cannot both send it, and a crash mid-send leaves it marked as possibly sent, not pending.
   The relay's verdict then makes it ``sent`` or ``failed`` (retried by ``outbox send``).
3. A sent answer is filed into its thread through the ordinary pipeline (source ``cli``), and,
   when IMAP is configured, appended to the Sent folder; the poller later meets that copy and
   finds it already stored (same Message-ID, sender and body), so nothing is filed twice.
"""

from __future__ import annotations

import sqlite3
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from ..config import Config, ImapAccount, Outgoing
from ..db import store
from ..mail import compose
from ..mail.records import ThreadMessage
from ..mail.routing import reply_address
from ..timestamps import iso
from ..tokens import make_token
from . import relay

SENT_FOLDER_FALLBACK = "Sent"


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to; ``text`` is the one line the user reads."""

    entry_id: int
    status: str  # sent, failed, sending (outcome unknown), skipped
    text: str
    thread: int | None = None
    sent_copy: str | None = None  # where the Sent copy went, or why it did not
    # For a failure: would trying again later help (the relay is down), or must a setting
    # change first (a certificate, TLS on a plain port, a refused login)? Decides 75 or 1.
    temporary: bool = True

    @property
    def ok(self) -> bool:
        return self.status == "sent"


def reply_problems(config: Config, *, sending: bool) -> list[str]:
    """Everything in the config that would stop an answer, found before the author writes a
    word (and by ``config check``)."""
    found = []
    if not config.secret:
        found.append("no secret for signed reply addresses: set [addresses] secret "
                     "('mailthreads init' writes one) or MAILTHREADS_SECRET")
    if not config.author.addresses:
        found.append("no [author] addresses in the config: answers go out from the first one")
    if sending:
        found.extend(relay.problems(config.outgoing))
    return found


def draft_reply(config: Config, thread: store.Thread, messages: list[ThreadMessage],
                answered: ThreadMessage) -> compose.Reply:
    """The headers of an answer to ``answered`` in ``thread`` (rows from the store).

    Raises ``compose.UnsafeHeader`` when a stored message id carries a line break.
    """
    to_name, to_address = compose.recipient(
        messages, answered,
        (thread.correspondent_name or "", thread.correspondent_address or ""))
    token = make_token(config.secret or "", thread.post, thread.correspondent_id)
    parent = compose.usable_message_id(answered.message_id, answered.synthetic_message_id)
    return compose.Reply(
        from_name=config.author.name,
        from_address=config.author.addresses[0],
        to_name=to_name,
        to_address=to_address,
        subject=answered.subject or thread.subject or "",
        reply_to=reply_address(thread.post, config.addresses, token),
        message_id=compose.new_message_id(config.addresses.domain),
        date=datetime.now(UTC),
        in_reply_to=parent,
        references=compose.thread_references(parent, answered.references),
    )


def queue(conn: sqlite3.Connection, *, thread_id: int, message_id: str,
          in_reply_to: str | None, to_address: str, subject: str, body: str,
          raw: bytes, draft: bool = False) -> int:
    """Commit an answer to the outbox; from here on it survives any failure. A ``draft``
    waits for the author: only ``outbox send ID`` sends it."""
    entry_id = store.add_outbox(conn, thread_id=thread_id, message_id=message_id,
                                in_reply_to=in_reply_to, to_address=to_address,
                                subject=subject, body=body, raw=raw,
                                status="draft" if draft else "pending")
    conn.commit()
    return entry_id


def deliver(conn: sqlite3.Connection, config: Config, entry_id: int, *, force: bool = False,
            named: bool = False, context: ssl.SSLContext | None = None) -> SendResult:
    """Send one outbox entry if it is pending or failed (``force``: also if maybe sent;
    ``named``: the author named it, so a draft goes too)."""
    states = (*store.OUTBOX_RETRYABLE, "sending") if force else store.OUTBOX_RETRYABLE
    if named:
        states = (*states, "draft")
    entry = store.outbox_entry(conn, entry_id)
    claimed = store.claim_outbox(conn, entry_id, states)
    conn.commit()
    if not claimed:
        return SendResult(entry_id, "skipped", _why_not(entry), entry["thread_id"])

    raw = entry["raw"]
    problems = relay.problems(config.outgoing)
    if problems or config.outgoing is None:
        return _failed(conn, entry, problems[0] if problems else "no [outgoing] section",
                       temporary=False)
    try:
        sender = envelope_sender(raw)
        sent = relay.send(config.outgoing, raw, sender, [entry["to_address"]], context=context)
    except relay.RelayError as error:
        if error.maybe_sent:
            store.finish_outbox(conn, entry_id, "sending", str(error))
            conn.commit()
            return SendResult(entry_id, "sending", f"reply {entry_id}: {error}. Check the "
                            f"recipient's copy or your relay's log; to send it again anyway: "
                            f"mailthreads outbox send --force {entry_id}", entry["thread_id"])
        return _failed(conn, entry, str(error), temporary=error.temporary)
    except ValueError as error:
        return _failed(conn, entry, str(error), temporary=False)

    store.finish_outbox(conn, entry_id, "sent")
    conn.commit()
    text = f"reply {entry_id} sent to {entry['to_address']} via {sent.relay} ({sent.response})"
    thread = entry["thread_id"]
    try:
        thread = _file_answer(conn, config, entry)
    except Exception as error:  # sent is sent: say so; the poller files the Sent copy later
        conn.rollback()
        text += f"; not filed in its thread ({_one_line(error)})"
    copy = save_sent_copy(conn, config, entry_id, raw)
    return SendResult(entry_id, "sent", text, thread, copy)


def deliver_all(conn: sqlite3.Connection, config: Config, ids: Sequence[int] | None = None, *,
                force: bool = False, every_age: bool = False,
                context: ssl.SSLContext | None = None) -> list[SendResult]:
    """Send the pending and failed entries (or those named), then the owed Sent copies.

    Without ``ids`` (cron's 'outbox send'), answers written longer ago than the [outgoing]
    retry window wait for the author, unless ``every_age``."""
    # Named entries are looked at even when sent, so that the user hears why nothing happened.
    entries = store.outbox_entries(conn, ids=ids, include_sent=True) if ids \
        else store.outbox_entries(conn)
    results = []
    window = (config.outgoing or Outgoing()).retry_window_hours
    oldest = iso(datetime.now(UTC) - timedelta(hours=window))
    for entry in entries:
        if not ids and entry["status"] == "draft":
            continue  # a draft goes only when the author names it
        if not ids and not every_age and entry["status"] in store.OUTBOX_RETRYABLE \
                and entry["created_at"] < oldest:
            results.append(SendResult(
                entry["id"], "skipped",
                f"reply {entry['id']} was written {entry['created_at'][:16].replace('T', ' ')} "
                f"UTC, more than {window:g} hours ago: it waits for you, not sent "
                f"('mailthreads outbox send {entry['id']}' sends it, "
                f"'outbox cancel {entry['id']}' drops it)", entry["thread_id"]))
            continue
        results.append(deliver(conn, config, entry["id"], force=force, named=bool(ids),
                               context=context))
    if not ids:
        tried = {result.entry_id for result in results}  # their copy was just attempted
        for owed in store.unsaved_sent_copies(conn):
            if owed["id"] in tried:
                continue
            note = save_sent_copy(conn, config, owed["id"], owed["raw"])
            if note:
                results.append(SendResult(owed["id"], "sent", f"reply {owed['id']}: {note}"))
    return results


def envelope_sender(raw: bytes) -> str:
    """The From address of a composed message: the bytes are what was queued, so they decide."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    addresses = getattr(headers["From"], "addresses", ())
    if len(addresses) != 1 or not addresses[0].addr_spec:
        raise ValueError("the queued message has no single From address")
    return addresses[0].addr_spec


def _failed(conn: sqlite3.Connection, entry: dict, error: str, *,
            temporary: bool) -> SendResult:
    store.finish_outbox(conn, entry["id"], "failed", error)
    conn.commit()
    return SendResult(entry["id"], "failed", f"reply {entry['id']} not sent: {error}",
                    entry["thread_id"], temporary=temporary)


def _why_not(entry: dict) -> str:
    if entry["status"] == "sent":
        return f"reply {entry['id']} was sent already ({entry['sent_at']}): not sending it again"
    if entry["status"] == "sending":
        why = entry["last_error"] or "an attempt is running or was interrupted"
        return (f"reply {entry['id']} may have been sent already ({why}); to send it again "
                f"anyway: mailthreads outbox send --force {entry['id']}")
    return f"reply {entry['id']} is {entry['status']}: not sent"


def _file_answer(conn: sqlite3.Connection, config: Config, entry: dict) -> int | None:
    """File the sent answer into its thread, as if it had come back from the Sent folder."""
    from ..ingest import Pipeline

    outcome = Pipeline(conn, config).accept(entry["raw"], "cli", origin=f"outbox {entry['id']}",
                                            post_hint=entry["post"])
    return outcome.thread if outcome.thread is not None else entry["thread_id"]


# The copy in Sent ---------------------------------------------------------------------------


def sent_copy_account(config: Config, sender: str) -> ImapAccount | None:
    """The IMAP account that keeps the author's Sent folder: the one logging in as the sender,
    else the first configured. None when there is none or the copy is not wanted."""
    if config.outgoing is None or not config.outgoing.save_to_sent or not config.imap:
        return None
    for account in config.imap:
        if account.username.lower() == sender.lower():
            return account
    return config.imap[0]


def save_sent_copy(conn: sqlite3.Connection, config: Config, entry_id: int,
                   raw: bytes) -> str | None:
    """Append the sent answer to Sent and record it; returns a note for the user, or None."""
    try:
        account = sent_copy_account(config, envelope_sender(raw))
    except ValueError:
        account = None
    if account is None:
        store.set_saved_to_sent(conn, entry_id, None)
        conn.commit()
        return None
    try:
        folder = append_to_sent(account, raw)
    except Exception as error:  # any IMAP trouble: the answer is sent; the copy is retried
        conn.commit()
        return (f"copy to the Sent folder of {account.name} failed ({_one_line(error)}); "
                "'mailthreads outbox send' tries again")
    store.set_saved_to_sent(conn, entry_id, True)
    conn.commit()
    return f"copy saved to {account.name}/{folder}"


def append_to_sent(account: ImapAccount, raw: bytes) -> str:
    """APPEND ``raw`` (marked \\Seen) to the account's Sent folder; returns the folder name.

    Connects exactly as the poller does (TLS settings, ``tls_ca_file``, STARTTLS check, login).
    """
    from imapclient.imapclient import SEEN, SENT

    from ..transport.imap import connection as imap


    with imap.session(account) as client:
        folder = account.sent_folder or client.find_special_folder(SENT) \
            or SENT_FOLDER_FALLBACK
        client.append(folder, raw, flags=(SEEN,), msg_time=_date_of(raw))
        return folder


def _date_of(raw: bytes) -> datetime | None:
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    try:
        return parsedate_to_datetime(str(headers["Date"]))
    except (TypeError, ValueError):
        return None


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())
