"""The IMAP poller against a real Dovecot (see dovecot.py): mail goes in with IMAP APPEND, the
poller runs as ``mailthreads poll`` in a subprocess, and the database and the server are then
looked at directly.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from dovecot import Mailbox, dovecot, dovecot_server, remove, start_dovecot  # noqa: F401
from mailfactory import bounce_of, message

from mailthreads.lock import hold, lock_path_for

BASE_CONFIG = """\
[addresses]
domain = "blog.example"

[author]
name = "Blog Author"
addresses = ["me@blog.example", "me@personal.example"]

[posts]
create_on_first_reply = true  # replies create their post (the default holds them)
"""
AUTHOR = "Blog Author <me@blog.example>"
JANE = "Jane Reader <jane@example.com>"
# Seconds a live (--watch) effect may take before a test calls it missing; generous, since on a
# loaded 2-core machine the watcher, its analysis workers and Dovecot share the CPU.
DEADLINE = 60.0


@dataclass
class Poller:
    """``mailthreads poll`` with one config and one database."""

    config: Path
    database: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mailthreads", "-c", str(self.config),
                "-d", str(self.database), "poll", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), env=self.env, capture_output=True,
                              text=True, timeout=180, stdin=subprocess.DEVNULL)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Query the database; no rows while it does not exist or its schema is being made."""
        if not self.database.exists():
            return []
        conn = sqlite3.connect(self.database, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []
            raise
        finally:
            conn.close()

    def delivered(self) -> int:
        """How many deliveries are committed."""
        found = self.rows("SELECT COUNT(*) FROM deliveries")
        return found[0][0] if found else 0

    def messages(self) -> list[tuple]:
        """(message_id, direction, post slug, thread_id) of every stored message."""
        return self.rows(
            "SELECT message_id, direction, posts.slug, thread_id FROM messages "
            "LEFT JOIN posts ON posts.id = messages.post_id ORDER BY messages.id")

    def checkpoint(self, folder: str = "INBOX", account: str = "test") -> tuple | None:
        found = self.rows("SELECT uidvalidity, last_uid FROM imap_checkpoints "
                          "WHERE account = ? AND folder = ?", (account, folder))
        return found[0] if found else None


MakePoller = Callable[..., Poller]


@pytest.fixture
def make_poller(tmp_path: Path, dovecot: Mailbox) -> MakePoller:  # noqa: F811
    """A poller for the test's mailbox; keyword arguments become keys of its [[imap]] table,
    ``extra`` is appended to the config, ``accounts`` replaces the [[imap]] tables."""

    def make(extra: str = "", accounts: str | None = None, **account: object) -> Poller:
        config = tmp_path / "config.toml"
        tables = accounts if accounts is not None else dovecot.account_toml(**account)
        config.write_text(BASE_CONFIG + extra + "\n" + tables)
        return Poller(config, tmp_path / "mail.db", dovecot.env)

    return make


def reply(number: int, **fields: object) -> bytes:
    values: dict = {"sender": f"Reader {number} <reader{number}@example.com>",
                    "to": "reply+why-i-blog@blog.example",
                    "message_id": f"<r{number}@example.com>", "subject": "Re: Why I blog",
                    "body": f"Reply number {number}.\n", "minutes": number}
    values.update(fields)
    return message(**values)


# Filing, and leaving the rest alone -----------------------------------------------------------


def test_new_replies_are_filed_unrelated_mail_left_alone_and_second_poll_fetches_nothing(
        dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    dovecot.append(message(sender=JANE, message_id="<jane1@example.com>"))
    dovecot.append(message(sender="Shop <news@shop.example>", to="me@personal.example",
                           subject="50% off", message_id="<ad@shop.example>"))
    # Jane, now a known correspondent, writes to the author's personal address.
    dovecot.append(message(sender=JANE, to="me@personal.example", subject="One more thought",
                           message_id="<jane2@example.com>", body="Also: RSS!\n", minutes=5))
    # Someone answers the stored reply, writing to the author's address: a reference to a
    # known message.
    dovecot.append(message(sender="Bob <bob@example.net>", to="me@blog.example",
                           subject="Re: Why I blog", message_id="<bob1@example.net>",
                           in_reply_to="<jane1@example.com>", minutes=6))
    dovecot.append(message(sender="Friend <friend@example.org>", to="me@personal.example",
                           subject="Dinner?", message_id="<dinner@example.org>", minutes=7))
    before = dovecot.flags()

    out = poller.ok()

    assert "test INBOX: 5 new: 3 stored, 0 duplicate, 0 quarantined, 2 left alone" in out
    stored = poller.messages()
    assert [(m[0], m[1], m[2]) for m in stored] == [
        ("jane1@example.com", "in", "why-i-blog"),
        ("jane2@example.com", "in", "why-i-blog"),
        ("bob1@example.net", "in", "why-i-blog"),
    ]
    assert stored[0][3] == stored[1][3] != stored[2][3]  # Jane's thread; Bob has his own
    # Left alone means not stored at all: no raw bytes, no delivery, no quarantine entry.
    assert poller.rows("SELECT COUNT(*) FROM raw_messages") == [(3,)]
    assert poller.rows("SELECT COUNT(*) FROM deliveries") == [(3,)]
    assert poller.rows("SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert poller.rows("SELECT DISTINCT source FROM messages") == [("imap",)]
    assert dovecot.flags() == before  # BODY.PEEK[] and EXAMINE: not even \Seen
    assert poller.checkpoint() == (dovecot.uidvalidity(), 5)

    again = poller.ok()
    assert "test INBOX: nothing new" in again
    assert len(poller.messages()) == 3
    assert poller.rows("SELECT COUNT(*) FROM deliveries") == [(3,)]


def test_after_seen_flags_only_what_was_filed(dovecot, make_poller):  # noqa: F811
    poller = make_poller(after="seen")
    mine = dovecot.append(reply(1))
    other = dovecot.append(message(sender="Friend <friend@example.org>", to="me@blog.example",
                                   subject="Dinner?", message_id="<dinner@example.org>"))
    flagged = dovecot.append(reply(2), flags=[b"\\Flagged"])

    out = poller.ok()

    assert "2 marked seen" in out
    flags = dovecot.flags()
    assert flags[mine] == {"\\Seen"}
    assert flags[other] == set()
    assert flags[flagged] == {"\\Seen", "\\Flagged"}


def test_after_move_moves_filed_mail_by_uid_and_creates_the_folder(dovecot, make_poller):  # noqa: F811
    poller = make_poller(after="move:Archive/Replies")
    dovecot.append(reply(1))
    dovecot.append(message(sender="Friend <friend@example.org>", to="me@blog.example",
                           subject="Dinner?", message_id="<dinner@example.org>"))
    dovecot.append(reply(2))

    out = poller.ok()

    assert "2 moved to Archive/Replies" in out
    remaining = dovecot.fetch_all("INBOX")
    assert [b"<dinner@example.org>" in raw for raw in remaining.values()] == [True]
    moved = dovecot.fetch_all("Archive/Replies")
    assert sorted(raw.split(b"Message-ID: ")[1][:16] for raw in moved.values()) == [
        b"<r1@example.com>", b"<r2@example.com>"]
    assert len(poller.messages()) == 2
    assert "nothing new" in poller.ok()


# The Sent folder ------------------------------------------------------------------------------


def test_author_answers_in_sent_join_their_threads_as_out(dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    dovecot.append(message(sender=JANE, message_id="<jane1@example.com>"))
    poller.ok()
    # An answer written in an ordinary mail client, found through the \Sent special-use flag.
    dovecot.append(message(sender=AUTHOR, to=JANE, subject="Re: Why I blog",
                           message_id="<answer1@blog.example>", in_reply_to="<jane1@example.com>",
                           references="<jane1@example.com>", body="Thank you, Jane.\n",
                           minutes=30), folder="Sent")
    # A new message to Jane that names the post's reply address in its text.
    dovecot.append(message(sender=AUTHOR, to=JANE, subject="A follow-up",
                           message_id="<answer2@blog.example>", minutes=40,
                           body="Wrote more: reply+why-i-blog@blog.example\n"), folder="Sent")
    # Private mail from the Sent folder: not a discussion, so not stored.
    dovecot.append(message(sender=AUTHOR, to="Mum <mum@example.org>", subject="Sunday",
                           message_id="<sunday@blog.example>", minutes=50), folder="Sent")

    out = poller.ok()

    assert "test Sent: 3 new: 2 stored, 0 duplicate, 0 quarantined, 1 left alone" in out
    stored = poller.messages()
    assert [(m[0], m[1]) for m in stored] == [("jane1@example.com", "in"),
                                              ("answer1@blog.example", "out"),
                                              ("answer2@blog.example", "out")]
    assert len({m[3] for m in stored}) == 1
    assert poller.rows("SELECT state FROM threads") == [("answered",)]
    assert poller.rows("SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert poller.checkpoint("Sent") == (dovecot.uidvalidity("Sent"), 3)

    # The answer bounces back to the inbox: it names a stored message, so it is filed (as a
    # bounce, in the thread), although it was sent to no reply address.
    dovecot.append(bounce_of("answer1@blog.example"))
    assert "test INBOX: 1 new: 1 stored" in poller.ok()
    assert poller.rows("SELECT kind, thread_id FROM messages WHERE message_id = ?",
                       ("bounce1@mx.example.org",)) == [("bounce", stored[0][3])]


def test_empty_sent_folder_setting_turns_sent_off(dovecot, make_poller):  # noqa: F811
    poller = make_poller(sent_folder="")
    dovecot.append(message(sender=AUTHOR, to=JANE, message_id="<a@blog.example>"), "Sent")
    out = poller.ok()
    assert "Sent" not in out
    assert poller.checkpoint("Sent") is None


# Nothing lost, nothing twice -----------------------------------------------------------------


def test_sigkill_at_random_points_then_restart_stores_every_message_once(
        dovecot, make_poller):  # noqa: F811
    """Each round starts a poller and SIGKILLs it at a random point: once the database shows
    a random amount of progress, plus a random fraction of a batch's work."""
    poller = make_poller()
    total = 1500
    dovecot.append_many([reply(n) for n in range(1, total + 1)])
    seed = int(os.environ.get("MAILTHREADS_TEST_SEED", time.time()))
    rng = random.Random(seed)
    kills = 0
    for _ in range(6):
        done = poller.delivered()
        # At most half way: the kill comes before the poll ends even when it runs fast (400
        # messages left took less than the random wait below on a quick machine).
        target = rng.randint(done, max(done, total // 2))
        process = poller.start()
        while process.poll() is None and poller.delivered() < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.25))
        workers = children(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate()
        wait_until_dead(workers)  # its analysis workers die with it
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL, f"seed {seed}"
        # The checkpoint is never ahead of what was committed: every UID up to it is stored.
        checkpoint = poller.checkpoint()
        if checkpoint is not None:
            stored = {int(o.rsplit("/", 1)[1]) for (o,) in
                      poller.rows("SELECT origin FROM deliveries")}
            assert set(range(1, checkpoint[1] + 1)) <= stored, f"seed {seed}"
    assert kills >= 1, f"seed {seed}: the poller was never killed mid-poll"

    poller.ok()  # the lock died with the killed processes: no exit 75

    ids = [m[0] for m in poller.messages()]
    assert len(ids) == total, f"seed {seed}"
    assert sorted(ids) == sorted(f"r{n}@example.com" for n in range(1, total + 1))
    assert poller.rows("SELECT COUNT(*) FROM deliveries WHERE status != 'stored'") == [(0,)]
    assert poller.checkpoint() == (dovecot.uidvalidity(), total)


def children(pid: int) -> list[int]:
    """Child processes of ``pid``, from /proc (no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_until_dead(pids: list[int]) -> None:
    """Dead means gone or a zombie (killed, waiting for init to reap it)."""

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    deadline = time.monotonic() + DEADLINE
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            for pid in pids:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes {pids} outlived the killed poller")
        time.sleep(0.05)


def test_recreated_folder_with_new_uidvalidity_stores_nothing_twice(dovecot, make_poller):  # noqa: F811
    poller = make_poller(folders=["Replies"])
    dovecot.create_folder("Replies")
    first = [reply(n) for n in (1, 2, 3)]
    dovecot.append_many(first, "Replies")
    poller.ok()
    old_validity = dovecot.uidvalidity("Replies")

    dovecot.delete_folder("Replies")
    dovecot.create_folder("Replies")
    dovecot.append_many([*first, reply(4)], "Replies")
    assert dovecot.uidvalidity("Replies") != old_validity

    out = poller.ok()

    assert "4 new: 1 stored, 3 duplicate" in out
    assert "UIDVALIDITY changed" in out
    assert sorted(m[0] for m in poller.messages()) == [f"r{n}@example.com" for n in (1, 2, 3, 4)]
    assert poller.checkpoint("Replies") == (dovecot.uidvalidity("Replies"), 4)


# Awkward messages ----------------------------------------------------------------------------


def nested(depth: int, to: str) -> bytes:
    """A message nested ``depth`` multiparts deep: over the MIME depth cap, so unparseable."""
    head = (f"From: Deep <deep@example.com>\r\nTo: {to}\r\nSubject: deep\r\n"
            "Message-ID: <deep@example.com>\r\nMIME-Version: 1.0\r\n").encode()
    body = b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary
                + b"\r\n" + body + b"\r\n--" + boundary + b"--\r\n")
    return head + body


def test_unparseable_reply_is_quarantined_and_the_poll_goes_on(dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    dovecot.append(reply(1))
    dovecot.append(nested(40, "reply+why-i-blog@blog.example"))
    dovecot.append(nested(40, "friend@example.org"))  # not for us: left alone, not quarantined
    dovecot.append(reply(2))

    out = poller.ok()

    assert "4 new: 2 stored, 0 duplicate, 1 quarantined, 1 left alone" in out
    reasons = poller.rows("SELECT reason, source FROM quarantine")
    assert len(reasons) == 1 and "nested" in reasons[0][0] and reasons[0][1] == "imap"
    assert poller.checkpoint()[1] == 4


def big_reply(number: int, size: int, to: str = "reply+why-i-blog@blog.example") -> bytes:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = f"Reader {number} <reader{number}@example.com>"
    mail["To"] = to
    mail["Subject"] = "Re: Why I blog (with pictures)"
    mail["Message-ID"] = f"<big{number}@example.com>"
    mail.set_content("Photos attached.\n")
    mail.add_attachment(random.Random(number).randbytes(size), maintype="application",
                        subtype="octet-stream", filename="photos.bin")
    return bytes(mail)


def test_huge_messages(dovecot, make_poller):  # noqa: F811
    poller = make_poller(extra="\n[limits]\nmax_message_size = 4000000\n")
    dovecot.append(big_reply(1, 2_500_000))  # big but allowed: stored with its attachment
    dovecot.append(big_reply(2, 6_000_000))  # over the limit, to a reply address: quarantined
    dovecot.append(big_reply(3, 6_000_000, to="me@personal.example"))  # over, not for us
    dovecot.append(reply(4))

    out = poller.ok()

    assert "4 new: 2 stored, 0 duplicate, 1 quarantined, 1 left alone" in out
    assert poller.rows("SELECT filename, size FROM attachments") == [("photos.bin", 2_500_000)]
    reason, size = poller.rows("SELECT reason, size FROM quarantine JOIN raw_messages "
                               "ON raw_messages.sha256 = quarantine.raw_sha256")[0]
    assert "over the 4,000,000 byte limit" in reason and size > 6_000_000
    # The oversized message that was not for mailthreads was never downloaded in full.
    assert poller.rows("SELECT COUNT(*) FROM raw_messages WHERE size > 6000000") == [(1,)]
    assert poller.checkpoint()[1] == 4


def test_message_deleted_by_another_client_during_the_poll(dovecot, tmp_path,  # noqa: F811
                                                           monkeypatch):
    """Between choosing the UIDs and fetching them, another client expunges one."""
    from mailthreads.config import load
    from mailthreads.db import open_database
    from mailthreads.transport.imap.connection import FolderPlan, connect
    from mailthreads.transport.imap.sync import FolderSync

    (tmp_path / "config.toml").write_text(BASE_CONFIG + dovecot.account_toml())
    config = load(tmp_path / "config.toml")
    uids = dovecot.append_many(reply(n) for n in (1, 2, 3, 4))
    monkeypatch.setenv(dovecot.password_env, dovecot.password)
    database = open_database(tmp_path / "mail.db")
    client = connect(config.imap[0])
    expunged: list[int] = []

    def delete_one(batch):
        if not expunged:
            expunged.append(batch[1])
            dovecot.expunge([batch[1]])

    try:
        sync = FolderSync(client, database.conn, config, config.imap[0], before_fetch=delete_one)
        report = sync.sync(FolderPlan("INBOX", "inbox"))
    finally:
        client.logout()
    assert expunged == [uids[1]]
    assert (report.new, report.stored, report.gone) == (4, 3, 1)
    ids = [row[0] for row in database.conn.execute("SELECT message_id FROM messages")]
    assert sorted(ids) == ["r1@example.com", "r3@example.com", "r4@example.com"]
    assert database.conn.execute("SELECT last_uid FROM imap_checkpoints").fetchone() == (uids[3],)
    database.conn.close()


def test_next_batch_is_fetched_while_the_last_one_is_analysed(dovecot, tmp_path,  # noqa: F811
                                                             monkeypatch):
    """Fetching, analysing and filing overlap: batch 2 is fetched before batch 1 is filed, and
    each batch is still filed with its checkpoint in one transaction."""
    from mailthreads.config import load
    from mailthreads.db import open_database
    from mailthreads.transport.imap.connection import FolderPlan, connect
    from mailthreads.transport.imap.sync import BATCH_MESSAGES, FolderSync

    (tmp_path / "config.toml").write_text(BASE_CONFIG + dovecot.account_toml())
    config = load(tmp_path / "config.toml")
    uids = dovecot.append_many(reply(n) for n in range(1, BATCH_MESSAGES * 2 + 11))
    monkeypatch.setenv(dovecot.password_env, dovecot.password)
    database = open_database(tmp_path / "mail.db")
    client = connect(config.imap[0])
    filed_when_fetched: list[tuple[int, int | None]] = []

    def note(batch):
        checkpoint = database.conn.execute("SELECT last_uid FROM imap_checkpoints").fetchone()
        count = database.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        filed_when_fetched.append((count, checkpoint[0] if checkpoint else None))

    try:
        sync = FolderSync(client, database.conn, config, config.imap[0], before_fetch=note)
        report = sync.sync(FolderPlan("INBOX", "inbox"))
    finally:
        client.logout()
    assert filed_when_fetched == [(0, None), (0, None),
                                  (BATCH_MESSAGES, uids[BATCH_MESSAGES - 1])]
    assert report.stored == len(uids)
    assert database.conn.execute("SELECT last_uid FROM imap_checkpoints").fetchone() \
        == (uids[-1],)
    database.conn.close()


def test_plans_are_made_under_the_write_lock(dovecot, tmp_path, monkeypatch):  # noqa: F811
    """Another writer (serve's filer, an ingest) cannot change what a plan reads before the
    message is filed by it: in a soak test it created the plan's new post in between, and
    filing it failed with ``UNIQUE constraint failed: posts.slug``."""
    from mailthreads.config import load
    from mailthreads.db import open_database, store
    from mailthreads.transport.imap.connection import FolderPlan, connect
    from mailthreads.transport.imap.sync import FolderSync

    (tmp_path / "config.toml").write_text(BASE_CONFIG + dovecot.account_toml())
    config = load(tmp_path / "config.toml")
    dovecot.append_many([reply(1), reply(2, to="reply+other-post@blog.example")])
    monkeypatch.setenv(dovecot.password_env, dovecot.password)
    database = open_database(tmp_path / "mail.db")
    other = sqlite3.connect(tmp_path / "mail.db", timeout=0, isolation_level=None)
    other_could_write: list[bool] = []
    post_by_slug = store.post_by_slug

    def planning_reads_post(conn, slug):
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            assert "locked" in str(error)
            other_could_write.append(False)
        else:
            other.execute("ROLLBACK")
            other_could_write.append(True)
        return post_by_slug(conn, slug)

    monkeypatch.setattr(store, "post_by_slug", planning_reads_post)
    client = connect(config.imap[0])
    try:
        report = FolderSync(client, database.conn, config, config.imap[0]).sync(
            FolderPlan("INBOX", "inbox"))
    finally:
        client.logout()
        other.close()
    assert report.stored == 2
    assert other_could_write and not any(other_could_write)
    database.conn.close()


# Live: --watch --------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"poller exited ({process.returncode}) while waiting for "
                                 f"{what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"no {what} within {DEADLINE:.0f} s; stderr: {err}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE)
    return process.returncode, out, err


def test_watch_files_mail_appended_while_idling_and_survives_a_dropped_connection(
        dovecot, dovecot_server, make_poller):  # noqa: F811
    poller = make_poller(idle_timeout=3)  # renewals happen during the test, too
    dovecot.append(reply(1))
    process = poller.start("--watch")
    try:
        wait_for(lambda: len(poller.messages()) == 1, "catch-up on start", process)
        time.sleep(0.5)  # let it settle into IDLE
        dovecot.append(reply(2))
        wait_for(lambda: len(poller.messages()) == 2, "message appended during IDLE", process)
        dovecot.append(message(sender=AUTHOR, to="Reader 2 <reader2@example.com>",
                               message_id="<ans@blog.example>", in_reply_to="<r2@example.com>",
                               minutes=60), folder="Sent")
        wait_for(lambda: len(poller.messages()) == 3, "answer appended to Sent", process)

        dovecot_server.kick(dovecot.username)  # every connection of the poller drops
        dovecot.append(reply(3))
        wait_for(lambda: len(poller.messages()) == 4, "message after a reconnect", process)
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert "Traceback" not in err
    assert "reconnecting" in err
    assert [m[1] for m in poller.messages()] == ["in", "in", "out", "in"]
    assert len(poller.rows("SELECT message_id FROM messages")) == 4


def ctrl_c(process: subprocess.Popen) -> tuple[int, str, str]:
    """SIGINT to the process group, as a terminal sends it (the analysis workers get it too)."""
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=DEADLINE)
    return process.returncode, out, err


def test_ctrl_c_stops_watch_with_a_line_saying_what_it_filed(dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    dovecot.append(reply(1))
    process = subprocess.Popen(poller.command("--watch"), env=poller.env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: len(poller.messages()) == 1, "catch-up on start", process)
    dovecot.append(reply(2))
    wait_for(lambda: len(poller.messages()) == 2, "message appended during IDLE", process)
    code, _, err = ctrl_c(process)
    assert code == 0, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == ("stopped (SIGINT): 2 messages in (2 stored, 0 duplicate, "
                                    "0 quarantined) while watching")


def test_ctrl_c_in_a_long_poll_exits_130_with_what_is_in_and_the_next_poll_continues(
        dovecot, make_poller):  # noqa: F811
    total = 1500  # several batches, and seconds of work
    dovecot.append_many([reply(number) for number in range(total)])
    poller = make_poller()
    process = subprocess.Popen(poller.command(), env=poller.env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: poller.delivered() > 0, "the first batch", process)
    code, _, err = ctrl_c(process)
    assert code == 130, err
    assert "Traceback" not in err
    [line] = err.splitlines()
    filed = poller.delivered()
    assert 0 < filed < total
    assert line == (f"Interrupted: {filed} messages in ({filed} stored, 0 duplicate, "
                    "0 quarantined); the next poll continues from there.")
    assert f"{total - filed} new: {total - filed} stored, 0 duplicate" in poller.ok()
    assert len({m[0] for m in poller.messages()}) == len(poller.messages()) == total


def test_watch_polls_at_an_interval_when_the_server_has_no_idle(tmp_path):
    server = start_dovecot(idle=False)
    try:
        mailbox = server.add_user()
        config = tmp_path / "config.toml"
        config.write_text(BASE_CONFIG + mailbox.account_toml(poll_interval=0.5))
        poller = Poller(config, tmp_path / "mail.db", mailbox.env)
        with mailbox.client() as client:
            assert not client.has_capability("IDLE")
        process = poller.start("--watch")
        try:
            wait_for(lambda: poller.checkpoint() is not None, "first catch-up", process)
            mailbox.append(reply(1))
            wait_for(lambda: len(poller.messages()) == 1, "message found by polling", process)
        finally:
            code, _, err = stop(process)
        assert code == 0, err
    finally:
        remove(server)


def test_watch_stops_with_a_clear_line_when_the_login_is_rejected(make_poller, dovecot):  # noqa: F811
    poller = make_poller()
    poller.env = {**poller.env, dovecot.password_env: "wrong"}
    done = subprocess.run(poller.command("--watch"), env=poller.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "login as" in done.stderr and "failed" in done.stderr


# Failures: one line, the right exit code --------------------------------------------------


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("Error:")]


def test_wrong_password_is_one_line_and_exit_1(dovecot, make_poller):  # noqa: F811
    poller = make_poller()
    poller.env = {**poller.env, dovecot.password_env: "not-the-password"}
    done = poller.run()
    assert done.returncode == 1
    [line] = error_lines(done)
    assert f"login as '{dovecot.username}'" in line and "AUTHENTICATIONFAILED" in line
    assert done.stderr.strip() == line


def test_unreachable_server_is_one_line_and_exit_75(dovecot, make_poller):  # noqa: F811
    from dovecot import free_port

    poller = make_poller(port=free_port())
    done = poller.run()
    assert done.returncode == 75
    [line] = error_lines(done)
    assert "cannot connect to 127.0.0.1:" in line and "refused" in line.lower()


def test_second_poller_on_the_same_database_exits_75(make_poller):
    poller = make_poller()
    with hold(lock_path_for(poller.database, "poll"), "test"):
        done = poller.run()
    assert done.returncode == 75
    [line] = error_lines(done)
    assert "already running" in line and f"pid {os.getpid()}" in line


def test_one_failing_account_does_not_stop_the_others(dovecot, dovecot_server, make_poller):  # noqa: F811
    other = dovecot_server.add_user()
    other.append(reply(7))
    dovecot.append(reply(1))
    accounts = (dovecot.account_toml("good")
                + other.account_toml("bad", password_env="MAILTHREADS_TEST_UNSET_VARIABLE"))
    poller = make_poller(accounts=accounts)
    done = poller.run()
    assert done.returncode == 1
    assert "good INBOX: 1 new: 1 stored" in done.stdout
    [line] = error_lines(done)
    assert "account bad" in line and "MAILTHREADS_TEST_UNSET_VARIABLE is not set" in line
    assert [m[0] for m in poller.messages()] == ["r1@example.com"]


# Ways to connect and log in ----------------------------------------------------------------


def test_password_command_tls_with_a_private_ca(dovecot, make_poller):  # noqa: F811
    poller = make_poller(security="tls", port=dovecot.tls_port, tls_ca_file=str(dovecot.cafile),
                         password_env=None,
                         password_command=f"printf '%s\\nsecond line\\n' '{dovecot.password}'")
    dovecot.append(reply(1))
    assert "1 stored" in poller.ok()


def test_starttls_and_oauth2_token_command(dovecot, make_poller):  # noqa: F811
    # Dovecot's XOAUTH2 mechanism hands the bearer token to the passdb like a password, so
    # a passwd-file entry whose password is the token accepts it: a real SASL XOAUTH2 login.
    poller = make_poller(security="starttls", tls_ca_file=str(dovecot.cafile), auth="oauth2",
                         password_env=None, oauth2_token_command=f"echo {dovecot.password}")
    dovecot.append(reply(1))
    assert "1 stored" in poller.ok()


def test_tls_certificate_that_does_not_verify_is_exit_1(dovecot, make_poller):  # noqa: F811
    poller = make_poller(security="tls", port=dovecot.tls_port)  # no tls_ca_file
    done = poller.run()
    assert done.returncode == 1
    [line] = error_lines(done)
    assert "does not verify" in line


def test_starttls_certificate_that_does_not_verify_is_exit_1(dovecot, make_poller):  # noqa: F811
    poller = make_poller(security="starttls")  # no tls_ca_file
    done = poller.run()
    assert done.returncode == 1
    [line] = error_lines(done)
    assert f"the certificate of 127.0.0.1:{dovecot.port} does not verify" in line
    assert "tls_ca_file" in line


def test_tls_on_the_plain_port_is_exit_1_with_the_fix(dovecot, make_poller):  # noqa: F811
    # Exit 75 would have cron retry a setting mistake forever.
    poller = make_poller(security="tls", tls_ca_file=str(dovecot.cafile))  # the plain port
    done = poller.run()
    assert done.returncode == 1
    assert error_lines(done) == [f"Error: account test: 127.0.0.1:{dovecot.port} does not "
                                 'speak TLS on connect: set security = "starttls"']


def test_watch_gives_up_at_once_on_tls_to_the_plain_port(dovecot, make_poller):  # noqa: F811
    poller = make_poller(security="tls", tls_ca_file=str(dovecot.cafile))
    try:
        done = subprocess.run(poller.command("--watch"), env=poller.env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("poll --watch kept reconnecting to a port that will never speak TLS")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert 'does not speak TLS on connect: set security = "starttls"' in done.stderr


def test_failing_password_command_is_exit_1(make_poller):
    poller = make_poller(password_env=None, password_command="echo 'vault is locked' >&2; exit 3")
    done = poller.run()
    assert done.returncode == 1
    [line] = error_lines(done)
    assert "password_command exited with 3: vault is locked" in line


def test_no_accounts_and_unknown_account_are_one_line_and_exit_1(make_poller, dovecot):  # noqa: F811
    poller = make_poller(accounts="")
    done = poller.run()
    assert done.returncode == 1
    assert error_lines(done) == [f"Error: no [[imap]] accounts in {poller.config}: add one "
                                 "(see the example config) or name a config with -c"]
    poller = make_poller()
    done = poller.run("--account", "nope")
    assert done.returncode == 1
    assert error_lines(done) == ["Error: no [[imap]] account named 'nope'; the config has test"]


def test_missing_folder_is_reported_and_the_other_folders_still_polled(dovecot, make_poller):  # noqa: F811
    poller = make_poller(folders=["INBOX", "Nonexistent"])
    dovecot.append(reply(1))
    done = poller.run()
    assert done.returncode == 1
    assert "test INBOX: 1 new: 1 stored" in done.stdout
    [line] = error_lines(done)
    assert "cannot open folder 'Nonexistent'" in line
