"""Secrets that never sit in the config file: the output of a command the user names.

Commands run through the shell, like mutt's or mbsync's PassCmd, so ``pass show mail/x`` and
pipes work; only the first line of their output is used (password managers print more).
"""

from __future__ import annotations

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
