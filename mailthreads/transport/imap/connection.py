"""IMAP connections for the poller: connect, secure, log in, find folders; errors in two kinds.

Everything that can go wrong while talking to a server becomes an ``ImapFailure`` whose text is
one line for the user and whose ``temporary`` flag decides the exit code: a server that cannot
be reached now (75: cron or systemd will try again) versus a login or configuration that will
not work until the user changes something (1). The folder work is in ``imap_sync``, the
long-running ``--watch`` loop in ``imap_watch``.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient import exceptions as imap_exceptions
from imapclient.imapclient import SENT

from ...config import ImapAccount
from ...credentials import CredentialError, resolve_secret
from ...errors import Failure
from ..connect_failure import Setting, classify


class ImapFailure(Failure):
    """One line for the user; ``temporary`` when trying again later may succeed."""

    def __init__(self, account: str, text: str):
        self.account = account
        super().__init__(f"account {account}: {text}")


class Unreachable(ImapFailure):
    temporary = True


class ConnectionLost(ImapFailure):
    temporary = True


class LoginFailed(ImapFailure):
    pass


class ServerSaysTryLater(ImapFailure):
    temporary = True


class ServerRefused(ImapFailure):
    """A NO or BAD to a command after login: the server's trouble, so try again later."""

    temporary = True


class StoreBusy(ImapFailure):
    """The database could not take the batch (locked past the busy timeout, disk full)."""

    temporary = True


class SettingsProblem(ImapFailure):
    """A password command that fails, a missing variable, a certificate that does not verify."""


class FolderProblem(ImapFailure):
    """A configured folder the server does not have: the other folders still get polled."""


# Errors that mean the connection is gone or broken: the caller reconnects or exits with 75.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, imaplib.IMAP4.abort, ssl.SSLError, socket.timeout,
)


def default_port(account: ImapAccount) -> int:
    return account.port or (993 if account.security == "tls" else 143)


def tls_context(account: ImapAccount) -> ssl.SSLContext:
    # Certificates are always verified; a private CA (one's own Dovecot) is trusted through
    # tls_ca_file, never by turning verification off.
    return ssl.create_default_context(cafile=account.tls_ca_file)


def connect(account: ImapAccount,
            secret: Callable[[ImapAccount], str] | None = None) -> IMAPClient:
    """A logged-in client. Raises ``ImapFailure`` (closing anything half-open) on failure."""
    client = open_connection(account)
    try:
        login(client, account, (secret or account_secret)(account))
    except BaseException:
        close(client)
        raise
    return client


def open_connection(account: ImapAccount) -> IMAPClient:
    host, port = account.host, default_port(account)
    where = f"{host}:{port}"
    context = tls_context(account) if account.security != "none" else None
    try:
        client = IMAPClient(host, port=port, ssl=account.security == "tls",
                            ssl_context=context, timeout=account.timeout)
    except NETWORK_ERRORS as error:
        raise _connect_failed(account, error) from None
    if account.security == "starttls":
        try:
            if b"STARTTLS" not in client.capabilities():
                raise SettingsProblem(account.name, f"{where} does not offer STARTTLS; use "
                                      'security = "tls" (port 993) if it offers TLS')
            client.starttls(context)
        except NETWORK_ERRORS as error:
            close(client)
            raise _connect_failed(account, error) from None
        except SettingsProblem:
            close(client)
            raise
        except imap_exceptions.IMAPClientError as error:  # a NO or BAD to STARTTLS
            close(client)
            raise SettingsProblem(account.name, f"STARTTLS with {where} failed: "
                                  f"{_server_text(error)}") from None
    return client


def _connect_failed(account: ImapAccount, error: BaseException) -> ImapFailure:
    """A server that cannot be reached now (75), or a setting to fix (1): see connect_failure."""
    setting = Setting(where=f"{account.host}:{default_port(account)}",
                      security=account.security,
                      # ImapFailure names the account already.
                      security_key="security = {}", host_key="host",
                      trust_hint="for a private CA set tls_ca_file")
    failure = classify(error, setting)
    kind = Unreachable if failure.temporary else SettingsProblem
    return kind(account.name, failure.text)


def login(client: IMAPClient, account: ImapAccount, secret: str) -> None:
    try:
        if account.auth == "oauth2":
            client.oauth2_login(account.username, secret)
        else:
            client.login(account.username, secret)
    except imap_exceptions.LoginError as error:
        text = _server_text(error)
        # RFC 5530 codes: UNAVAILABLE and friends are the server's trouble, not the password's.
        if any(code in text for code in ("[UNAVAILABLE]", "[INUSE]", "[SERVERBUG]", "[LIMIT]")):
            raise ServerSaysTryLater(account.name, f"{account.host} cannot log in now: "
                                     f"{text}") from None
        raise LoginFailed(account.name, f"login as {account.username!r} at {account.host} "
                          f"failed: {text}") from None
    except NETWORK_ERRORS as error:
        raise ConnectionLost(account.name, f"connection to {account.host} lost while logging "
                             f"in: {describe(error)}") from None


def account_secret(account: ImapAccount) -> str:
    """The password (or OAuth2 access token), by ``credentials.resolve_secret``."""
    try:
        if account.auth == "oauth2":
            return resolve_secret(None, account.oauth2_token_command, "oauth2_token_command")
        return resolve_secret(account.password_env, account.password_command)
    except CredentialError as error:
        raise SettingsProblem(account.name, str(error)) from None


@dataclass(frozen=True)
class FolderPlan:
    folder: str
    role: str  # "inbox": mail to the author; "sent": the author's own mail


def folders_to_poll(client: IMAPClient, account: ImapAccount) -> tuple[list[FolderPlan], str]:
    """The configured folders, then the Sent folder (named, or found by its ``\\Sent`` flag).

    The second value is a note for the user when no Sent folder is polled ("" otherwise).
    ``sent_folder = ""`` turns the Sent folder off.
    """
    plans = [FolderPlan(folder, "inbox") for folder in dict.fromkeys(account.folders)]
    sent = account.sent_folder
    note = ""
    if sent is None:
        try:
            sent = client.find_special_folder(SENT)
        except imap_exceptions.IMAPClientError:
            sent = None
        if sent is None:
            note = ("no Sent folder polled: the server flags none \\Sent; set sent_folder to "
                    "its name")
    if sent:
        plans = [plan for plan in plans if plan.folder != sent]
        plans.append(FolderPlan(sent, "sent"))
    return plans, note


def describe(error: BaseException) -> str:
    """A short text for a network error, without the exception class soup."""
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    return text or type(error).__name__


def _server_text(error: BaseException) -> str:
    text = str(error)
    # imapclient wraps the server's answer as "b'[AUTHENTICATIONFAILED] ...'"
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return text.strip() or "rejected"


def close(client: IMAPClient) -> None:
    """Log out politely if the connection still works; never raise."""
    with contextlib.suppress(Exception):
        client.logout()
    with contextlib.suppress(Exception):
        client.shutdown()


@contextlib.contextmanager
def session(account: ImapAccount) -> Iterator[IMAPClient]:
    client = connect(account)
    try:
        yield client
    finally:
        close(client)
