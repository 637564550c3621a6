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

[posts]
create_on_first_reply = true  # replies create their post (the default holds them)
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


# Undelivered answers ------------------------------------------------------------------------


def delay_warning_of(original_id: str) -> bytes:
    """A 'still trying' notice: Action: delayed, Status 4.4.7."""
    return (bounce_of(original_id).decode()
            .replace("Action: failed\r\nStatus: 5.1.1", "Action: delayed\r\nStatus: 4.4.7")
            .replace("<bounce1@mx.example.org>", "<delay1@mx.example.org>")
            .replace("could not be delivered", "is delayed")).encode()


def answered_threads(env: Path) -> tuple[int, int]:
    ingest(env, from_reader("ann", 0), from_reader("bea", 10),
           answer_from_author("ann@example.com", "<ann-0@example.com>", "<a1@blog.example>", 30),
           answer_from_author("bea@example.com", "<bea-10@example.com>", "<b1@blog.example>",
                              40))
    return thread_of("ann@example.com"), thread_of("bea@example.com")


def test_a_bounced_answer_is_named_in_threads_and_show(env):
    ann, bea = answered_threads(env)
    ingest(env, bounce_of("a1@blog.example"), delay_warning_of("b1@blog.example"))
    note = "your answer of 2026-11-01 was not delivered: the address does not exist"
    result = CliRunner().invoke(cli, ["threads"], catch_exceptions=False)
    assert f"Thread {ann}: {note}" in result.stderr
    assert f"Thread {bea}:" not in result.stderr
    rows = {row["id"]: row for row in run_json("threads")}
    assert rows[ann]["undelivered"] == note and rows[bea]["undelivered"] is None
    assert {row["state"] for row in rows.values()} == {"answered"}  # three states, unchanged
    assert [row["id"] for row in run_json("threads", "--undelivered")] == [ann]
    shown = run("show", str(ann), "--no-pager")
    assert note[:1].upper() + note[1:] in shown
    assert "5.1.1" not in shown.split("──")[0]  # plain words at the top, no status code
    assert run_json("show", str(ann))["undelivered"] == note
    # A delay warning is a note, not a failure.
    delayed = run("show", str(bea), "--no-pager")
    assert "not delivered" not in delayed and "delayed" in delayed
    assert run_json("show", str(bea))["undelivered"] is None


def test_writing_again_settles_an_undelivered_answer(env):
    ann, _ = answered_threads(env)
    ingest(env, bounce_of("a1@blog.example"))
    assert [row["id"] for row in run_json("threads", "--undelivered")] == [ann]
    ingest(env, answer_from_author("ann@example.com", "<ann-0@example.com>",
                                   "<a2@blog.example>", 50))
    assert run_json("threads", "--undelivered") == []


# Attachments --------------------------------------------------------------------------------


def with_files(*files: tuple[str, bytes]) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Ann <ann@example.com>"
    mail["To"] = "reply+why-i-blog@blog.example"
    mail["Subject"] = "Re: Why I blog"
    mail["Message-ID"] = "<files@example.com>"
    mail["Date"] = format_datetime(time_of(0))
    mail.set_content("Here is my plan.\n")
    for name, content in files:
        mail.add_attachment(content, maintype="application", subtype="octet-stream",
                            filename=name)
    return bytes(mail)


def time_of(minutes: int):
    from datetime import UTC, datetime, timedelta

    return datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)


PLAN = b"%PDF-1.4 garden" * 1000  # 15,000 bytes: "15 KB"


def test_show_lists_attachments_and_json_includes_them(env):
    ingest(env, with_files(("garden-plan.pdf", PLAN)))
    thread = thread_of("ann@example.com")
    assert "[attachment: garden-plan.pdf, 15 KB]" in run("show", str(thread), "--no-pager")
    [mail] = run_json("show", str(thread))["messages"]
    [attachment] = mail["attachments"]
    assert attachment["filename"] == "garden-plan.pdf" and attachment["size"] == len(PLAN)
    assert "content" not in attachment


def test_attachments_save_keeps_files_inside_dir_private_and_not_overwritten(env):
    ingest(env, with_files(("garden-plan.pdf", PLAN), ("../../escape.sh", b"#!/bin/sh\n"),
                           (".bashrc", b"alias x=y\n"), ("garden-plan.pdf", b"second")))
    thread = thread_of("ann@example.com")
    [mail] = run_json("show", str(thread))["messages"]
    target = env / "out"
    run("attachments", "save", str(mail["id"]), "--dir", str(target))
    saved = sorted(path.name for path in target.iterdir())
    assert saved == ["bashrc", "escape.sh", "garden-plan-2.pdf", "garden-plan.pdf"]
    assert not (env / "escape.sh").exists() and not (env.parent / "escape.sh").exists()
    assert (target / "garden-plan.pdf").read_bytes() == PLAN
    assert {stat.S_IMODE(path.stat().st_mode) for path in target.iterdir()} == {0o600}
    (target / "garden-plan.pdf").write_bytes(b"mine")
    assert "exists: --force overwrites it" in run("attachments", "save", str(mail["id"]),
                                                  "--dir", str(target), code=1)
    assert (target / "garden-plan.pdf").read_bytes() == b"mine"
    run("attachments", "save", str(mail["id"]), "--dir", str(target), "--force")
    assert (target / "garden-plan.pdf").read_bytes() == PLAN
    assert "no message 999" in run("attachments", "save", "999", code=1)


# Deleting -----------------------------------------------------------------------------------


SECRET_WORDS = "zanzibarquokka"


def database_bytes(env: Path) -> bytes:
    return b"".join(path.read_bytes() for path in env.glob("mail.db*"))


def test_threads_delete_asks_then_deletes_and_a_rescan_does_not_bring_it_back(env):
    raws = [from_reader("ann", 0, f"The {SECRET_WORDS} question.\n"), from_reader("bea", 5)]
    ingest(env, *raws)
    ann = thread_of("ann@example.com")
    assert "Aborted" in run("threads", "delete", str(ann), input="n\n", code=1)
    assert len(run_json("threads")) == 2
    assert "Deleted thread" in run("threads", "delete", str(ann), input="y\n")
    assert [row["correspondent_address"] for row in run_json("threads")] == ["bea@example.com"]
    assert run_json("search", SECRET_WORDS) == []
    # The same mail again (a rescan, a re-read folder): not filed.
    ingest(env, raws[0])
    assert [row["correspondent_address"] for row in run_json("threads", "--all")] \
        == ["bea@example.com"]
    # Listing still works with its options.
    assert run_json("threads", "--state", "needs-reply")[0]["correspondent_address"] \
        == "bea@example.com"
    assert "no thread 99" in run("threads", "delete", "99", "--yes", code=1)


def test_purge_leaves_nothing_of_the_thread_on_disk(env):
    ingest(env, from_reader("ann", 0, f"The {SECRET_WORDS} question.\n"),
           with_files((f"{SECRET_WORDS}.pdf", PLAN)), from_reader("bea", 5))
    assert SECRET_WORDS.encode() in database_bytes(env)
    run("threads", "delete", str(thread_of("ann@example.com")), "--yes", "--purge")
    assert SECRET_WORDS.encode() not in database_bytes(env)
    assert b"%PDF-1.4 garden" not in database_bytes(env)
    ingest(env, from_reader("ann", 0, f"The {SECRET_WORDS} question.\n"))
    assert [row["correspondent_address"] for row in run_json("threads", "--all")] \
        == ["bea@example.com"]


def test_posts_delete_takes_its_threads(env):
    ingest(env, from_reader("ann", 0, f"The {SECRET_WORDS} question.\n"),
           message(sender="Cy <cy@example.com>", to="reply+other@blog.example",
                   message_id="<cy@example.com>"))
    run("posts", "delete", "why-i-blog", "--yes", "--purge")
    assert [row["post"] for row in run_json("threads", "--all")] == ["other"]
    assert [row["slug"] for row in run_json("posts", "list")] == ["other"]
    assert SECRET_WORDS.encode() not in database_bytes(env)
    assert "no post with slug 'nope'" in run("posts", "delete", "nope", "--yes", code=1)


# The outbox: cancel, edit, and the retry window ---------------------------------------------


@pytest.fixture
def site(tmp_path, monkeypatch):
    from test_answer_cli import Site

    with running_relay(tmp_path, security="starttls") as relay:
        yield Site(tmp_path, monkeypatch, relay)


def failed_answer(site, text: str = "Sent while the relay was down.") -> int:
    from test_answer_cli import ada_writes

    thread = site.ingest(ada_writes())["thread"]
    site.relay.stop()
    site.run("reply", str(thread), "-m", text, code=75)
    [entry] = site.json("outbox", "list")
    return entry["id"]


def age_outbox(site, hours: float) -> None:
    """As if the answer had been written ``hours`` ago (the clock cannot be moved)."""
    from datetime import UTC, datetime, timedelta

    written = (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with sqlite3.connect(site.root / "mail.db") as conn:
        conn.execute("UPDATE outbox SET created_at = ?", (written,))
    conn.close()


def test_cron_does_not_send_an_old_failed_answer_by_surprise(site):
    entry = failed_answer(site)
    age_outbox(site, 30)
    site.relay.start()
    waiting = site.run("outbox", "send")  # what cron runs
    assert "more than 24 hours ago: it waits for you" in waiting.stderr
    assert site.relay.received == []
    assert site.json("outbox", "list")[0]["status"] == "failed"
    assert f"Reply {entry} sent" in site.run("outbox", "send", str(entry)).stdout
    assert len(site.relay.received) == 1


def test_outbox_send_all_and_a_wider_window_send_older_answers(site):
    failed_answer(site)
    age_outbox(site, 30)
    site.relay.start()
    site.config.write_text(site.config.read_text() + "retry_window_hours = 48\n")
    assert "sent to ada@example.net" in site.run("outbox", "send").stdout
    assert len(site.relay.received) == 1


def test_outbox_send_all_sends_what_waits_for_the_author(site):
    failed_answer(site)
    age_outbox(site, 30)
    site.relay.start()
    assert "sent to ada@example.net" in site.run("outbox", "send", "--all").stdout


def test_outbox_cancel_means_never_sent(site):
    entry = failed_answer(site)
    site.run("outbox", "cancel", str(entry), input="n\n", code=1)
    assert len(site.json("outbox", "list")) == 1
    assert "never will be" in site.run("outbox", "cancel", str(entry), "--yes").stdout
    site.relay.start()
    site.run("outbox", "send")
    site.run("outbox", "send", "--all")
    assert site.relay.received == []
    assert site.json("outbox", "list", "--all") == []
    assert "no outbox entry" in site.run("outbox", "cancel", str(entry), "--yes",
                                         code=1).output


def test_outbox_edit_changes_the_text_in_the_editor(site):
    entry = failed_answer(site, "Frist draft.")
    [before] = site.json("outbox", "list")
    site.answer("Second thoughts: ")
    assert "changed" in site.run("outbox", "edit", str(entry)).stdout
    site.relay.start()
    site.run("outbox", "send", str(entry))
    sent = site.sent()
    assert sent.get_content().strip() == "Second thoughts: Frist draft."
    assert sent["Message-ID"] == f"<{before['message_id']}>"
    assert sent["To"] == "Ada Lovelace <ada@example.net>"
    assert "sent already" in site.run("outbox", "edit", str(entry), code=1).output


def test_retry_window_is_validated(env):
    (env / "config.toml").write_text(CONFIG + '\n[outgoing]\nhost = "localhost"\n'
                                     'retry_window_hours = "a day"\n')
    out = run("config", "check", code=1)
    assert "config.toml: outgoing.retry_window_hours: must be a positive number" in out
    (env / "config.toml").write_text(CONFIG + '\n[outgoing]\nretry_window_hours = 72\n')
    assert "problem" not in run("config", "check")


@pytest.mark.parametrize(("status", "words"), [
    ("5.1.1", "the address does not exist"),
    ("5.2.2", "the recipient's mailbox is full"),
    ("5.7.1", "the recipient's server refused it (a spam filter or a sending policy)"),
    ("5.4.4", "the recipient's mail server could not be reached"),
    ("5.9.99", "the recipient's server refused it"),
])
def test_failure_reasons_are_plain_words(status, words):
    from mailthreads.mail.dsn import failure_in_words

    raw = bounce_of("a1@blog.example").replace(b"Status: 5.1.1", f"Status: {status}".encode())
    assert failure_in_words(raw) == words
    assert failure_in_words(b"Subject: no report at all\r\n\r\nhello\r\n") \
        == "the recipient's server refused it"


def test_attachments_save_into_a_place_it_cannot_write_is_one_line(env):
    ingest(env, with_files(("garden-plan.pdf", PLAN)))
    [mail] = run_json("show", str(thread_of("ann@example.com")))["messages"]
    (env / "a-file").write_text("not a directory\n")
    output = run("attachments", "save", str(mail["id"]), "--dir", str(env / "a-file" / "sub"),
                 code=1)
    assert "cannot make" in output and "Traceback" not in output


def test_next_without_a_terminal_says_so_in_one_line(env):
    ingest(env, from_reader("ann", 0))
    done = subprocess.run([sys.executable, "-m", "mailthreads", "next"], env=_plain_env(env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          start_new_session=True, timeout=120)  # no controlling terminal
    assert done.returncode == 1, done.stderr
    assert "run it in a terminal" in done.stderr and "Traceback" not in done.stderr
