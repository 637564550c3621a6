"""Many processes on one database, as on a real machine: several commands creating it at the
same moment (systemd starting ``serve`` and ``poll`` on first boot), and a soak of the listener,
the IMAP watcher (against the suite's real Dovecot), bulk imports and read commands side by
side. Nothing may fail with "database is locked", and every message is stored exactly once."""

from __future__ import annotations

import json
import mailbox
import signal
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from dovecot import Mailbox, dovecot, dovecot_server  # noqa: F401  (pytest fixtures)
from mailfactory import message
from smtp_support import REPO, Serve, wait_for

from mailthreads.db import SCHEMA_VERSION

CONFIG = ('[addresses]\ndomain = "blog.example"\n\n[author]\nname = "Blog Author"\n'
          'addresses = ["me@blog.example"]\n'
          '\n[posts]\ncreate_on_first_reply = true\n')  # replies to new posts are filed
COMMAND_TIMEOUT = 120.0  # only bounds a hung command; nothing here measures speed


def command(config: Path, database: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mailthreads", "-c", str(config), "-d", str(database), *args]


def start(config: Path, database: Path, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.Popen[str]:
    return subprocess.Popen(command(config, database, *args), cwd=REPO, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=COMMAND_TIMEOUT)
    return process.returncode, out, err


def rows(database: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def reply(message_id: str, number: int, to: str = "reply+why-i-blog@blog.example") -> bytes:
    return message(sender=f"Reader {number % 7} <reader{number % 7}@example.com>", to=to,
                   message_id=f"<{message_id}>", minutes=number,
                   body=f"Reply {message_id}: a few thoughts on your post.\n")


# Twelve at once ------------------------------------------------------------------------------

# Each process imports everything first, then waits for its standard input to close: the tests
# close all of them in one go, so that twelve commands reach the database at the same moment
# (otherwise start-up time alone spreads them out).
AT_THE_GATE = """
import sys
import mailthreads.cli, mailthreads.db, mailthreads.db.migrations, sqlite_utils
sys.stdin.read()
sys.argv[0] = "mailthreads"
mailthreads.cli.cli()
"""


def at_the_gate(config: Path, database: Path, *args: str, stderr: int | IO = subprocess.PIPE
                ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", AT_THE_GATE, "-c", str(config),
                             "-d", str(database), *args], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)


def open_the_gate(processes: list[subprocess.Popen[str]]) -> None:
    time.sleep(1.0)  # a head start for the imports; the gate only needs them all waiting
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
        process.stdin = None  # closed: communicate() has nothing more to send


def test_twelve_processes_create_one_new_database_at_once(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    database = tmp_path / "data" / "mail.db"
    for number in range(6):
        (tmp_path / f"r{number}.eml").write_bytes(reply(f"r{number}@example.com", number))
    with open(tmp_path / "serve.log", "w") as serve_log:
        # The listener too, which creates the database it needs, as on a first boot.
        serve = at_the_gate(config, database, "serve", "--port", "0", stderr=serve_log)
    processes = [at_the_gate(config, database, "posts", "add", f"post-{number}")
                 for number in range(5)]
    processes += [at_the_gate(config, database, "ingest", str(tmp_path / f"r{number}.eml"))
                  for number in range(6)]
    open_the_gate([serve, *processes])
    try:
        results = [finish(process) for process in processes]
        wait_for(lambda: "listening on" in (tmp_path / "serve.log").read_text()
                 or serve.poll() is not None, "serve to listen", timeout=COMMAND_TIMEOUT)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=COMMAND_TIMEOUT)
    serve_log_text = (tmp_path / "serve.log").read_text()
    assert serve.returncode == 0 and "listening on" in serve_log_text, serve_log_text
    for code, _, err in results:
        assert code == 0, err
        assert "locked" not in err and "Traceback" not in err
    assert "locked" not in serve_log_text
    assert {slug for (slug,) in rows(database, "SELECT slug FROM posts")} == {
        *(f"post-{number}" for number in range(5)), "why-i-blog"}
    assert rows(database, "SELECT COUNT(*) FROM messages") == [(6,)]


def test_twelve_commands_bring_an_empty_database_up_to_date_at_once(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    database = tmp_path / "mail.db"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA journal_mode = WAL")  # as the sqlite3 shell leaves it: no tables
    conn.close()
    eml = tmp_path / "reply.eml"
    eml.write_bytes(reply("r@example.com", 1))
    commands = [("threads",), ("stats", "--json"), ("explain", str(eml)),
                ("posts", "list")] * 3
    processes = [at_the_gate(config, database, *args) for args in commands]
    open_the_gate(processes)
    for process, args in zip(processes, commands, strict=True):
        code, _, err = finish(process)
        assert code == 0, (args, err)
        assert "locked" not in err and "Traceback" not in err
    # Each step ran once (one step per schema version, by the convention in migrations.py).
    applied = [name for _, _, name, _ in rows(database, "SELECT * FROM _sqlite_migrations")]
    assert len(applied) == len(set(applied)) == SCHEMA_VERSION


# The soak ------------------------------------------------------------------------------------

SOAK_SECONDS = 30.0  # of load; with start-up and catching up, the test stays under a minute
INGEST_BATCH = 100
READ_COMMANDS = [("threads", "--json"), ("stats", "--json"), ("search", "thoughts"),
                 ("posts", "list"), ("quarantine", "list"), ("show", "{thread}", "--no-pager")]


class Soak:
    """The writers and readers of the soak, each in a thread, each noting what it did."""

    def __init__(self, root: Path, config: Path, database: Path, mail: Mailbox, port: int):
        self.root, self.config, self.database = root, config, database
        self.mail, self.port = mail, port
        self.stop_at = time.monotonic() + SOAK_SECONDS
        self.sent: dict[str, list[str]] = {"smtp": [], "imap": [], "ingest": []}
        self.problems: list[str] = []
        self.reads = 0

    def running(self) -> bool:
        return time.monotonic() < self.stop_at and len(self.problems) < 5

    def trickle(self, transport: str, send: Callable[[str, bytes], None], pause: float) -> None:
        """Send a reply by ``transport`` every ``pause`` seconds while the soak runs."""
        number = 0
        while self.running():
            message_id = f"{transport}-{number}@example.com"
            try:
                send(message_id, reply(message_id, number, "reply+soak@blog.example"))
            except Exception as error:  # noqa: BLE001 - noted; the test fails on it
                self.problems.append(f"{transport} {message_id}: {error}")
                return
            self.sent[transport].append(message_id)
            number += 1
            time.sleep(pause)

    def smtp(self) -> None:
        def send(_: str, raw: bytes) -> None:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as client:
                client.sendmail("reader@example.com", ["reply+soak@blog.example"], raw)

        self.trickle("smtp", send, 0.1)

    def imap(self) -> None:
        self.trickle("imap", lambda _, raw: self.mail.append(raw), 0.2)

    def ingest(self) -> None:
        batch = 0
        while self.running():
            folder = mailbox.Maildir(self.root / f"batch-{batch}", create=True)
            ids = [f"ingest-{batch}-{number}@example.com" for number in range(INGEST_BATCH)]
            for number, message_id in enumerate(ids):
                folder.add(reply(message_id, number))
            code, out, err = finish(start(self.config, self.database, "ingest", "-q",
                                          "--workers", "2", str(folder._path)))
            if code != 0 or "locked" in err or f"{INGEST_BATCH} stored" not in out:
                self.problems.append(f"ingest batch {batch}: exit {code}: {out} {err}")
                return
            self.sent["ingest"].extend(ids)
            batch += 1

    def read(self) -> None:
        thread = None
        while self.running():
            for args in READ_COMMANDS:
                if "{thread}" in args and thread is None:
                    continue
                args = tuple(arg.format(thread=thread) for arg in args)
                code, out, err = finish(start(self.config, self.database, *args))
                self.reads += 1
                if code != 0 or "locked" in err or "Traceback" in err:
                    self.problems.append(f"{' '.join(args)}: exit {code}: {err}")
                    return
                if args[0] == "threads" and json.loads(out):
                    thread = json.loads(out)[0]["id"]


@pytest.mark.slow
def test_soak_listener_watcher_bulk_ingest_and_readers_lose_nothing(tmp_path, dovecot):  # noqa: F811
    config = tmp_path / "config.toml"
    config.write_text(CONFIG + "\n" + dovecot.account_toml(idle_timeout=60))
    database = tmp_path / "mail.db"
    # Started together on a database that does not exist yet, as on a first boot.
    watcher = start(config, database, "poll", "--watch", env=dovecot.env)
    with Serve(database, config) as serve:
        soak = Soak(tmp_path, config, database, dovecot, serve.port)
        threads = [threading.Thread(target=job, name=job.__name__, daemon=True)
                   for job in (soak.smtp, soak.imap, soak.ingest, soak.read)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SOAK_SECONDS + COMMAND_TIMEOUT)
        assert not soak.problems, soak.problems
        expected = [message_id for ids in soak.sent.values() for message_id in ids]

        def all_stored() -> bool:
            if watcher.poll() is not None:
                raise AssertionError(f"poll --watch exited: {finish(watcher)}")
            return rows(database, "SELECT COUNT(*) FROM messages")[0][0] >= len(expected)

        wait_for(all_stored, "every message to be filed", timeout=60)
        watcher.send_signal(signal.SIGTERM)
        watch_code, _, watch_err = finish(watcher)
        serve_code = serve.stop()
    stored = rows(database, "SELECT message_id, COUNT(*) FROM messages GROUP BY message_id")
    assert sorted(message_id for message_id, _ in stored) == sorted(expected)
    assert all(count == 1 for _, count in stored)
    assert rows(database, "SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert watch_code == 0 and serve_code == 0, (watch_err, serve.log())
    for log in (watch_err, serve.log()):
        assert "locked" not in log and "busy" not in log and "Traceback" not in log
    assert "not stored" not in serve.log()
    print(f"soak: {len(soak.sent['smtp'])} by SMTP, {len(soak.sent['imap'])} by IMAP, "
          f"{len(soak.sent['ingest'])} ingested, {soak.reads} read commands")
