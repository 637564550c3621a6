"""A real, private Dovecot IMAP server for tests: start it, put mail in, look at what is there.

Debian's ``dovecot-imapd`` runs as a private instance (``dovecot -c FILE``) with its own
base_dir, log and config, listening only on 127.0.0.1 on free ports: plain IMAP (which offers
STARTTLS) and implicit TLS, with a throw-away certificate authority so clients can verify the
server properly. Mail lives in a temporary maildir store owned by an unprivileged user, because
Dovecot refuses to access mail as root and CI runs as root: as root the server creates the
system user ``mailthreads-test`` when it is missing (falling back to ``nobody``); as any other
user it runs entirely as that user.

Logins come from a passwd-file. Every test gets its own user (so its own mailbox), with a
``\\Sent`` special-use folder (``Sent``), ``Archive`` and ``Trash``. The passwd-file lists
``USERS`` logins from the start (Dovecot notices a changed passwd-file only a second later), so
one server serves a whole test session.

Use it from any test module::

    from dovecot import dovecot, dovecot_server  # noqa: F401  (pytest fixtures)

    def test_something(dovecot):
        uid = dovecot.append(raw_bytes)                # INBOX; returns the new UID
        dovecot.append(answer_bytes, folder="Sent")
        assert dovecot.fetch_all("Sent") == {...}      # {uid: raw bytes}, fetched with BODY.PEEK[]
        dovecot.account_toml(after="seen")             # an [[imap]] table for mailthreads' config

``dovecot`` is a :class:`Mailbox` (host, port, tls_port, username, password, cafile,
password_env, plus append/list/fetch/flags/folder helpers); ``dovecot_server`` is the
session's :class:`DovecotServer` (``add_user()``, ``kick()``, ``stop()``/``start()``).
``start_dovecot(...)`` starts an extra server, e.g. one that does not offer IDLE.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

MAIL_USER = "mailthreads-test"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
START_TIMEOUT = 20.0
USERS = 500

_CONFIG = """\
# Private test instance, written by tests/dovecot.py. Nothing here touches a system Dovecot.
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailthreads-test-{port}
listen = 127.0.0.1
protocols = imap
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/tls/server.pem
ssl_key = <{root}/tls/server.key
ssl_dh = </usr/share/dovecot/dh.pem
# Plain-text logins over the unencrypted port: the tests of security = "none" need them.
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
# Wrong-password tests need not wait the default 2 seconds.
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{root}/mail/%u:LAYOUT=fs
# The test store is thrown away: spare the disk (and the other tests) the fsyncs.
mail_fsync = never
# With fcntl locks, Dovecot 2.3.19 panics ("Resource deadlock avoided") when several sessions
# of a new user create its folders at once, as the watch mode's connections do.
lock_method = flock
mail_max_userip_connections = 100
login_trusted_networks =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 200
}}
protocol imap {{
{imap_capability}
  mail_max_userip_connections = 100
}}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mail_account() -> tuple[str, int, int]:
    """The unprivileged user that owns the mail store: (name, uid, gid)."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--user-group",
             "--shell", "/usr/sbin/nologin", MAIL_USER],
            capture_output=True, text=True, check=False)
        try:
            entry = pwd.getpwnam(MAIL_USER)
        except KeyError:
            if created.returncode != 0:
                entry = pwd.getpwnam("nobody")
            else:
                raise
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _make_certificates(directory: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost; returns the CA file."""
    directory.mkdir(parents=True)
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    key, csr, pem = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                   "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n"
                   "extendedKeyUsage = serverAuth\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=mailthreads test CA", "-keyout", str(ca_key), "-out", str(ca_pem))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(pem))
    os.chmod(key, 0o644)  # read by the login processes, which run as the mail user
    return ca_pem


@dataclass
class DovecotServer:
    """One running private Dovecot. Stop it with :meth:`stop` (the fixtures do)."""

    root: Path
    host: str
    port: int
    tls_port: int
    cafile: Path
    idle: bool = True
    process: subprocess.Popen | None = None
    _users: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    def start(self) -> None:
        """Start (or restart, on the same ports and mail store) the server; wait until it
        answers on both ports."""
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") \
                    if self.process.stderr else ""
                raise RuntimeError(f"dovecot exited with {self.process.returncode}: {error}"
                                   f"\n{self.log()}")
            if _answers(self.host, self.port) and _answers(self.host, self.tls_port):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not start listening\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and wait for its processes to go; the mail store stays."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
        # The master has gone; wait for the ports to be free, so a restart can bind them.
        deadline = time.monotonic() + 10
        while (_answers(self.host, self.port) or _answers(self.host, self.tls_port)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def add_user(self) -> Mailbox:
        """A login nobody has used yet, so an empty mailbox (INBOX, Sent, Archive, Trash)."""
        number = next(self._users)
        if number > USERS:
            raise RuntimeError(f"all {USERS} test logins of this server are used")
        mailbox = Mailbox(self, f"user{number}", _password(self.root, number))
        with mailbox.client():
            pass  # the first login creates the folders, before tests open many sessions
        return mailbox

    def kick(self, username: str) -> None:
        """Disconnect every session of ``username`` (as a server restart would, for them)."""
        done = subprocess.run(["doveadm", "-c", str(self.config_path), "kick", username],
                              capture_output=True, text=True, check=False)
        if done.returncode not in (0, 68):  # 68: nobody of that name was connected
            raise RuntimeError(f"doveadm kick failed: {done.stderr.strip()}")


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def start_dovecot(*, idle: bool = True) -> DovecotServer:
    """Start a private Dovecot on free 127.0.0.1 ports. ``idle=False`` leaves IDLE out of the
    advertised capabilities, like a server without it."""
    user, uid, gid = _mail_account()
    group = user if os.geteuid() == 0 else str(gid)
    with contextlib.suppress(KeyError):
        import grp

        group = grp.getgrgid(gid).gr_name
    # Not pytest's tmp_path: its parents are private to root, and the mail processes run as
    # the mail user, which must reach the store.
    root = Path(tempfile.mkdtemp(prefix="mailthreads-dovecot-"))
    root.chmod(0o755)
    cafile = _make_certificates(root / "tls")
    (root / "mail").mkdir()
    os.chown(root / "mail", uid, gid)
    (root / "passwd").write_text("".join(
        f"user{number}:{{PLAIN}}{_password(root, number)}::::::\n"
        for number in range(1, USERS + 1)))
    (root / "passwd").chmod(0o644)
    port, tls_port = free_port(), free_port()
    capability = "" if idle else (
        "  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT THREAD=REFERENCES "
        "MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE "
        "QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE "
        "SPECIAL-USE")
    (root / "dovecot.conf").write_text(_CONFIG.format(
        root=root, port=port, tls_port=tls_port, user=user, group=group, uid=uid, gid=gid,
        imap_capability=capability))
    server = DovecotServer(root=root, host="127.0.0.1", port=port, tls_port=tls_port,
                           cafile=cafile, idle=idle)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


def _password(root: Path, number: int) -> str:
    # Different per server and user, so a test cannot pass with another login's password.
    return f"secret-{number}-{abs(hash((str(root), number))) % 10**8:08d}"


def remove(server: DovecotServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@dataclass
class Mailbox:
    """One login on a test server, with helpers that talk IMAP to it like another client."""

    server: DovecotServer
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int:
        return self.server.tls_port

    @property
    def cafile(self) -> Path:
        return self.server.cafile

    @property
    def password_env(self) -> str:
        """The environment variable :meth:`account_toml` names for the password."""
        return f"MAILTHREADS_TEST_IMAP_PASSWORD_{self.username.upper()}"

    @property
    def env(self) -> dict[str, str]:
        """``os.environ`` plus the password variable, for a ``mailthreads poll`` subprocess."""
        return {**os.environ, self.password_env: self.password}

    @contextlib.contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A logged-in imapclient connection (plain, loopback only)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            client.login(self.username, self.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def account_toml(self, name: str = "test", **overrides: object) -> str:
        """An ``[[imap]]`` table for this login: plain IMAP on the loopback port, password from
        :attr:`password_env`. ``overrides`` replace or add keys (``after="seen"``...)."""
        values: dict[str, object] = {
            "name": name, "host": self.host, "port": self.port, "security": "none",
            "username": self.username, "password_env": self.password_env,
        }
        values.update(overrides)
        lines = ["[[imap]]"]
        for key, value in values.items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml(value)}")
        return "\n".join(lines) + "\n"

    def append(self, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = ()) -> int:
        """APPEND one message; returns its UID."""
        return self.append_many([raw], folder, flags)[0]

    def append_many(self, raws: Iterable[bytes], folder: str = "INBOX",
                    flags: Iterable[str] = ()) -> list[int]:
        """APPEND messages in order, in MULTIAPPEND commands of up to 500; returns their UIDs
        (from APPENDUID)."""
        flags = tuple(flags)
        uids: list[int] = []
        with self.client() as client:
            for chunk in _chunks(list(raws), 500):
                items = [{"msg": raw, "flags": flags} if flags else raw for raw in chunk]
                uids.extend(_appended_uids(client.multiappend(folder, items)))
        return uids

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def fetch_all(self, folder: str = "INBOX") -> dict[int, bytes]:
        """Every message of ``folder`` by UID, without marking anything seen."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return {uid: item[b"BODY[]"] for uid, item in sorted(data.items())}

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Flags of every message of ``folder`` by UID, as strings (``"\\\\Seen"``), without
        the session-only ``\\Recent``."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = client.get_flags(uids) if uids else {}
        return {uid: {flag.decode() for flag in flags if flag != b"\\Recent"}
                for uid, flags in sorted(data.items())}

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def folders(self) -> list[str]:
        with self.client() as client:
            return [name for _flags, _delimiter, name in client.list_folders()]

    def create_folder(self, folder: str) -> None:
        with self.client() as client:
            client.create_folder(folder)

    def delete_folder(self, folder: str) -> None:
        with self.client() as client:
            client.delete_folder(folder)

    def expunge(self, uids: Iterable[int], folder: str = "INBOX") -> None:
        """Delete messages as another client would: flag \\Deleted, then UID EXPUNGE."""
        uids = list(uids)
        with self.client() as client:
            client.select_folder(folder)
            client.delete_messages(uids)
            client.uid_expunge(uids)


def _appended_uids(response: bytes) -> list[int]:
    # "[APPENDUID <uidvalidity> <uid-set>] Append completed.", the set like "5" or "5:9,11"
    text = response.decode(errors="replace") if isinstance(response, bytes) else str(response)
    if "APPENDUID" not in text:
        raise RuntimeError(f"server did not report APPENDUID: {text}")
    uid_set = text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1]
    uids: list[int] = []
    for part in uid_set.split(","):
        first, _, last = part.partition(":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """The session's private Dovecot (with IDLE). Stopped and removed at the end."""
    if not Path(DOVECOT).exists():
        pytest.fail("dovecot is not installed: apt-get install dovecot-imapd")
    server = start_dovecot()
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> Iterator[Mailbox]:
    """A fresh login with an empty mailbox on the session's Dovecot."""
    if dovecot_server.process is None:  # a test stopped it and failed before restarting it
        dovecot_server.start()
    yield dovecot_server.add_user()
