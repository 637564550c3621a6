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


# next: the loop, on a pseudo-terminal -------------------------------------------------------


PROMPT = b"[r]eply  [a]rchive  [s]kip  [q]uit"


def on_terminal(root: Path, env: dict[str, str], args: list[str], keys: list[bytes],
                timeout: float = 60) -> str:
    """Run mailthreads on a pty and press one key (no Enter) at each prompt, in turn."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "mailthreads", *args], stdin=slave,
                               stdout=slave, stderr=slave, env=env, cwd=root,
                               start_new_session=True)
    os.close(slave)
    shown = bytearray()
    pressed = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
            if shown.count(PROMPT) > pressed and pressed < len(keys):
                os.write(master, keys[pressed])
                pressed += 1
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    assert process.wait(10) == 0, shown.decode(errors="replace")
    return shown.decode("utf-8").replace("\r\n", "\n")


def test_next_goes_through_the_waiting_threads_one_key_each(env, monkeypatch):
    with running_relay(env, security="starttls") as relay:
        (env / "config.toml").write_text(CONFIG + "\n" + relay.outgoing_toml())
        editor = env / "editor.py"
        editor.write_text(EDITOR.format(python=sys.executable))
        editor.chmod(0o755)
        # Oldest question first: Bea (waited longest), then Ann, then Cy.
        ingest(env, from_reader("ann", 60), from_reader("bea", 0), from_reader("cy", 120),
               from_reader("dee", 180), from_reader("eve", 240))
        terminal_env = {key: value for key, value in os.environ.items()
                        if key not in {"PAGER", "VISUAL", "NO_COLOR"}}
        terminal_env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
                            EDITOR=str(editor), TEST_ANSWER="Thanks, Bea.\n",
                            RELAY_TEST_PASSWORD=PASSWORD, SSL_CERT_FILE=str(relay.cafile),
                            PYTHONPATH=os.pathsep.join(filter(None, (
                                str(REPO), os.environ.get("PYTHONPATH")))))
        # r: reply to Bea; x: not a choice (asked again); a: archive Ann; s: skip Cy; q: stop.
        shown = on_terminal(env, terminal_env, ["next"], [b"r", b"x", b"a", b"s", b"q"])
        assert len(relay.received) == 1
        assert b"Thanks, Bea." in relay.received[0].content
    order = [shown.index(f"{name}@example.com") for name in ("bea", "ann", "cy", "dee")]
    assert order == sorted(order), shown
    assert "Archived" in shown
    assert "eve@example.com" not in shown
    assert "Replied 1, archived 1, skipped 1; 3 threads still wait for an answer." in shown
    states = {row["correspondent_address"]: row["state"] for row in run_json("threads", "--all")}
    assert states == {"bea@example.com": "answered", "ann@example.com": "archived",
                      "cy@example.com": "needs_reply", "dee@example.com": "needs_reply",
                      "eve@example.com": "needs_reply"}
    # Shown is read, as with show (Dee's too, before q); Eve was never shown.
    unread = {row["correspondent_address"] for row in run_json("threads", "--unread")}
    assert unread == {"eve@example.com"}


def test_next_newest_first_and_when_nothing_waits(env):
    ingest(env, from_reader("ann", 0), from_reader("bea", 60))
    shown = on_terminal(env, _plain_env(env), ["next", "--newest"], [b"q"])
    assert "bea@example.com" in shown and "ann@example.com" not in shown
    assert "Nothing decided; 2 threads still wait for an answer." in shown
    run("archive", str(thread_of("ann@example.com")), str(thread_of("bea@example.com")))
    shown = on_terminal(env, _plain_env(env), ["next"], [])
    assert "Nothing decided; nothing waits for an answer." in shown


def _plain_env(root: Path) -> dict[str, str]:
    values = {key: value for key, value in os.environ.items() if key not in {"PAGER"}}
    values.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
                  PYTHONPATH=os.pathsep.join(filter(None, (
                      str(REPO), os.environ.get("PYTHONPATH")))))
    return values
