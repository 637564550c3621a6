"""Secrets that never sit in the config file: an environment variable or the output of a
command the user names.

Commands run through the shell, like mutt's or mbsync's PassCmd, so ``pass show mail/x`` and
pipes work; only the first line of their output is used (password managers print more).
"""

from __future__ import annotations

import os
import subprocess

COMMAND_TIMEOUT = 60.0


class CredentialError(Exception):
    """One line saying why the secret could not be had."""


def secret_from_command(command: str, what: str) -> str:
    """The first line ``command`` prints; ``what`` names the setting in error messages."""
    try:
        done = subprocess.run(command, shell=True, capture_output=True,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CredentialError(f"{what} did not finish in {COMMAND_TIMEOUT:.0f} s") from None
    except OSError as error:
        raise CredentialError(f"{what} could not run: {error}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise CredentialError(f"{what} exited with {done.returncode}"
                              + (f": {said[-1]}" if said else ""))
    lines = done.stdout.decode(errors="replace").splitlines()
    if not lines or not lines[0]:
        raise CredentialError(f"{what} printed nothing")
    return lines[0]


def resolve_secret(password_env: str | None, password_command: str | None,
                   command_key: str = "password_command") -> str:
    """The one way to a secret, for the relay and the IMAP poller alike.

    ``$password_env`` if that is named, else the first line of ``password_command``'s output;
    config validation refuses both for one account, so the order never picks between them.
    ``command_key`` names the command's setting in messages (``oauth2_token_command``).
    Raises ``CredentialError`` with one line the caller prefixes with the account.
    """
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise CredentialError(f"environment variable {password_env} is not set")
        return value
    if password_command:
        return secret_from_command(password_command, command_key)
    raise CredentialError("give password_env or password_command")
