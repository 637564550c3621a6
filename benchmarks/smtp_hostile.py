"""Hostile senders against `mailthreads serve`: what an attack costs the listener and others.

    python benchmarks/smtp_hostile.py                      # every attack, this worktree's code
    python benchmarks/smtp_hostile.py --code /tmp/old      # the same against another checkout
    python benchmarks/smtp_hostile.py --attack crlf --crlf-mib 10

Each attack runs against a fresh `mailthreads serve` on loopback, while a legitimate client
sends one ordinary message at a time (smtplib, a new connection each) from 127.0.0.3 and
records how long each transaction takes. Measured: the attack's own figures, the listener's
peak RSS (VmHWM of the `serve` process), and the legitimate client's median and worst latency.

- crlf: one DATA body made only of CRLF (``--crlf-mib``, default 40 MiB) with
  max_message_size = 25 MiB: time to the reply, the reply, peak RSS.
- drip: data_timeout = 5 s, one CRLF every 2 s in DATA: how long the session stays open
  (capped at 40 s).
- token: a post with ``--threads`` threads (default 10,000, written straight into the
  database), four connections sending RCPT with forged tokens as fast as they get answers:
  the time of one forged RCPT, and the legitimate latency meanwhile.
- peers: 100 idle connections from 127.0.0.2; then 20 legitimate connections from 127.0.0.3:
  how many got 421.

Prints one JSON object per attack; nothing is written to the README (the figures go in the
issue note and benchmarks/README.md by hand).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from smtp_support import Serve, message, write_config  # noqa: E402

SECRET = "benchmark-secret-0123456789"
LEGIT_PEER = "127.0.0.3"
ATTACK_PEER = "127.0.0.2"
# Hex digits to base32 letters: a forged token that has the form of a real one.
BASE32 = str.maketrans("0123456789", "qrstuvwxyz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code to run")
    parser.add_argument("--attack", action="append",
                        choices=["crlf", "drip", "token", "peers"])
    parser.add_argument("--crlf-mib", type=int, default=40)
    parser.add_argument("--threads", type=int, default=10_000)
    args = parser.parse_args()
    for attack in args.attack or ["crlf", "drip", "token", "peers"]:
        with tempfile.TemporaryDirectory(prefix="mailthreads-hostile-") as work:
            result = ATTACKS[attack](Path(work), args)
        print(json.dumps({"attack": attack, **result}), flush=True)


class Legit(threading.Thread):
    """One ordinary message at a time from 127.0.0.3, each on a new connection, timed."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.times: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            start = time.monotonic()
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=60,
                                  source_address=(LEGIT_PEER, 0)) as client:
                    client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                                    message(message_id=f"legit-{n}@example.com"))
                self.times.append(time.monotonic() - start)
            except (smtplib.SMTPException, OSError) as error:
                self.failures.append(f"{type(error).__name__}: {error}"[:100])
            self.stop.wait(0.2)

    def summary(self) -> dict[str, Any]:
        self.stop.set()
        self.join(70)
        times = self.times or [float("nan")]
        return {"legit_sent": len(self.times), "legit_median_s": round(statistics.median(times), 4),
                "legit_max_s": round(max(times), 4), "legit_failures": len(self.failures)}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class CodeServe(Serve):
    """``serve`` from the checkout ``--code`` names (-P: not from the current directory)."""

    def command(self) -> list[str]:
        return [sys.executable, "-P", *super().command()[1:]]


def serve_code(database: Path, config: Path, args: argparse.Namespace) -> Serve:
    server = CodeServe(database, config, env={"PYTHONPATH": str(args.code)})
    return server.start()


def start_serve(work: Path, args: argparse.Namespace, listener: dict[str, Any]) -> Serve:
    return serve_code(work / "mail.db", write_config(work, listener=listener, secret=SECRET),
                      args)


def baseline(port: int) -> float:
    """The legitimate client's median latency before the attack (5 messages)."""
    legit = Legit(port)
    legit.start()
    time.sleep(1.2)
    return legit.summary()["legit_median_s"]


def open_data(port: int, source: str = ATTACK_PEER) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=300,
                                    source_address=(source, 0))
    reader = sock.makefile("rb")
    reader.readline()
    for line in ("EHLO attacker.example", "MAIL FROM:<a@attacker.example>",
                 "RCPT TO:<reply+why-i-blog@blog.example>", "DATA"):
        sock.sendall(line.encode() + b"\r\n")
        while True:
            reply = reader.readline()
            if reply[3:4] != b"-":
                break
    assert reply.startswith(b"354"), reply
    return sock


def read_reply(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def attack_crlf(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    serve = start_serve(work, args, {"max_message_size": 25 * 1024 * 1024})
    try:
        before = baseline(serve.port)
        legit = Legit(serve.port)
        legit.start()
        sock = open_data(serve.port)
        start = time.monotonic()
        block = b"\r\n" * (512 * 1024)
        for _ in range(args.crlf_mib):
            sock.sendall(block)
        sock.sendall(b".\r\n")
        reply = read_reply(sock)
        elapsed = time.monotonic() - start
        sock.close()
        return {"mib": args.crlf_mib, "seconds": round(elapsed, 2), "reply": reply[:40],
                "peak_rss_mb": peak_rss_mb(serve.pid), "legit_before_s": before,
                **legit.summary()}
    finally:
        serve.close()


def attack_drip(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    serve = start_serve(work, args, {"data_timeout": 5})
    try:
        sock = open_data(serve.port)
        sock.settimeout(2)
        start = time.monotonic()
        closed = None
        while closed is None and time.monotonic() - start < 40:
            try:
                sock.sendall(b"\r\n")
                sock.recv(4096)  # the 421, or the end of the stream: the session is over
                closed = time.monotonic() - start
            except TimeoutError:
                continue
            except OSError:
                closed = time.monotonic() - start
        sock.close()
        return {"data_timeout_s": 5, "session_open_s": round(closed, 1) if closed else ">40"}
    finally:
        serve.close()


def fill_threads(database: Path, count: int) -> None:
    """A post with ``count`` threads, one correspondent each, written straight into SQLite."""
    conn = sqlite3.connect(database)
    now = "2026-11-25T00:00:00Z"
    with conn:
        post = conn.execute("INSERT INTO posts (slug, title, closed, aliases, created_at) "
                            "VALUES ('big-post', 'Big', 0, '[]', ?)", (now,)).lastrowid
        for n in range(count):
            person = conn.execute("INSERT INTO correspondents (name, created_at) VALUES (?, ?)",
                                  (f"P{n}", now)).lastrowid
            conn.execute("INSERT INTO correspondent_addresses VALUES (?, ?, ?)",
                         (f"p{n}@example.com", person, now))
            conn.execute("INSERT INTO threads (post_id, correspondent_id, subject, created_at) "
                         "VALUES (?, ?, 'Re: Big', ?)", (post, person, now))
    conn.close()


def attack_token(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    database = work / "mail.db"
    config = write_config(work, secret=SECRET)
    # Create the schema with the code under test, then the threads.
    subprocess.run([sys.executable, "-P", "-m", "mailthreads", "-d", str(database),
                    "-c", str(config), "stats"], check=True, cwd=ROOT, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(args.code)})
    fill_threads(database, args.threads)
    serve = serve_code(database, config, args)
    stop = threading.Event()
    rcpt_times: list[float] = []

    def forge() -> None:
        """Ten forged RCPTs (under max_bad_commands), then a new connection."""
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=60,
                          source_address=(ATTACK_PEER, 0)) as client:
            client.ehlo("attacker.example")
            client.mail("a@attacker.example")
            for _ in range(10):
                token = secrets.token_hex(13).translate(BASE32)
                start = time.monotonic()
                client.rcpt(f"reply+big-post.{token}@blog.example")
                rcpt_times.append(time.monotonic() - start)

    def forger() -> None:
        while not stop.is_set():
            with contextlib.suppress(smtplib.SMTPException, OSError):
                forge()

    try:
        before = baseline(serve.port)
        legit = Legit(serve.port)
        legit.start()
        workers = [threading.Thread(target=forger, daemon=True) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(15)
        stop.set()
        for worker in workers:
            worker.join(60)
        result = legit.summary()
        return {"threads": args.threads, "forged_rcpts": len(rcpt_times),
                "forged_rcpt_median_s": round(statistics.median(rcpt_times), 4),
                "legit_before_s": before, **result}
    finally:
        serve.close()


def attack_peers(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    serve = start_serve(work, args, {})
    idle: list[socket.socket] = []
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                sock = socket.create_connection(("127.0.0.1", serve.port), timeout=10,
                                                source_address=(ATTACK_PEER, 0))
                idle.append(sock)
        time.sleep(1)
        refused = 0
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", serve.port), timeout=10,
                                          source_address=(LEGIT_PEER, 0)) as sock:
                if sock.recv(100).startswith(b"421"):
                    refused += 1
        return {"idle_connections": len(idle), "legit_refused_of_20": refused}
    finally:
        for sock in idle:
            sock.close()
        serve.close()


ATTACKS = {"crlf": attack_crlf, "drip": attack_drip, "token": attack_token, "peers": attack_peers}

if __name__ == "__main__":
    main()
