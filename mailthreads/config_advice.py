"""What ``config check`` says beyond "valid TOML with known keys": the combinations a command
would refuse later (errors), and settings that are valid but most likely not what was meant
(warnings), each naming the file and the key. Nothing here touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import Config, ImapAccount, Outgoing

# Ports whose protocol is fixed by convention: TLS on connect, or plain with STARTTLS.
_TLS_PORTS = {465: "SMTP submission", 993: "IMAP"}
_PLAIN_PORTS = {25: "SMTP", 587: "SMTP submission", 143: "IMAP"}


def errors(config: Config, path: Path) -> list[str]:
    """What ``reply`` would refuse, when the config says how to send ([outgoing])."""
    from .outgoing.outbox import reply_problems

    if config.outgoing is None:
        return []  # receiving only: nothing here is needed
    return [f"{path}: {problem} (mailthreads reply would refuse)"
            for problem in reply_problems(config, sending=True)]


def warnings(config: Config, path: Path) -> list[str]:
    found = []
    if config.imap and config.addresses.domain == "localhost":
        found.append(f'{path}: addresses.domain: still "localhost" while [[imap]] accounts are '
                     "set: the poller files mail to reply+<post>@localhost, which nothing in a "
                     "real mailbox is sent to; set it to the domain of your reply addresses")
    if config.outgoing is not None:
        found.extend(_outgoing(config.outgoing, path))
    for index, account in enumerate(config.imap):
        found.extend(_imap(account, f"{path}: imap[{index}]"))
    return found


def _outgoing(outgoing: Outgoing, path: Path) -> list[str]:
    return _password_and_port(f"{path}: outgoing",
                              outgoing.password_env if outgoing.username else None,
                              outgoing.password_command, outgoing.port, outgoing.security,
                              "reply and outbox send fail unless it is set where they run")


def _imap(account: ImapAccount, where: str) -> list[str]:
    from .transport.imap.poll import LOOPBACK

    command = account.oauth2_token_command if account.auth == "oauth2" \
        else account.password_command
    found = _password_and_port(where, account.password_env, command, account.port,
                               account.security, "poll fails unless it is set where it runs")
    if account.security == "none" and account.host not in LOOPBACK:
        found.append(f'{where}.security: "none" sends the password to {account.host} '
                     'unencrypted (none is for loopback only): use "tls" or "starttls"')
    return found


def _password_and_port(where: str, password_env: str | None, command: str | None,
                       port: int | None, security: str, consequence: str) -> list[str]:
    """A password variable that the command would read but this environment lacks (a command,
    when given, is what is used), and a well-known port that contradicts ``security``."""
    found = []
    if password_env and not command and not os.environ.get(password_env):
        found.append(f"{where}.password_env: {password_env} is not set in this environment: "
                     f"{consequence}")
    port_note = _port_mismatch(port, security)
    if port_note:
        found.append(f"{where}.security: {port_note}")
    return found


def _port_mismatch(port: int | None, security: str) -> str | None:
    """A well-known port whose protocol does not match ``security``: it cannot connect."""
    if port in _TLS_PORTS and security != "tls":
        return (f'port {port} ({_TLS_PORTS[port]}) speaks TLS on connect, but security = '
                f'"{security}": set security = "tls"')
    if port in _PLAIN_PORTS and security == "tls":
        return (f'port {port} ({_PLAIN_PORTS[port]}) speaks plain text first, but security = '
                '"tls": set security = "starttls"')
    return None
