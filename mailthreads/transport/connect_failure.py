"""Why a connection to a mail server failed, and whether trying again later can help.

One judgement for the outgoing relay and the IMAP poller, because cron and systemd act on it:
a temporary failure exits 75 and is retried, anything else exits 1 and waits for the user.
Only a server that cannot be reached now is temporary (connection refused or reset, a timeout,
a DNS lookup that failed for now). A certificate that does not verify, or a port that speaks
another protocol than ``security`` says (TLS on a plain port, plain on a TLS port), will fail
the same way forever: that is a setting to fix, and the text says which one.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from ..errors import temporary_reply

# What OpenSSL reports when the other side answers with something that is not TLS at all,
# typically a plain-text greeting ("220 ...", "* OK ...") read as a TLS record.
_NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST",
                    "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"}
# Ports whose protocol is TLS from the first byte (SMTP submission over TLS, IMAPS).
IMPLICIT_TLS_PORTS = {465, 993}
# DNS answers that will not change by waiting: the name does not exist.
_NO_SUCH_HOST = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA")
                 if hasattr(socket, name)}


@dataclass(frozen=True)
class Setting:
    """Where the fix goes, for the one-line message."""

    where: str  # host:port
    security: str  # tls, starttls, none
    # The setting in the user's words, "{}" standing for the value:
    # '[outgoing] security = {}', or 'security = {}' where the account is named already.
    security_key: str
    host_key: str  # '[outgoing] host', 'host'
    trust_hint: str  # how to trust a private CA

    def set_security(self, value: str) -> str:
        return "set " + self.security_key.format(f'"{value}"')


@dataclass(frozen=True)
class ConnectFailure:
    text: str  # one line for the user
    temporary: bool  # 75 (try again later) rather than 1 (fix a setting)


def classify(error: BaseException, setting: Setting) -> ConnectFailure:
    """Judge an error raised while connecting, greeting or negotiating TLS."""
    where = setting.where
    if isinstance(error, ssl.SSLCertVerificationError):
        return ConnectFailure(f"the certificate of {where} does not verify "
                              f"({error.verify_message or error.reason}); {setting.trust_hint}",
                              temporary=False)
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
        # The server hung up mid-handshake: overloaded or restarting as often as misconfigured.
        return ConnectFailure(f"{where} closed the connection during the TLS handshake",
                              temporary=True)
    if isinstance(error, ssl.SSLError):
        return _tls_mismatch(error, setting)
    if isinstance(error, socket.gaierror):
        return _dns(error, setting)
    if _timed_out(error):
        return ConnectFailure(f"{where} timed out{_plain_on_tls_port_hint(setting)}",
                              temporary=True)
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") \
            if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
        return ConnectFailure(f"{where} answered {error.smtp_code} {' '.join(text.split())}",
                              temporary=temporary_reply(error.smtp_code))
    if isinstance(error, ConnectionRefusedError):
        return ConnectFailure(f"cannot connect to {where}: connection refused", temporary=True)
    if isinstance(error, OSError) and error.strerror:
        return ConnectFailure(f"cannot connect to {where}: {error.strerror}", temporary=True)
    text = " ".join((str(error) or type(error).__name__).split())
    return ConnectFailure(f"cannot connect to {where}: {text}", temporary=True)


def _tls_mismatch(error: ssl.SSLError, setting: Setting) -> ConnectFailure:
    where = setting.where
    if (error.reason or "").upper() in _NOT_TLS_REASONS and setting.security == "tls":
        return ConnectFailure(f"{where} does not speak TLS on connect: "
                              f"{setting.set_security('starttls')}", temporary=False)
    reason = error.reason or " ".join(str(error).split())
    return ConnectFailure(f"TLS with {where} failed ({reason}): check the port and "
                          + setting.security_key.format(f'"{setting.security}"'),
                          temporary=False)


def _dns(error: socket.gaierror, setting: Setting) -> ConnectFailure:
    host = setting.where.rsplit(":", 1)[0]
    if error.errno in _NO_SUCH_HOST:
        return ConnectFailure(f"unknown host {host} ({error.strerror}): check "
                              f"{setting.host_key}", temporary=False)
    return ConnectFailure(f"cannot look up {host} now ({error.strerror})", temporary=True)


def _timed_out(error: BaseException) -> bool:
    if isinstance(error, socket.timeout | TimeoutError):
        return True
    # smtplib turns a greeting that never came into "Connection unexpectedly closed: timed out".
    return isinstance(error, smtplib.SMTPServerDisconnected) and "timed out" in str(error)


def _plain_on_tls_port_hint(setting: Setting) -> str:
    """A plain client on an implicit-TLS port waits for a greeting that never comes."""
    port = setting.where.rsplit(":", 1)[-1]
    if setting.security != "tls" and port.isdigit() and int(port) in IMPLICIT_TLS_PORTS:
        return (f" waiting for its greeting (if port {port} speaks TLS on connect, "
                f"{setting.set_security('tls')})")
    return ""
