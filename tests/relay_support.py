"""A real outgoing relay for tests: aiosmtpd on 127.0.0.1, with STARTTLS or implicit TLS and AUTH.

The certificate comes from a throw-away CA made for the test (with the ``cryptography`` package,
else the ``openssl`` command), so the client checks it as it would a real relay's: point
``SSL_CERT_FILE`` at ``relay.cafile`` (what a user with a private relay would do), or pass
``relay.client_context()``.

    with running_relay(tmp_path, security="starttls") as relay:
        ...send...
        assert relay.received[0].rcpt_tos == ["ada@example.net"]

Every relay is stopped when its ``with`` block ends; ``relay.stop()``/``relay.start()`` take it
down and bring it back on the same port, for the "relay is down" tests.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "author@blog.example"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    cafile: Path
    certfile: Path
    keyfile: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 and localhost, valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            raise RuntimeError("the relay tests need the cryptography package or the openssl "
                               "command to make a test certificate") from None
        return _with_openssl(directory)
    return _with_cryptography(directory)


def _with_cryptography(directory: Path) -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailthreads test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True,
              content_commitment=False, key_encipherment=False, data_encipherment=False,
              key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.SubjectAlternativeName([
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                  critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


def _with_openssl(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca_key, csr, ext = directory / "ca.key", directory / "server.csr", directory / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n"
                   "extendedKeyUsage = serverAuth\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=mailthreads test CA", "-keyout", str(ca_key), "-out", str(files.cafile))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(files.keyfile), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(files.cafile), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(files.certfile))
    return files


# The relay ----------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None  # who authenticated on that connection
    encrypted: bool  # whether the connection was TLS when the message was handed over


@dataclass
class Handler:
    """Keeps every message. ``on_data`` may answer instead (e.g. "451 ..."), or cut the line."""

    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    mail_commands: int = 0
    on_data: Callable[[Received], str | None] | None = None
    hang_up_after_data: int = 0  # this many times, take the message and drop the connection

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() \
            if isinstance(session.auth_data, LoginPassword) else None
        message = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                           login, server.transport.get_extra_info("ssl_object") is not None)
        if self.on_data is not None:
            answer = self.on_data(message)
            if answer:
                return answer
        self.received.append(message)
        if self.hang_up_after_data > 0:
            # The message has arrived, but the client never hears so: the "maybe sent" case.
            self.hang_up_after_data -= 1
            server.transport.abort()
            return "250 OK (never heard)"
        return "250 2.0.0 OK: queued"


@dataclass
class Relay:
    security: str  # tls, starttls, none
    port: int
    certificates: Certificates
    handler: Handler
    auth: bool
    controller: Controller | None = None
    host: str = "127.0.0.1"
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def cafile(self) -> Path:
        return self.certificates.cafile

    def client_context(self) -> ssl.SSLContext:
        """What a client trusting the test CA uses (full verification, hostname included)."""
        return ssl.create_default_context(cafile=str(self.cafile))

    def start(self) -> None:
        if self.controller is not None:
            return
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(self.certificates.certfile, self.certificates.keyfile)
        options: dict = {"hostname": self.host, "port": self.port}
        if self.auth:
            options.update(authenticator=self._authenticate, auth_required=True)
        if self.security == "starttls":
            options.update(tls_context=server_context, require_starttls=True)
        elif self.security == "tls":
            # Implicit TLS: aiosmtpd counts only STARTTLS as encryption, so it must be told
            # that AUTH is fine here; the connection is TLS from the first byte.
            options.update(ssl_context=server_context, auth_require_tls=False)
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without STARTTLS, which is right for implicit TLS.
            warnings.simplefilter("ignore", UserWarning)
            self.controller = Controller(self.handler, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            controller, self.controller = self.controller, None
            controller.stop()

    def outgoing_toml(self, **overrides: object) -> str:
        """An [outgoing] table for this relay, the password in $RELAY_TEST_PASSWORD."""
        values: dict[str, object] = {"host": self.host, "port": self.port,
                                     "security": self.security, "timeout": 10}
        if self.auth:
            values.update(username=self.username, password_env="RELAY_TEST_PASSWORD")
        values.update(overrides)
        lines = ["[outgoing]"]
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {text}")
        return "\n".join(lines) + "\n"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.handler.logins.append((login, password))
        ok = (login, password) == (self.username, self.password)
        # handled=False: aiosmtpd answers 535 itself (its default, True, answers nothing).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@contextlib.contextmanager
def running_relay(directory: Path, *, security: str = "starttls", auth: bool = True,
                  handler: Handler | None = None) -> Iterator[Relay]:
    relay = Relay(security=security, port=free_port(),
                  certificates=make_certificates(directory / f"relay-{security}-certs"),
                  handler=handler or Handler(), auth=auth)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
