"""Logging for ``mailthreads serve``: one line per message, as ``key=value`` pairs.

The format is the one journald, ``grep`` and log shippers already understand (logfmt): words
without spaces stay bare, anything else is quoted. Under systemd (``JOURNAL_STREAM`` set) the
journal adds its own timestamps, so the lines carry none.
"""

from __future__ import annotations

import logging
import os
import sys

from ...printable import neutralise

LOGGER = "mailthreads.smtp"


def configure(verbosity: int) -> None:
    """0: a line per message and every problem; 1: also sessions; 2: the whole SMTP dialogue."""
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(NeutralisingFormatter(f"{stamp}%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("mailthreads").setLevel(logging.DEBUG if verbosity else logging.INFO)
    # aiosmtpd logs every command at INFO: worth reading when debugging, noise otherwise.
    logging.getLogger("mail.log").setLevel(
        {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))


class NeutralisingFormatter(logging.Formatter):
    """Whatever a line quotes (a peer's HELO, an SMTP command at -vv, an error naming a
    header) reaches the terminal or the journal without control sequences."""

    def format(self, record: logging.LogRecord) -> str:
        return neutralise(super().format(record))


def fields(**values: object) -> str:
    """``peer=127.0.0.1:4242 to="<a@b>,<c@d>"``: ``None`` values are left out."""
    return " ".join(f"{key}={_quote(value)}" for key, value in values.items()
                    if value is not None)


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else repr(c)[1:-1] for c in escaped) + '"'
