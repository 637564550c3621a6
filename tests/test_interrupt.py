"""Ctrl-C in ``mailthreads ingest``: a real SIGINT to a real process group, as a terminal sends
it, in the middle of a maildir big enough to take a few seconds.

What is promised: exit 130 and one line saying what is in, which is exactly what the database
holds; then the same command again takes in the rest and stores nothing twice. (``poll``
interrupted and ``poll --watch`` stopped are in test_imap.py, against Dovecot.)
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from mailfactory import message

MESSAGES = 6000  # several commits' worth (bulk commits every 500), and seconds of work
DEADLINE = 120.0


def maildir(path: Path, count: int) -> Path:
    # One message built, the rest by substitution: building thousands with the email package,
    # or adding them with mailbox.Maildir, takes longer than the test itself.
    template = message(sender="Reader SENDER <readerSENDER@example.com>",
                       message_id="<mNUMBER@example.com>", body="Reply number NUMBER.\n" * 20)
    for folder in ("cur", "new", "tmp"):
        (path / folder).mkdir(parents=True)
    for number in range(count):
        raw = template.replace(b"SENDER", b"%d" % (number % 300)) \
            .replace(b"NUMBER", b"%d" % number)
        (path / "cur" / f"{number}.test:2,S").write_bytes(raw)
    return path


def committed(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    conn = sqlite3.connect(database, timeout=30)
    try:
        return dict(conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
    except sqlite3.OperationalError:  # the schema is still being made
        return {}
    finally:
        conn.close()


def test_ctrl_c_in_ingest_says_what_is_in_exits_130_and_a_rerun_continues(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[addresses]\ndomain = "blog.example"\n'
                      '[posts]\ncreate_on_first_reply = true\n')  # held otherwise
    database = tmp_path / "mail.db"
    source = maildir(tmp_path / "replies", MESSAGES)
    command = [sys.executable, "-m", "mailthreads", "-c", str(config), "-d", str(database),
               "ingest", str(source)]
    # Its own process group, so the SIGINT reaches the analysis workers too, as Ctrl-C would.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + DEADLINE
    while not committed(database) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "ingest ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=DEADLINE)

    assert process.returncode == 130, err
    assert "Traceback" not in err and "Aborted!" not in err
    [line] = err.splitlines()
    counts = committed(database)
    stored = counts.get("stored", 0)
    assert 0 < stored < MESSAGES and set(counts) == {"stored"}
    assert line == (f"Interrupted: {stored} messages in ({stored} stored, 0 duplicate, "
                    "0 quarantined); the rest were not taken in. Run the same command again to "
                    "continue: messages already in are not stored twice.")

    again = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert re.match(rf"{MESSAGES} messages: {MESSAGES - stored} stored, {stored} duplicate, "
                    "0 quarantined", again.stdout)
    conn = sqlite3.connect(database)
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages").fetchone() \
        == (MESSAGES, MESSAGES)
    conn.close()
