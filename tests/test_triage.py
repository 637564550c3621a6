"""The author's daily loop (issue 11) through the CLI, on a real SQLite file: ``next`` on a
pseudo-terminal with single keypresses, ``mark-unread``, state spellings, undelivered answers,
``threads delete`` / ``posts delete`` with tombstones and ``--purge``, ``outbox cancel`` /
``edit`` / the retry window, and attachments (``show`` lists them, ``attachments save``).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import sqlite3
import stat
import struct
import subprocess
import sys
import termios
import time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailfactory import bounce_of, message
from relay_support import PASSWORD, running_relay

from mailthreads.cli import cli

REPO = Path(__file__).resolve().parent.parent
CONFIG = """[addresses]
domain = "blog.example"
secret = "triage-test-secret-abcdefghijklmnop"

[author]
name = "Author"
addresses = ["me@blog.example"]
"""
EDITOR = """#!{python}
import os, pathlib, sys, time
path = pathlib.Path(sys.argv[1])
text = path.read_text(encoding="utf-8")
path.write_text(os.environ.get("TEST_ANSWER", "") + text, encoding="utf-8")
later = time.time() + 2
os.utime(path, (later, later))
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(CONFIG)
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("MAILTHREADS_DB", str(tmp_path / "mail.db"))
    monkeypatch.delenv("MAILTHREADS_SECRET", raising=False)
    return tmp_path


def run(*args: str, input: str | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def run_json(*args: str):
    return json.loads(run(*args, "--json"))


def ingest(root: Path, *raws: bytes) -> None:
    for number, raw in enumerate(raws):
        path = root / f"in-{time.monotonic_ns()}-{number}.eml"
        path.write_bytes(raw)
        run("ingest", str(path))


def from_reader(name: str, minutes: int, body: str = "A question for you.\n") -> bytes:
    return message(sender=f"{name.title()} <{name}@example.com>", minutes=minutes,
                   message_id=f"<{name}-{minutes}@example.com>", body=body)


def answer_from_author(to: str, in_reply_to: str, message_id: str, minutes: int) -> bytes:
    return message(sender="Author <me@blog.example>", to=to, subject="Re: Why I blog",
                   message_id=message_id, in_reply_to=in_reply_to, minutes=minutes,
                   body="Thank you for writing.\n")


def thread_of(address: str) -> int:
    return next(row["id"] for row in run_json("threads", "--all")
                if row["correspondent_address"] == address)


# State names, show --json and mark-unread ---------------------------------------------------


def test_state_accepts_both_spellings(env):
    ingest(env, from_reader("ann", 0))
    assert [row["state"] for row in run_json("threads", "--state", "needs_reply")] \
        == ["needs_reply"]
    assert run_json("threads", "--state", "needs-reply") \
        == run_json("threads", "--state", "needs_reply")


def test_show_json_leaves_read_state_alone_unless_asked(env):
    ingest(env, from_reader("ann", 0))
    thread = thread_of("ann@example.com")
    run("show", str(thread), "--json")
    assert run_json("threads")[0]["unread"] == 1
    run("show", str(thread), "--json", "--mark-read")
    assert run_json("threads")[0]["unread"] == 0


def test_mark_unread_brings_a_read_thread_back(env):
    ingest(env, from_reader("ann", 0), from_reader("ann", 5, "And another thing.\n"))
    thread = thread_of("ann@example.com")
    run("show", str(thread), "--no-pager")
    assert run_json("threads", "--unread") == []
    assert "Marked unread: " in run("mark-unread", str(thread))
    [row] = run_json("threads", "--unread")
    assert row["id"] == thread and row["unread"] == 1
    assert "no thread 99" in run("mark-unread", "99", code=1)
