"""Reading a folder again against a real Dovecot: after the routing settings change (by itself),
on ``poll --rescan [--since DATE]``, and never bringing back what the author deleted."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

from dovecot import dovecot, dovecot_server  # noqa: F401  (pytest fixtures)
from mailfactory import message
from test_imap import JANE, Poller, make_poller, nested, reply  # noqa: F401

from mailthreads.db import open_database, store
from mailthreads.mail.analysis import analyse

DOMAIN_LINE = 'domain = "blog.example"\n'


def without_domain(poller: Poller) -> None:
    """The config as a first-time user has it: [addresses] domain still at its default."""
    text = poller.config.read_text()
    assert DOMAIN_LINE in text
    poller.config.write_text(text.replace(DOMAIN_LINE, ""))


def with_domain(poller: Poller) -> None:
    poller.config.write_text(poller.config.read_text().replace("[addresses]\n",
                                                               "[addresses]\n" + DOMAIN_LINE))


def settings(poller: Poller) -> dict:
    return json.loads(poller.rows("SELECT routing_settings FROM imap_checkpoints "
                                  "WHERE folder = 'INBOX'")[0][0])


def mailthreads(poller: Poller, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mailthreads", "-c", str(poller.config),
                           "-d", str(poller.database), *args], env=poller.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def append_on(dovecot, raw: bytes, day: str) -> None:  # noqa: F811
    """APPEND with the server's arrival date (INTERNALDATE, what SEARCH SINCE looks at)."""
    with dovecot.client() as client:
        client.append("INBOX", raw, msg_time=datetime.fromisoformat(day).replace(
            hour=12, tzinfo=UTC))


def test_poll_with_the_default_domain_then_fixed_rescans_by_itself(dovecot, make_poller):  # noqa: F811
    poller = make_poller(after="seen")
    without_domain(poller)
    dovecot.append(reply(1))
    dovecot.append(message(sender="Friend <friend@example.org>", to="me@blog.example",
                           subject="Dinner?", message_id="<dinner@example.org>"))
    dovecot.append(reply(2))

    first = poller.ok()

    assert "test INBOX: 3 new: 0 stored, 0 duplicate, 0 quarantined, 3 left alone" in first
    assert poller.messages() == []
    assert poller.checkpoint()[1] == 3
    old_flags = dovecot.flags()

    with_domain(poller)
    dovecot.append(reply(3))  # new mail since: handled as usual

    second = poller.ok()

    assert ("test INBOX: 1 new, 3 read again: 3 stored, 0 duplicate, 0 quarantined, "
            "1 left alone; 1 marked seen (read again: [addresses] domain changed since the "
            "last poll)") in second
    assert sorted(m[0] for m in poller.messages()) == [
        "r1@example.com", "r2@example.com", "r3@example.com"]
    flags = dovecot.flags()
    # The rescan touched none of the older mail; only the new reply was marked seen.
    assert {uid: flags[uid] for uid in old_flags} == old_flags
    assert flags[4] == {"\\Seen"}
    assert poller.checkpoint() == (dovecot.uidvalidity(), 4)
    assert settings(poller)["[addresses] domain"] == "blog.example"

    assert "test INBOX: nothing new" in poller.ok()  # the new settings are remembered
    assert len(poller.messages()) == 3


def test_rescan_since_refetches_only_from_that_date_and_stores_nothing_twice(
        dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    # Jane writes to the author's own address before she is a known correspondent: left alone.
    append_on(dovecot, message(sender=JANE, to="me@personal.example", subject="An old thought",
                               message_id="<old@example.com>", body="Old.\n"), "2020-03-01")
    append_on(dovecot, message(sender=JANE, to="me@personal.example", subject="A new thought",
                               message_id="<recent@example.com>", body="Recent.\n"),
              "2026-06-01")
    append_on(dovecot, reply(1), "2026-06-01")
    assert "3 new: 1 stored, 0 duplicate, 0 quarantined, 2 left alone" in poller.ok()
    dovecot.append(message(sender=JANE, message_id="<jane1@example.com>"))  # now she is known
    assert "1 new: 1 stored" in poller.ok()

    out = poller.ok("--rescan", "--since", "2026-01-01")

    assert ("test INBOX: 0 new, 1 read again: 1 stored, 0 duplicate, 0 quarantined, "
            "0 left alone (read again as asked (--rescan --since 2026-01-01); 2 filed before, "
            "not fetched again)") in out
    ids = [m[0] for m in poller.messages()]
    assert "recent@example.com" in ids and "old@example.com" not in ids
    # Nothing fetched twice: a message fetched again would leave a second delivery.
    assert poller.rows("SELECT COUNT(*) FROM deliveries") == [(len(ids),)] == [(3,)]

    out = poller.ok("--rescan")

    assert "0 new, 1 read again: 1 stored" in out and "3 filed before" in out
    assert sorted(m[0] for m in poller.messages()) == sorted(
        ["r1@example.com", "jane1@example.com", "recent@example.com", "old@example.com"])
    assert poller.rows("SELECT status, COUNT(*) FROM deliveries GROUP BY status") == [
        ("stored", 4)]


def test_rescan_since_needs_rescan(make_poller):  # noqa: F811
    done = make_poller().run("--since", "2026-01-01")
    assert done.returncode == 2
    assert "--since works only with --rescan" in done.stderr
    assert "Traceback" not in done.stderr


def test_deleted_and_tombstoned_mail_does_not_come_back(dovecot, make_poller, tmp_path):  # noqa: F811
    poller = make_poller()
    poller.config.write_text(poller.config.read_text().replace(
        "create_on_first_reply = true", "create_on_first_reply = false"))
    # Parses, but names a post that does not exist: held for review.
    unknown_post = reply(1, to="reply+no-such-post@blog.example")
    dovecot.append(unknown_post)
    dovecot.append(nested(40, "reply+why-i-blog@blog.example"))  # unparseable: quarantined
    forgotten = message(sender=JANE, message_id="<forget-me@example.com>", body="Forget me.\n")
    dovecot.append(forgotten)
    mailthreads(poller, "posts", "add", "why-i-blog")  # from now on replies to it are stored
    # What a later deleting command (threads delete, forget) does through store.add_tombstone:
    # this message never reached the database, and must never reach it.
    database = open_database(poller.database)
    store.add_tombstone(database.conn, "forget", identity_sha256=analyse(forgotten).identity_sha256)
    database.conn.commit()
    database.conn.close()

    out = poller.ok()

    assert ("3 new: 0 stored, 0 duplicate, 1 quarantined, 0 left alone, 1 held for your "
            "review, 1 deleted by you before, not filed again") in out
    assert mailthreads(poller, "quarantine", "delete", "1", "2") == "Deleted 1, 2\n"
    assert poller.rows("SELECT COUNT(*) FROM raw_messages") == [(0,)]
    assert poller.rows("SELECT COUNT(*) FROM tombstones WHERE reason = 'quarantine delete'") \
        == [(2,)]
    # Tombstones hold hashes, no content.
    assert poller.rows("SELECT raw_sha256 IS NOT NULL, identity_sha256 IS NOT NULL "
                       "FROM tombstones ORDER BY id") == [(0, 1), (1, 1), (1, 0)]

    out = poller.ok("--rescan")

    assert ("0 new, 3 read again: 0 stored, 0 duplicate, 0 quarantined, 0 left alone, "
            "3 deleted by you before, not filed again") in out
    assert poller.messages() == []
    assert poller.rows("SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert poller.rows("SELECT COUNT(*) FROM raw_messages") == [(0,)]
    assert poller.rows("SELECT COUNT(*) FROM deliveries") == [(0,)]

    # Another transport, the same filing path: a copy with other bytes (one more Received
    # line) is caught by its identity.
    copy = tmp_path / "copy.eml"
    copy.write_bytes(b"Received: from mx.example.org by blog.example; "
                     b"Wed, 25 Nov 2026 10:00:00 +0000\r\n" + unknown_post)
    explained = json.loads(mailthreads(poller, "explain", str(copy), "--json"))
    assert explained["status"] == "deleted"
    assert "deleted with quarantine delete on " in explained["reasons"][-1]
    assert "0 stored, 0 duplicate, 0 quarantined; 1 deleted by you before" in mailthreads(
        poller, "ingest", str(copy))
    assert poller.messages() == []
    assert poller.rows("SELECT COUNT(*) FROM raw_messages") == [(0,)]


def test_checkpoint_from_before_routing_settings_were_kept_is_read_again_once(
        dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    dovecot.append(reply(1))
    dovecot.append(message(sender=JANE, to="me@personal.example", subject="Hello",
                           message_id="<hello@example.com>"))
    assert "2 new: 1 stored" in poller.ok()
    # As a database migrated from schema 1 has it.
    conn = sqlite3.connect(poller.database)
    with conn:
        conn.execute("UPDATE imap_checkpoints SET routing_settings = NULL")
    conn.close()

    out = poller.ok()

    assert ("test INBOX: 0 new, 1 read again: 0 stored, 0 duplicate, 0 quarantined, "
            "1 left alone (read again once: the last poll was made by an older mailthreads "
            "that did not record the routing settings; 1 filed before, not fetched again)") in out
    assert "test INBOX: nothing new" in poller.ok()


def test_rescan_stopped_halfway_is_done_again_by_the_next_poll(dovecot, make_poller,  # noqa: F811
                                                               monkeypatch):
    from mailthreads.config import load
    from mailthreads.transport.imap.connection import FolderPlan, connect
    from mailthreads.transport.imap.sync import BATCH_MESSAGES, FolderSync

    poller = make_poller()
    without_domain(poller)
    total = BATCH_MESSAGES + 50
    dovecot.append_many(reply(n) for n in range(1, total + 1))
    assert f"{total} left alone" in poller.ok()
    with_domain(poller)
    config = load(poller.config)
    monkeypatch.setenv(dovecot.password_env, dovecot.password)
    database = open_database(poller.database)
    batches = []

    def stop_after_one_batch() -> bool:
        return len(batches) >= 1

    client = connect(config.imap[0])
    try:
        sync = FolderSync(client, database.conn, config, config.imap[0],
                          should_stop=stop_after_one_batch, before_fetch=batches.append)
        report = sync.sync(FolderPlan("INBOX", "inbox"))
    finally:
        client.logout()
    database.conn.close()
    assert report.stored == BATCH_MESSAGES
    # Until the rescan is through, the checkpoint keeps the settings it was made with.
    assert settings(poller)["[addresses] domain"] == "localhost"

    out = poller.ok()

    assert (f"0 new, 50 read again: 50 stored, 0 duplicate, 0 quarantined, 0 left alone "
            f"(read again: [addresses] domain changed since the last poll; {BATCH_MESSAGES} "
            "filed before, not fetched again)") in out
    assert len(poller.messages()) == total
    assert "test INBOX: nothing new" in poller.ok()


def test_watch_with_rescan_reads_older_mail_again_on_its_first_catch_up(dovecot, make_poller):  # noqa: F811
    from test_imap import stop, wait_for

    poller = make_poller()
    dovecot.append(message(sender=JANE, to="me@personal.example", subject="Before",
                           message_id="<before@example.com>"))
    assert "1 left alone" in poller.ok()
    dovecot.append(message(sender=JANE, message_id="<jane1@example.com>"))
    assert "1 stored" in poller.ok()

    process = poller.start("--watch", "--rescan")
    try:
        wait_for(lambda: len(poller.messages()) == 2, "the rescan", process)
        dovecot.append(reply(2))
        wait_for(lambda: len(poller.messages()) == 3, "new mail while watching", process)
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert "0 new, 1 read again: 1 stored" in out and "(--rescan)" in out
    inbox = [line for line in out.splitlines() if line.startswith("test INBOX")]
    assert ["read again" in line for line in inbox] == [True, False]  # the first catch-up only
    assert poller.rows("SELECT COUNT(*) FROM deliveries") == [(3,)]
