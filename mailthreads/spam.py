"""Sender trust, the spam half: a small SpamAssassin ``spamd`` client and the verdict of one
message as it is filed.

The client speaks the spamd protocol (``SYMBOLS SPAMC/1.5`` over TCP): it sends the raw bytes
and reads back ``Spam: True ; 1004.2 / 5.0`` and the names of the rules that hit. It is used
only while a message is filed, never between DATA and the ``250``: a scanner that is slow,
down or broken costs a scan, not the message, which is filed as ``unscanned`` and scanned
again by ``mailthreads rescan``.

``judge`` combines the three sources this side knows about: a ``spamd`` scan (when
``[spam] enabled``), a verdict written by one of the user's own servers (``mail.upstream``),
and nothing at all (``unscanned``).
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass

from .config import Spam
from .mail.upstream import Header, authentication, headers_of, upstream_verdict
from .mail.verdicts import UNSCANNED, Authentication, SpamVerdict

MAX_REPLY_BYTES = 64 * 1024  # a SYMBOLS answer is a few hundred bytes
# spamc skips messages over 500 KB; we scan the first MiB (headers and the text, where spam
# shows itself) rather than let a big attachment make every scan slow.
MAX_SCAN_BYTES = 1024 * 1024
# Once spamd has not answered, filing does not ask it again for this long: each message would
# wait up to [spam] timeout for a scanner that is down or hung (a 1,000-message import behind a
# hung spamd took hours). Those messages are filed 'unscanned'; serve scans them again by
# itself, 'mailthreads rescan' at once (rescans always ask).
OUTAGE_SECONDS = 60.0
_outages: dict[str, tuple[float, str]] = {}  # "host:port": (ask again after, what went wrong)
_STATUS = re.compile(rb"^SPAMD/\d+\.\d+\s+(\d+)\s+(.*)$")
_SPAM_LINE = re.compile(rb"^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)",
                        re.IGNORECASE)


class ScannerUnavailable(Exception):
    """The scanner could not give a verdict; the text says why in one line."""


class ScannerDown(ScannerUnavailable):
    """Not even a connection and an answer in time: spamd is down, hung or unreachable."""


@dataclass(frozen=True)
class SpamdReply:
    is_spam: bool
    score: float
    required: float
    rules: tuple[str, ...]


def spamd_check(raw: bytes, host: str, port: int, timeout: float) -> SpamdReply:
    """Ask spamd about ``raw``; raises ``ScannerUnavailable`` on any failure."""
    body = raw[:MAX_SCAN_BYTES]
    request = (b"SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\nUser: mailthreads\r\n\r\n"
               % len(body)) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
            reply = _read_bounded(connection)
    except TimeoutError:
        raise ScannerDown(f"spamd at {host}:{port} did not answer within {timeout:g} s") \
            from None
    except OSError as error:
        raise ScannerDown(f"spamd at {host}:{port}: {error.strerror or error}") from None
    return parse_spamd_reply(reply, f"{host}:{port}")


def _read_bounded(connection: socket.socket) -> bytes:
    chunks, size = [], 0
    while size <= MAX_REPLY_BYTES:
        chunk = connection.recv(8192)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:MAX_REPLY_BYTES]


def parse_spamd_reply(reply: bytes, where: str) -> SpamdReply:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = _STATUS.match(lines[0]) if lines else None
    if status is None:
        raise ScannerUnavailable(f"spamd at {where} gave no SPAMD status line")
    if status.group(1) != b"0":
        message = status.group(2).decode("ascii", "replace")[:100]
        raise ScannerUnavailable(f"spamd at {where} refused the scan: {message}")
    for line in lines[1:]:
        match = _SPAM_LINE.match(line)
        if match:
            rules = tuple(r.strip() for r in body.decode("ascii", "replace").split(",")
                          if re.fullmatch(r"[A-Za-z0-9_]+", r.strip()))
            return SpamdReply(match.group(1).lower() in (b"true", b"yes"),
                              float(match.group(2)), float(match.group(3)), rules[:30])
    raise ScannerUnavailable(f"spamd at {where} gave no Spam: line")


def scan(raw: bytes, settings: Spam) -> SpamVerdict:
    """Our own spamd's verdict; ``unscanned`` (with the reason) when it cannot give one.
    Remembers when spamd is down (``spamd_down``), and that it is up again."""
    where = f"{settings.host}:{settings.port}"
    try:
        reply = spamd_check(raw, settings.host, settings.port, settings.timeout)
    except ScannerDown as error:
        _outages[where] = (time.monotonic() + OUTAGE_SECONDS, str(error))
        return SpamVerdict("unscanned", f"spamd {where}", reasons=(str(error),))
    except ScannerUnavailable as error:  # it answered, about this message
        _outages.pop(where, None)
        return SpamVerdict("unscanned", f"spamd {where}", reasons=(str(error),))
    _outages.pop(where, None)
    threshold = settings.threshold if settings.threshold is not None else reply.required
    label = "spam" if reply.score >= threshold else "ham"
    return SpamVerdict(label, f"spamd {where}", reply.score, threshold, reply.rules)


def forget_outages() -> None:
    """Ask every spamd again at the next scan (a test's fresh start)."""
    _outages.clear()


def spamd_down(settings: Spam) -> str | None:
    """Why spamd is taken to be down, when a scan in this process found it down less than
    ``OUTAGE_SECONDS`` ago; None otherwise."""
    until, why = _outages.get(f"{settings.host}:{settings.port}", (0.0, ""))
    return why if time.monotonic() < until else None


def _scan_unless_down(raw: bytes, settings: Spam) -> SpamVerdict:
    """``scan``, unless spamd was found down a moment ago: filing does not wait for it."""
    why = spamd_down(settings)
    if why is None:
        return scan(raw, settings)
    return SpamVerdict("unscanned", f"spamd {settings.host}:{settings.port}",
                       reasons=(f"{why} (not asked again for {OUTAGE_SECONDS:g} s)",))


@dataclass(frozen=True)
class Judgement:
    """What this side of sender trust knows about one message."""

    verdict: SpamVerdict
    authentication: Authentication | None

    @property
    def forged(self) -> bool:
        return self.authentication is not None and self.authentication.forged


def judge(raw: bytes, settings: Spam, *, scan_now: bool = True) -> Judgement:
    """The spam verdict and trusted authentication results of ``raw``.

    Our own spamd wins over an upstream verdict (it runs with the user's threshold); when it
    is off or down, a trusted upstream verdict stands; else the message is ``unscanned``.
    ``scan_now=False`` leaves spamd out (``explain`` without a scan).
    """
    if not settings.enabled and not settings.authserv_ids:
        return Judgement(UNSCANNED, None)  # nothing to ask, nothing to believe
    headers: list[Header] = headers_of(raw)
    auth = authentication(headers, settings.authserv_ids)
    upstream = upstream_verdict(headers, settings.authserv_ids)
    if settings.enabled and scan_now:
        scanned = _scan_unless_down(raw, settings)
        if scanned.label != "unscanned" or upstream is None:
            return Judgement(scanned, auth)
    if upstream is not None:
        return Judgement(upstream, auth)
    if settings.enabled:
        return Judgement(SpamVerdict("unscanned", f"spamd {settings.host}:{settings.port}",
                                     reasons=("not scanned yet",)), auth)
    return Judgement(UNSCANNED, auth)
