"""A real, private SpamAssassin ``spamd`` for tests, like tests/dovecot.py's Dovecot.

Debian's ``spamd`` runs with its own site config directory (a copy of /etc/spamassassin's
``*.pre`` plugin lists plus a ``local.cf`` that turns off Bayes, auto-learning and every
network test), Debian's shipped rules (/usr/share/spamassassin, which include GTUBE), on a
free loopback port, in the foreground, with ``--local`` so that no rule asks the network.
As root it drops to ``nobody`` (``-u``); otherwise it runs as the user.

    from spamd import spamd, spamd_server  # noqa: F401  (pytest fixtures)

    def test_something(spamd):
        spamd.toml()           # a [spam] table for mailthreads' config
        spamd.stop(); spamd.start()   # same port: the scanner down mid-run and back
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SPAMD = shutil.which("spamd") or "/usr/sbin/spamd"
START_TIMEOUT = 60.0
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

_LOCAL_CF = """\
# Private test instance, written by tests/spamd.py: no Bayes, no learning, no network.
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
use_razor2 0
use_pyzor 0
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SpamdServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        config = root / "site"
        config.mkdir()
        for pre in Path("/etc/spamassassin").glob("*.pre"):
            shutil.copy(pre, config / pre.name)
        (config / "local.cf").write_text(_LOCAL_CF)
        (root / "home").mkdir()
        os.chmod(root, 0o755)
        os.chmod(root / "home", 0o777)

    def start(self) -> SpamdServer:
        # A second spamd could not bind the port, and the first one, still answering there,
        # would make it look started while nothing stops the first any more.
        if self.process is not None:
            raise RuntimeError("spamd is running already: stop() it first")
        command = [SPAMD, "--local", "-x", f"--siteconfigpath={self.root / 'site'}",
                   f"--listen=127.0.0.1:{self.port}", "--allowed-ips=127.0.0.1",
                   f"-H{self.root / 'home'}", "-s", "stderr", "--max-children=2",
                   f"--pidfile={self.root / 'spamd.pid'}"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        log = open(self.root / "spamd.log", "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, stdout=log, stderr=log,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("spamd did not start:\n"
                                   + (self.root / "spamd.log").read_text()[-2000:])
            time.sleep(0.2)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                connection.sendall(b"PING SPAMC/1.5\r\n\r\n")
                return b"PONG" in connection.recv(100)
        except OSError:
            return False

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        """spamd stopped with SIGSTOP: the kernel still takes connections into its backlog,
        nobody answers them, as when spamd hangs. Continued at the end."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.process.pid, signal.SIGCONT)

    def clients_waiting(self) -> int:
        """Connections to spamd's port that spamd has not closed: ESTABLISHED, or CLOSE_WAIT
        once the client has sent its whole request (spamc closes its sending side)."""
        port = f":{self.port:04X}"
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in list(table)[1:]]
        return sum(1 for row in rows if row[1].endswith(port) and row[3] in ("01", "08"))

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
            os.killpg(self.process.pid, signal.SIGCONT)  # a hung() one acts on it only then
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def toml(self, timeout: float = 30, **extra: object) -> str:
        """A ``[spam]`` table that points mailthreads at this spamd."""
        lines = ["[spam]", "enabled = true", 'host = "127.0.0.1"', f"port = {self.port}",
                 f"timeout = {timeout}"]
        for key, value in extra.items():
            if isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            elif isinstance(value, (list, tuple)):
                lines.append(f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]")
            else:
                lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def spamd_server() -> Iterator[SpamdServer]:
    """The session's private spamd. Stopped and removed at the end."""
    if not Path(SPAMD).exists():
        pytest.fail("spamd is not installed: apt-get install spamassassin spamd")
    root = Path(tempfile.mkdtemp(prefix="mailthreads-spamd-"))
    server = SpamdServer(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def spamd(spamd_server: SpamdServer) -> SpamdServer:
    """The session's spamd, running (a test that stopped it and failed is made whole)."""
    if spamd_server.process is None or not spamd_server.answers():
        spamd_server.stop()
        spamd_server.start()
    return spamd_server
