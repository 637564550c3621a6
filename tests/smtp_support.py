"""Real servers for the SMTP listener's tests and benchmark: ``mailthreads serve``, Postfix.

``Serve`` runs ``python -m mailthreads ... serve --port 0`` as a child in its own process group
(so that the test can signal it, and is sure to end it and its filer), with its log in a file;
the port comes from the "listening on" line. ``PostfixInstance`` is a private Postfix
(``postfix -c DIR``): its own main.cf, master.cf, queue and data directories, one smtpd on a
free loopback port, no chroot, relaying only the reply domain, either to a ``mailthreads serve``
with exactly the settings of config/postfix/ (so the shipped examples are tested), or onto its
own hold queue (the benchmark's baseline). Nothing here touches a system Postfix.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "blog.example"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
_LISTENING = re.compile(rb"listening on [^ ]+:(\d+)")


def write_config(directory: Path, *, listener: dict[str, Any] | None = None,
                 limits: dict[str, Any] | None = None, secret: str | None = None,
                 extra: str = "", create_posts: bool = True) -> Path:
    """A config for ``blog.example`` with short timeouts; ``listener``/``limits`` override.

    ``create_posts``: a reply to an unknown post creates it, as these transport tests expect
    (the default since issue 12 holds it for review: tests/test_trust.py)."""
    values: dict[str, Any] = {"command_timeout": 30, "data_timeout": 30}
    values.update(listener or {})
    lines = ["[addresses]", f'domain = "{DOMAIN}"', 'catch_all_domain = "replies.blog.example"']
    if secret:
        lines.append(f'secret = "{secret}"')
    lines += ["", "[author]", 'name = "Blog Author"', 'addresses = ["me@blog.example"]', "",
              "[listener]"]
    lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    if limits:
        lines += ["", "[limits]"] + [f"{key} = {_toml(value)}" for key, value in limits.items()]
    if create_posts:
        lines += ["", "[posts]", "create_on_first_reply = true"]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds.

    The timeout only bounds a hung test; nothing here measures how fast the server is.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Serve:
    """A real ``mailthreads serve`` on a free loopback port."""

    def __init__(self, database: Path, config: Path, *, log: Path | None = None,
                 args: tuple[str, ...] = (), preexec: Callable[[], None] | None = None,
                 env: dict[str, str] | None = None):
        self.database = database
        self.config = config
        self.log_path = log or database.with_name(database.stem + "-serve.log")
        self.args = args
        self.preexec = preexec
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.host = "127.0.0.1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mailthreads", "-d", str(self.database),
                "-c", str(self.config), "serve", "--host", self.host, "--port", "0", *self.args]

    def start(self) -> Serve:
        # A second start would lose the first listener (and leak it): one process per Serve.
        assert self.process is None or self.process.poll() is not None, "already started"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=REPO, start_new_session=True, preexec_fn=self.preexec,
                env={**os.environ, **(self.env or {})})

        def listening() -> int | None:
            match = _LISTENING.search(self.log_path.read_bytes()[offset:])
            if match:
                return int(match.group(1))
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n"
                                     + self.log())
            return None

        self.port = wait_for(listening, "mailthreads serve to listen", START_TIMEOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in path.read_text().split()]
        return []

    def send(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the listener alone (as systemd's KillMode=mixed does) and wait for it."""
        self.send(signum)
        code = self.wait()
        self._end_group()
        return code

    def kill_all(self) -> None:
        """SIGKILL for the listener and its filer at once: a crash."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait()
        self._end_group()

    def _end_group(self) -> None:
        # Whatever is left of the group (a filer that outlived its listener) is a leak.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill_all()
        elif self.process is not None:
            self._end_group()

    def __enter__(self) -> Serve:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def query(database: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def pending(database: Path) -> int:
    return query(database, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")[0][0]


def wait_filed(database: Path, deliveries: int, timeout: float = 60.0) -> None:
    """Until ``deliveries`` deliveries exist and none is pending."""
    wait_for(lambda: query(database, "SELECT COUNT(*), COALESCE(SUM(status = 'pending'), 0) "
                                     "FROM deliveries")[0] == (deliveries, 0),
             f"{deliveries} deliveries to be filed", timeout)


def message(*, sender: str = "Jane Reader <jane@example.com>",
            to: str = f"reply+why-i-blog@{DOMAIN}", subject: str = "Re: Why I blog",
            body: str = "I enjoyed this post.\n", message_id: str = "m1@example.com",
            headers: dict[str, str] | None = None) -> bytes:
    """A plain reply as a mail client sends it: CRLF line ends."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
             "Date: Sun, 01 Nov 2026 09:00:00 +0000", f"Message-ID: <{message_id}>",
             *(f"{name}: {value}" for name, value in (headers or {}).items()),
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    text = "\n".join(lines).replace("\r\n", "\n")
    return text.replace("\n", "\r\n").encode()


class Dialogue:
    """A raw SMTP conversation over a socket, for what smtplib will not send."""

    def __init__(self, port: int, *, timeout: float = 30.0, source: str | None = None):
        """``source``: the client's address, e.g. "127.0.0.2" to act as another peer."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buffer = b""

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self) -> tuple[int, str]:
        """The next complete reply (all lines of a multi-line one); (0, "") at end of stream."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return (0, "\n".join(lines))
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), "\n".join(lines)

    def command(self, line: str) -> tuple[int, str]:
        self.send(line + "\r\n")
        return self.reply()

    def open_transaction(self, recipient: str = "reply+why-i-blog@blog.example", *,
                         sender: str = "jane@example.com", helo: str = "client.example") -> None:
        """Greeting, EHLO, MAIL and RCPT, each accepted: ready for DATA."""
        assert self.reply()[0] == 220
        assert self.command(f"EHLO {helo}")[0] == 250
        assert self.command(f"MAIL FROM:<{sender}>")[0] == 250
        assert self.command(f"RCPT TO:<{recipient}>")[0] == 250

    def closed(self) -> bool:
        """Whether the server has closed the connection (after any buffered replies)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Dialogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for localhost, made with Debian's openssl."""
    certificate, key = directory / "server.pem", directory / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)
    return certificate, key


# -- Postfix ------------------------------------------------------------------------------------

_MAIN_CF = """\
# Private instance, written by tests/smtp_support.py. Nothing here touches the system Postfix.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-test.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
smtp_dns_support_level = disabled
smtp_host_lookup = native
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
biff = no
# Retry quickly, so that a test sees a deferred message go through.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

# The benchmark's baseline: relay the reply domain, but put every message on hold.
_HOLD = """\
relay_domains = {domain}, replies.{domain}
smtpd_data_restrictions = check_client_access static:HOLD
"""

EXAMPLES = REPO / "config" / "postfix"


def _example(name: str, root: Path, port: int) -> str:
    """One of config/postfix/'s files, pointed at this instance: the tests run the examples."""
    return (EXAMPLES / name).read_text().replace("hash:/etc/postfix/", f"texthash:{root}/") \
        .replace("[127.0.0.1]:8025", f"[127.0.0.1]:{port}")


_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    """A private Postfix: ``postfix -c DIR``, smtpd on 127.0.0.1:``port``.

    ``relay_to`` is the port of a ``mailthreads serve`` that gets the reply domain
    (replies.blog.example, configured as config/postfix/ shows); without it, mail for
    blog.example is accepted and put on hold in the queue.
    Needs root (Postfix's master runs as root and drops to the ``postfix`` user).
    """

    def __init__(self, *, relay_to: int | None = None, port: int | None = None):
        self.port = port or free_port()
        self.relay_to = relay_to
        # Under /tmp and world-readable: the postfix user must reach its queue, and pytest's
        # own temporary directories are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="mailthreads-postfix-"))
        self.root.chmod(0o755)
        self.started = False

    @property
    def config_directory(self) -> Path:
        return self.root / "etc"

    def write(self) -> None:
        root = self.root
        for name in ("etc", "queue", "data"):
            (root / name).mkdir(exist_ok=True)
        main, master = _MAIN_CF.format(root=root), _MASTER_CF.format(port=self.port)
        if self.relay_to:
            # Exactly what config/postfix/ tells users to add.
            main += _example("main.cf", root, self.relay_to)
            master += _example("master.cf", root, self.relay_to)
            for name in ("transport", "mailthreads_verify"):
                (root / name).write_text(_example(name, root, self.relay_to))
        else:
            main += _HOLD.format(domain=DOMAIN)
        (self.config_directory / "main.cf").write_text(main)
        (self.config_directory / "master.cf").write_text(master)
        postfix_user = pwd.getpwnam("postfix")
        os.chown(root / "data", postfix_user.pw_uid, postfix_user.pw_gid)

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.config_directory), *args],
                              capture_output=True, text=True, timeout=120)

    def start(self) -> PostfixInstance:
        self.write()
        result = self.postfix("start")
        if result.returncode != 0:
            raise AssertionError(f"postfix start failed: {result.stderr}{result.stdout}\n"
                                 + self.log())
        self.started = True
        wait_for(self._accepting, f"Postfix to listen on {self.port}", START_TIMEOUT)
        return self

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                return sock.recv(100).startswith(b"220")
        except OSError:
            return False

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def queue_count(self, *queues: str) -> int:
        total = 0
        for queue in queues or ("incoming", "active", "deferred", "hold", "maildrop"):
            directory = self.root / "queue" / queue
            if directory.exists():
                total += sum(len(files) for _, _, files in os.walk(directory))
        return total

    def master_pid(self) -> int | None:
        path = self.root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().split()[0])
        return None

    def stop(self) -> None:
        if self.started:
            result = self.postfix("stop")
            if result.returncode != 0:
                self.postfix("abort")
            pid = self.master_pid()
            if pid:
                with contextlib.suppress(AssertionError):
                    wait_for(lambda: not Path(f"/proc/{pid}").exists(), "postfix to stop", 30)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostfixInstance:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def postfix(**kwargs: Any) -> Iterator[PostfixInstance]:
    instance = PostfixInstance(**kwargs)
    try:
        yield instance.start()
    finally:
        instance.stop()
