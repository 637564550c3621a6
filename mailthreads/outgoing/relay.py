"""Outgoing mail: hand one composed message to the configured relay with smtplib.

``security`` is ``tls`` (implicit TLS, port 465), ``starttls`` (port 587; refused if the relay
does not offer it, never silently downgraded) or ``none`` (a local relay; no password is ever
sent over it). Certificates are checked against the system's trust store, which
``SSL_CERT_FILE`` can replace for a private relay.

Every failure is a ``RelayError`` whose ``maybe_sent`` says whether the relay might have
accepted the message anyway: only a connection lost after the whole message was handed over
(during DATA) leaves that open. The outbox never retries such a message by itself. Its
``temporary`` says whether trying again later can help (a relay that is down, a 4xx answer)
or a setting must change first (a certificate, TLS on a plain port, a 5xx answer, a login).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from ..config import Outgoing
from ..credentials import CredentialError, resolve_secret
from ..errors import Failure, temporary_reply
from ..transport.connect_failure import Setting, classify


class RelayError(Failure):
    """Sending failed; the text is one line for the user. Temporary unless it says not."""

    def __init__(self, text: str, *, maybe_sent: bool = False, temporary: bool = True):
        super().__init__(text, temporary=temporary)
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class Sent:
    relay: str  # host:port, for the user
    response: str  # the relay's answer to DATA, e.g. "250 2.0.0 Ok: queued as 4F2"


def problems(outgoing: Outgoing | None) -> list[str]:
    """What stops sending before anything is tried, checked before the author writes."""
    if outgoing is None:
        return ["no [outgoing] section in the config: say which relay sends your answers "
                "(see 'mailthreads config example')"]
    found = []
    if outgoing.username and not (outgoing.password_env or outgoing.password_command):
        found.append("[outgoing] username is set but neither password_env nor "
                     "password_command is")
    if outgoing.username and outgoing.security == "none":
        found.append("[outgoing] security = \"none\" would send the password unencrypted; "
                     "use tls or starttls")
    return found


def send(outgoing: Outgoing, raw: bytes, mail_from: str, recipients: list[str], *,
         context: ssl.SSLContext | None = None) -> Sent:
    """Deliver ``raw`` to the relay for ``recipients``; raises ``RelayError``."""
    where = f"{outgoing.host}:{outgoing.port}"
    password = None
    if outgoing.username:
        try:
            password = resolve_secret(outgoing.password_env, outgoing.password_command)
        except CredentialError as error:
            raise RelayError(f"[outgoing]: {error}", temporary=False) from None
    context = context or ssl.create_default_context()
    try:
        client = _connect(outgoing, context)
    except (OSError, smtplib.SMTPException) as error:
        raise _connect_failed(error, outgoing) from None
    try:
        _prepare(client, outgoing, password, context, where)
        _envelope(client, mail_from, recipients, where)
        try:
            code, response = client.data(raw)
        except smtplib.SMTPDataError as error:
            # The relay answered and refused: nothing was accepted.
            raise RelayError(f"{where} refused the message: {_reply(error)}",
                             temporary=temporary_reply(error.smtp_code)) from None
        except (OSError, smtplib.SMTPException) as error:
            raise RelayError(f"connection to {where} lost while handing over the message "
                             f"({_describe(error)}): it may or may not have been sent",
                             maybe_sent=True) from None
        text = " ".join(response.decode("utf-8", "replace").split())
        if code != 250:
            # smtplib's data() checks only the 354; the verdict on the message is this one.
            raise RelayError(f"{where} refused the message: {code} {text}",
                             temporary=temporary_reply(code))
        return Sent(where, f"{code} {text}")
    except RelayError:
        raise
    except ssl.SSLError as error:  # the STARTTLS handshake
        raise _connect_failed(error, outgoing) from None
    except (OSError, smtplib.SMTPException) as error:
        raise RelayError(f"{where}: {_describe(error)}") from None
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()  # the message is handed over or refused already; QUIT is courtesy


def _connect(outgoing: Outgoing, context: ssl.SSLContext) -> smtplib.SMTP:
    if outgoing.security == "tls":
        return smtplib.SMTP_SSL(outgoing.host, outgoing.port, timeout=outgoing.timeout,
                                context=context)
    return smtplib.SMTP(outgoing.host, outgoing.port, timeout=outgoing.timeout)


def _prepare(client: smtplib.SMTP, outgoing: Outgoing, password: str | None,
             context: ssl.SSLContext, where: str) -> None:
    client.ehlo()
    if outgoing.security == "starttls":
        if not client.has_extn("starttls"):
            raise RelayError(f"{where} does not offer STARTTLS; not sending in the clear "
                             "(set [outgoing] security to tls or none if that is intended)",
                             temporary=False)
        client.starttls(context=context)
        client.ehlo()
    if outgoing.username:
        try:
            client.login(outgoing.username, password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise RelayError(f"{where} refused the login for {outgoing.username}: "
                             f"{_reply(error)}",
                             temporary=temporary_reply(error.smtp_code)) from None
        except smtplib.SMTPNotSupportedError:
            raise RelayError(f"{where} does not offer AUTH; remove [outgoing] username or "
                             "use another relay", temporary=False) from None


def _envelope(client: smtplib.SMTP, mail_from: str, recipients: list[str], where: str) -> None:
    code, response = client.mail(mail_from)
    if code != 250:
        raise RelayError(f"{where} refused the sender {mail_from}: {code} "
                         f"{response.decode('utf-8', 'replace')}", temporary=temporary_reply(code))
    for recipient in recipients:
        code, response = client.rcpt(recipient)
        if code not in (250, 251):
            raise RelayError(f"{where} refused the recipient {recipient}: {code} "
                             f"{response.decode('utf-8', 'replace')}",
                             temporary=temporary_reply(code))


def _connect_failed(error: BaseException, outgoing: Outgoing) -> RelayError:
    """Connecting, the greeting or TLS failed: a relay that is down, or a setting to fix."""
    setting = Setting(where=f"{outgoing.host}:{outgoing.port}", security=outgoing.security,
                      security_key="[outgoing] security = {}", host_key="[outgoing] host",
                      trust_hint="for a private relay point SSL_CERT_FILE at its CA")
    failure = classify(error, setting)
    return RelayError(failure.text, temporary=failure.temporary)


def _reply(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{error.smtp_code} {' '.join(str(text).split())}"


def _describe(error: BaseException) -> str:
    """An error once connected (connecting is ``connect_failure.classify``'s)."""
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply(error)
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    return " ".join(text.split())
