"""Forgetting a correspondent on request: the person (every address, merged ones too), their
discussions whole (the author's answers quote them), their mail elsewhere, outbox, quarantine
and deliveries; tombstones keep a rescan from bringing any of it back. The wiping of free
pages, index segments and the log is ``deletion.wipe_deleted_content``'s."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...timestamps import now
from ._rows import _dicts
from .deletion import delete_messages, delete_thread
from .raw_deliveries import _forget_raw_if_unused
from .tombstones import add_tombstone


@dataclass
class Forgettable:
    """Everything of one person the store holds; what ``forget`` removes."""

    correspondents: list[dict[str, Any]] = field(default_factory=list)  # id, name
    addresses: list[str] = field(default_factory=list)
    threads: list[dict[str, Any]] = field(default_factory=list)  # id, post, messages
    other_messages: list[int] = field(default_factory=list)  # theirs outside their threads
    outbox: list[int] = field(default_factory=list)  # to them, outside their threads
    quarantine: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)  # sent by them, not filed as messages

    @property
    def empty(self) -> bool:
        return not (self.correspondents or self.other_messages or self.outbox
                    or self.quarantine or self.deliveries)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _person(conn: sqlite3.Connection, address: str) -> list[int]:
    """The ids of the person who owns ``address``: the one they were merged into, and every
    correspondent merged into them (``merge_correspondent`` points them all at the last)."""
    row = conn.execute(
        """SELECT COALESCE(correspondents.merged_into, correspondents.id)
           FROM correspondent_addresses JOIN correspondents
             ON correspondents.id = correspondent_addresses.correspondent_id
           WHERE correspondent_addresses.address = ?""", (address.lower(),)).fetchone()
    if row is None:
        return []
    person = row[0]
    return [person] + [r[0] for r in conn.execute(
        "SELECT id FROM correspondents WHERE merged_into = ? ORDER BY id", (person,))]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def forgettable(conn: sqlite3.Connection, address: str) -> Forgettable:
    """What forgetting the owner of ``address`` would remove (reads only)."""
    ids = _person(conn, address)
    found = Forgettable()
    found.correspondents = _dicts(conn.execute(
        f"SELECT id, name FROM correspondents WHERE id IN ({_marks(len(ids))}) ORDER BY id",
        ids))
    found.addresses = sorted({address.lower(), *(r[0] for r in conn.execute(
        f"SELECT address FROM correspondent_addresses WHERE correspondent_id IN "
        f"({_marks(len(ids))})", ids))})
    found.threads = _dicts(conn.execute(
        f"""SELECT threads.id, posts.slug AS post,
                   (SELECT COUNT(*) FROM messages WHERE thread_id = threads.id) AS messages
            FROM threads JOIN posts ON posts.id = threads.post_id
            WHERE threads.correspondent_id IN ({_marks(len(ids))}) ORDER BY threads.id""", ids))
    addresses = found.addresses
    marks = _marks(len(addresses))
    thread_ids = [t["id"] for t in found.threads]
    # Their mail outside their threads (machine mail from them in no thread, a reply filed
    # elsewhere), and the author's messages to them there.
    found.other_messages = [r[0] for r in conn.execute(
        f"""SELECT id FROM messages
            WHERE (thread_id IS NULL OR thread_id NOT IN ({_marks(len(thread_ids))}))
              AND (lower(from_address) IN ({marks})
                   OR (direction = 'out' AND EXISTS (
                         SELECT 1 FROM json_each(messages.to_addresses) WHERE lower(value)
                         IN ({marks}) UNION ALL
                         SELECT 1 FROM json_each(messages.cc_addresses) WHERE lower(value)
                         IN ({marks}))))
            ORDER BY id""", [*thread_ids, *addresses, *addresses, *addresses])]
    found.outbox = [r[0] for r in conn.execute(
        f"""SELECT id FROM outbox WHERE lower(to_address) IN ({marks})
              AND thread_id NOT IN ({_marks(len(thread_ids))}) ORDER BY id""",
        [*addresses, *thread_ids])]
    # Quarantined mail from them, or whose bytes name them anywhere (the quarantine is small:
    # reading its raw bytes is affordable, and unparsed mail has no from_address to match).
    mentions = " OR ".join(["instr(lower(CAST(raw_messages.raw AS TEXT)), ?) > 0"] * len(addresses))
    found.quarantine = [r[0] for r in conn.execute(
        f"""SELECT quarantine.id FROM quarantine
              JOIN raw_messages ON raw_messages.sha256 = quarantine.raw_sha256
            WHERE lower(quarantine.from_address) IN ({marks}) OR {mentions}
               OR quarantine.delivery_id IN (SELECT id FROM deliveries
                                             WHERE lower(envelope_from) IN ({marks}))
            ORDER BY quarantine.id""", [*addresses, *addresses, *addresses])]
    found.deliveries = [r[0] for r in conn.execute(
        f"""SELECT id FROM deliveries WHERE lower(envelope_from) IN ({marks})
              AND raw_sha256 NOT IN (SELECT raw_sha256 FROM messages) ORDER BY id""",
        addresses)]
    return found


def forget_person(conn: sqlite3.Connection, found: Forgettable, reason: str) -> int:
    """Remove everything ``found`` lists; returns the messages deleted. Commits nothing.

    The correspondent rows stay, nameless, with no address and marked forgotten: signed reply
    addresses name a correspondent id, and a deleted id could be given to someone new (SQLite
    reuses the highest rowid), whose thread an old signed address would then reach.
    """
    deleted = sum(delete_thread(conn, thread["id"], reason, purge=True)
                  for thread in found.threads)
    deleted += delete_messages(conn, found.other_messages, reason, purge=True)
    _delete_ids(conn, "outbox", found.outbox)
    for table, ids in (("quarantine", found.quarantine), ("deliveries", found.deliveries)):
        _delete_with_raw(conn, table, ids, reason)
    ids = [person["id"] for person in found.correspondents]
    marks = _marks(len(ids))
    conn.execute(f"UPDATE threads SET possibly_same_as = NULL WHERE possibly_same_as IN ({marks})",
                 ids)
    conn.execute(f"DELETE FROM correspondent_addresses WHERE correspondent_id IN ({marks})", ids)
    conn.execute(f"UPDATE correspondents SET name = NULL, forgotten_at = ? WHERE id IN ({marks})",
                 [now(), *ids])
    return deleted


def _delete_ids(conn: sqlite3.Connection, table: str, ids: Sequence[int]) -> None:
    conn.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])


def _delete_with_raw(conn: sqlite3.Connection, table: str, ids: Sequence[int],
                     reason: str) -> None:
    """Quarantine entries or deliveries, their raw bytes (unless a kept message uses them),
    and a tombstone of those bytes, so that the mail is not received again on a rescan."""
    for entry_id in ids:
        row = conn.execute(f"SELECT raw_sha256 FROM {table} WHERE id = ?", (entry_id,)).fetchone()
        if row is None:  # went with an earlier step
            continue
        add_tombstone(conn, reason, raw_sha256=row[0])
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (entry_id,))
        _forget_raw_if_unused(conn, row[0])
