"""Messages and their attachments: the filed record, and the reads of a thread's messages."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ...mail.records import ThreadMessage
from ._rows import NotFound, _dict, _dicts, _one


class MessageRow(NamedTuple):
    """A message as ``show`` reads it: one field per column read, lists decoded."""

    id: int
    message_id: str
    parent_message_id: str | None
    direction: str
    kind: str
    from_name: str | None
    from_address: str | None
    to_addresses: list[str]
    subject: str | None
    date: str | None
    visible_text: str | None
    quoted_text: str | None
    signature: str | None
    source: str
    is_read: int  # 0/1, as stored (and as ``show --json`` has always printed it)
    message_id_reused: int
    kind_reasons: list[str]


# Columns holding a JSON array of strings.
_JSON_COLUMNS = frozenset({"kind_reasons", "to_addresses", "cc_addresses", "references"})


def _decoded(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    return {name: json.loads(value or "[]") if name in _JSON_COLUMNS else value
            for name, value in zip(names, row, strict=True)}


def _column_list(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _thread_rows(conn: sqlite3.Connection, thread_id: int,
                 names: Sequence[str]) -> list[dict[str, Any]]:
    """Columns ``names`` of a thread's messages, oldest first, lists decoded."""
    rows = conn.execute(
        f"SELECT {_column_list(names)} FROM messages WHERE thread_id = ? ORDER BY date, id",
        (thread_id,),
    ).fetchall()
    return [_decoded(names, row) for row in rows]


def thread_messages(conn: sqlite3.Connection, thread_id: int) -> list[MessageRow]:
    return [MessageRow(**values) for values in _thread_rows(conn, thread_id, MessageRow._fields)]


def reply_candidates(conn: sqlite3.Connection, thread_id: int) -> list[ThreadMessage]:
    """A thread's messages, oldest first, with what an answer to each one needs."""
    return [_thread_message(values)
            for values in _thread_rows(conn, thread_id, ThreadMessage._fields)]


def _thread_message(values: dict[str, Any]) -> ThreadMessage:
    text = {name: values[name] or "" for name in
            ("from_name", "from_address", "subject", "visible_text")}
    return ThreadMessage(**{**values, **text,
                            "kind_reasons": tuple(values["kind_reasons"]),
                            "references": tuple(values["references"]),
                            "synthetic_message_id": bool(values["synthetic_message_id"])})


# What FTS5 indexes (messages_fts), for the terms it cannot find.
_SEARCHED_COLUMNS = ("messages.subject", "messages.visible_text", "messages.from_name",
                     "messages.from_address")


def find_messages(conn: sqlite3.Connection, *, match: str | None, from_: str | None = None,
                  post: str | None = None, after: str | None = None,
                  before: str | None = None, state: str | None = None,
                  kind: str | None = None, contains: Sequence[str] = (),
                  limit: int = 50) -> list[dict[str, Any]]:
    """Messages matching an FTS5 expression and/or filters, the last stored first (as notmuch
    lists newest first): FTS5 then walks its index backwards and stops at ``limit``, where
    ranking by relevance would score every match (250 ms for "the" in 100,000 messages).
    ``from_`` is a part of the sender's address or name; ``after``/``before`` ISO 8601 UTC;
    ``contains``: text the subject, the visible text or the sender's name or address must
    hold, each, in any case of ASCII letters as FTS5 matches them (a scan: for the scripts
    the full-text index cannot cut into words)."""
    where: list[str] = []
    params: list[Any] = []
    if match is not None:
        where.append("messages_fts MATCH ?")
        params.append(match)
    for text in contains:
        where.append("(" + " OR ".join(
            f"instr(lower({column}), lower(?))" for column in _SEARCHED_COLUMNS) + ")")
        params += [text] * len(_SEARCHED_COLUMNS)
    for condition, value in (
        ("(messages.from_address LIKE ? ESCAPE '\\' OR messages.from_name LIKE ? ESCAPE '\\')",
         from_),
        ("posts.slug = ?", post), ("messages.date >= ?", after), ("messages.date < ?", before),
        ("threads.state = ?", state), ("messages.kind = ?", kind),
    ):
        if value is not None:
            where.append(condition)
            if condition.startswith("(messages.from_address"):
                pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace(
                    "_", "\\_") + "%"
                params += [pattern, pattern]
            else:
                params.append(value)
    snippet = "substr(replace(messages.visible_text, char(10), ' '), 1, 80)"
    if match is not None:
        snippet = "snippet(messages_fts, 1, '[', ']', '…', 12)"
    elif contains:
        # From a little before the first match, which is marked as FTS5 marks its own.
        start = "max(1, instr(messages.visible_text, ?) - 20)"
        snippet = (f"replace(substr(replace(messages.visible_text, char(10), ' '), {start}, "
                   "80), ?, '[' || ? || ']')")
        params = [contains[0], contains[0], contains[0], *params]
    source = ("messages_fts JOIN messages ON messages.id = messages_fts.rowid"
              if match is not None else "messages")
    order = "messages_fts.rowid DESC" if match is not None else "messages.id DESC"
    return _dicts(conn.execute(
        f"""SELECT messages.id, messages.thread_id AS thread, posts.slug AS post,
                   messages.from_name, messages.from_address, messages.subject, messages.date,
                   messages.kind, {snippet} AS snippet
            FROM {source}
            LEFT JOIN posts ON posts.id = messages.post_id
            LEFT JOIN threads ON threads.id = messages.thread_id
            WHERE {' AND '.join(where) or '1'}
            ORDER BY {order} LIMIT ?""",
        (*params, limit),
    ))


def message_by_identity(conn: sqlite3.Connection, identity_sha256: str) -> dict[str, Any] | None:
    return _dict(conn.execute(
        "SELECT id, message_id, thread_id, post_id, kind FROM messages WHERE identity_sha256 = ?",
        (identity_sha256,),
    ))


def message_id_known(conn: sqlite3.Connection, message_id: str) -> bool:
    return _one(conn, "SELECT 1 FROM messages WHERE message_id = ? LIMIT 1", (message_id,)) == 1


def known_message_ids(conn: sqlite3.Connection, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` name stored messages (for mail the parser could not read)."""
    return {message_id for message_id in message_ids if message_id_known(conn, message_id)}


def first_known_message(conn: sqlite3.Connection,
                        message_ids: Iterable[str]) -> dict[str, Any] | None:
    """The first of ``message_ids`` (in the order given) that names a stored message."""
    for message_id in message_ids:
        row = _dict(conn.execute(
            """SELECT id, message_id, thread_id, post_id, direction, kind, from_address
               FROM messages WHERE message_id = ? ORDER BY id LIMIT 1""",
            (message_id,),
        ))
        if row:
            return row
    return None


class NewMessage(NamedTuple):
    """A message as filed: one field per column of ``messages`` but ``id`` and
    ``received_at`` (stamped by ``insert_message``). The INSERT is made from these fields, so a
    new column is a field here and a step in the migrations."""

    message_id: str
    synthetic_message_id: bool
    message_id_reused: bool
    thread_id: int | None
    post_id: int | None
    parent_message_id: str | None
    direction: str
    kind: str
    kind_reasons: Sequence[str]
    from_name: str
    from_address: str
    to_addresses: Sequence[str]
    cc_addresses: Sequence[str]
    subject: str
    date: str
    in_reply_to: str | None
    references: Sequence[str]
    visible_text: str
    quoted_text: str
    signature: str
    body_text: str
    body_html: str
    source: str
    raw_sha256: str
    identity_sha256: str
    is_read: bool
    # The spam verdict (issue 12): ham, unscanned, released; None for the author's messages.
    # The pipeline fills these from ``ingest.screening.Screening.verdict``.
    spam_verdict: str | None = None
    spam_score: float | None = None
    verdict_source: str | None = None


_INSERT_MESSAGE = (f"INSERT INTO messages ({_column_list((*NewMessage._fields, 'received_at'))}) "
                   f"VALUES ({', '.join('?' * (len(NewMessage._fields) + 1))})")


def _stored(name: str, value: Any) -> Any:
    """A field as its column holds it: lists as JSON arrays, flags as 0/1."""
    if name in _JSON_COLUMNS:
        return json.dumps(list(value))
    return int(value) if isinstance(value, bool) else value


def insert_message(conn: sqlite3.Connection, message: NewMessage, received_at: str) -> int:
    values = [_stored(name, value) for name, value in message._asdict().items()]
    cursor = conn.execute(_INSERT_MESSAGE, (*values, received_at))
    return int(cursor.lastrowid or 0)


def add_attachment(conn: sqlite3.Connection, message_row_id: int, filename: str,
                   content_type: str, content: bytes, sha256: str) -> None:
    conn.execute(
        """INSERT INTO attachments (message_id, filename, content_type, size, sha256, content)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (message_row_id, filename, content_type, len(content), sha256, content),
    )


def attachments_of(conn: sqlite3.Connection, message_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The attachments of these messages (rows of ``messages.id``), without their content."""
    if not message_ids:
        return []
    return _dicts(conn.execute(
        f"""SELECT id, message_id, filename, content_type, size, sha256 FROM attachments
            WHERE message_id IN ({', '.join('?' * len(message_ids))}) ORDER BY id""",
        list(message_ids)))


def attachment_contents(conn: sqlite3.Connection, message_id: int) -> list[dict[str, Any]]:
    """One message's attachments with their bytes; NotFound if there is no such message."""
    if _one(conn, "SELECT 1 FROM messages WHERE id = ?", (message_id,)) is None:
        raise NotFound(f"no message {message_id}")
    return _dicts(conn.execute(
        "SELECT id, filename, content_type, size, content FROM attachments "
        "WHERE message_id = ? ORDER BY id", (message_id,)))


def bounced_threads(conn: sqlite3.Connection,
                    thread_ids: Sequence[int] | None = None) -> set[int]:
    """Which of these threads (all, when None) hold a bounce of any kind: a cheap look first,
    so that listings without bounces pay for nothing more."""
    if thread_ids is None:
        return {row[0] for row in conn.execute(
            "SELECT DISTINCT thread_id FROM messages WHERE kind = 'bounce' "
            "AND thread_id IS NOT NULL")}
    if not thread_ids:
        return set()
    return {row[0] for row in conn.execute(
        f"""SELECT DISTINCT thread_id FROM messages WHERE kind = 'bounce'
            AND thread_id IN ({', '.join('?' * len(thread_ids))})""", list(thread_ids))}


def undelivered_answers(conn: sqlite3.Connection, delay_reason: str,
                        thread_ids: Sequence[int] | None = None) -> dict[int, dict[str, Any]]:
    """{thread id: the newest of its answers that a permanent bounce reports undelivered}.

    A bounce is permanent unless classification put ``delay_reason`` (classify's
    TEMPORARY_FAILURE) among its ``kind_reasons``.

    Derived from the messages, no state of its own: a bounce names the answer it concerns by
    its parent (when the notice carried In-Reply-To/References), else it concerns the newest
    answer received before it. An answer written after the bounce settles it: the author has
    written again. Each row: ``thread_id``, ``answer_date``, ``bounce_id``, ``bounce_raw_sha256``.
    """
    where = ""
    params: list[Any] = [delay_reason]
    if thread_ids is not None:
        if not thread_ids:
            return {}
        where = f"AND bounce.thread_id IN ({', '.join('?' * len(thread_ids))})"
        params.extend(thread_ids)
    rows = _dicts(conn.execute(
        f"""SELECT bounce.thread_id, bounce.id AS bounce_id,
                   bounce.raw_sha256 AS bounce_raw_sha256, bounce.received_at AS bounced_at,
                   COALESCE(
                     (SELECT date FROM messages AS answer
                       WHERE answer.thread_id = bounce.thread_id AND answer.direction = 'out'
                         AND answer.message_id = bounce.parent_message_id),
                     (SELECT date FROM messages AS answer
                       WHERE answer.thread_id = bounce.thread_id AND answer.direction = 'out'
                         AND answer.kind = 'reply'
                         AND (answer.received_at, answer.id) < (bounce.received_at, bounce.id)
                       ORDER BY answer.received_at DESC, answer.id DESC LIMIT 1)) AS answer_date
            FROM messages AS bounce
            WHERE bounce.kind = 'bounce' AND bounce.thread_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM json_each(bounce.kind_reasons) WHERE value = ?)
              AND NOT EXISTS (SELECT 1 FROM messages AS later
                               WHERE later.thread_id = bounce.thread_id
                                 AND later.direction = 'out' AND later.kind = 'reply'
                                 AND (later.received_at, later.id)
                                     > (bounce.received_at, bounce.id))
              {where}
            ORDER BY bounce.received_at, bounce.id""", params))
    return {row["thread_id"]: row for row in rows if row["answer_date"] is not None}


def delayed_answers(conn: sqlite3.Connection, thread_id: int,
                    delay_reason: str) -> list[dict[str, Any]]:
    """The delay warnings filed in a thread (bounces with ``delay_reason``), oldest first."""
    return _dicts(conn.execute(
        """SELECT id, received_at FROM messages
           WHERE thread_id = ? AND kind = 'bounce'
             AND EXISTS (SELECT 1 FROM json_each(kind_reasons) WHERE value = ?)
           ORDER BY received_at, id""", (thread_id, delay_reason)))


def thread_raw_messages(conn: sqlite3.Connection, thread_id: int) -> list[dict[str, Any]]:
    """The exact bytes of a thread's messages, oldest first (as ``thread_messages``), with
    the sender and date an mbox ``From `` line needs."""
    return _dicts(conn.execute(
        """SELECT messages.id, messages.from_address, messages.date, raw_messages.raw
           FROM messages JOIN raw_messages ON raw_messages.sha256 = messages.raw_sha256
           WHERE messages.thread_id = ? ORDER BY messages.date, messages.id""",
        (thread_id,)))
