"""What the user's own servers say about a message: upstream spam verdicts and the
Authentication-Results (RFC 8601) of DMARC, DKIM and SPF. Pure: headers in, values out.

Anyone can write ``X-Spam-Flag: NO`` or ``Authentication-Results: mx.example.org; dmarc=pass``
into a message. Only the headers that the user's own servers added count, and those are the
ones at the top: every relay prepends its ``Received`` line, so the *trusted block* is the run
of headers from the top down to (not including) the first ``Received`` added ``by`` a host that
is not one of ``trusted`` (``[spam] authserv_ids``: exact host names or parent domains). The
block counts only when one of its ``Received`` lines was added by a trusted host; a message
that no trusted server handled has no trusted headers. Within the block, an
Authentication-Results header counts only when its authserv-id is trusted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32

from .verdicts import Authentication, SpamVerdict

Header = tuple[str, str]  # (name, unfolded value), in message order

MAX_HEADERS = 500  # a hostile message's header count is bounded before it is read

_BY_HOST = re.compile(r"(?:^|[\s;)])by\s+([A-Za-z0-9.\-_\[\]:]+)", re.IGNORECASE)
_NUMBER = r"(-?\d+(?:\.\d+)?)"


def headers_of(raw: bytes) -> list[Header]:
    """The header section of ``raw``, in order, values unfolded."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    message = BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n")
    return [(name, _unfold(str(value))) for name, value in message.items()[:MAX_HEADERS]]


def _unfold(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _host_trusted(host: str, trusted: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == name or host.endswith("." + name)
               for name in (t.lower().strip().rstrip(".") for t in trusted) if name)


def received_by(value: str) -> str | None:
    """The host that added a ``Received`` line (its ``by`` clause)."""
    match = _BY_HOST.search(value.split(";", 1)[0] if ";" in value else value)
    return match.group(1) if match else None


def trusted_block(headers: Sequence[Header], trusted: Iterable[str]) -> list[Header]:
    """The headers the user's own servers added (see the module's description)."""
    trusted = tuple(trusted)
    if not trusted:
        return []
    block: list[Header] = []
    vouched = False
    for name, value in headers:
        if name.lower() == "received":
            host = received_by(value)
            if host is None or not _host_trusted(host, trusted):
                break
            vouched = True
        block.append((name, value))
    return block if vouched else []


def authentication(headers: Sequence[Header], trusted: Iterable[str]) -> Authentication | None:
    """The merged results of the trusted Authentication-Results headers, topmost first."""
    trusted = tuple(trusted)
    found: Authentication | None = None
    results: dict[str, str | None] = {}
    for name, value in trusted_block(headers, trusted):
        if name.lower() != "authentication-results":
            continue
        authserv_id, methods = parse_authentication_results(value)
        if not authserv_id or not _host_trusted(authserv_id, trusted):
            continue
        if found is None:
            found = Authentication(authserv_id)
        for key, result in methods.items():
            results.setdefault(key, result)
    if found is None:
        return None
    return Authentication(found.authserv_id, dmarc=results.get("dmarc"),
                          dmarc_policy=results.get("dmarc_policy"),
                          header_from=results.get("header_from"),
                          dkim=results.get("dkim"), spf=results.get("spf"))


def parse_authentication_results(value: str) -> tuple[str, dict[str, str]]:
    """(authserv-id, {"dmarc": ..., "dmarc_policy": ..., "header_from": ..., "dkim": ...,
    "spf": ...}) of one header value; a method the header does not report is left out."""
    pieces = _split_outside(value, ";")
    authserv_id = _strip_comments(pieces[0]).split(" ")[0].strip() if pieces else ""
    found: dict[str, str] = {}
    for piece in pieces[1:]:
        bare = _strip_comments(piece).strip()
        match = re.match(r"([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z]+)", bare)
        if not match:
            continue
        method, result = match.group(1).lower(), match.group(2).lower()
        if method not in ("dmarc", "dkim", "spf") or method in found:
            continue
        found[method] = result
        if method == "dmarc":
            policy = re.search(r"policy\.dmarc\s*=\s*([A-Za-z]+)", bare, re.IGNORECASE) \
                or re.search(r"\b(?:p|policy)\s*=\s*([A-Za-z]+)", piece, re.IGNORECASE)
            if policy:
                found["dmarc_policy"] = policy.group(1).lower()
            header_from = re.search(r"header\.from\s*=\s*([A-Za-z0-9.\-_]+)", bare,
                                    re.IGNORECASE)
            if header_from:
                found["header_from"] = header_from.group(1).lower()
    return authserv_id, found


def _split_outside(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside of (comments) and "quoted strings"."""
    pieces, current, depth, quoted = [], [], 0, False
    for char in value:
        if char == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth:
            depth -= 1
        elif char == separator and depth == 0 and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def _strip_comments(value: str) -> str:
    out, depth = [], 0
    for char in value:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return _unfold("".join(out))


def upstream_verdict(headers: Sequence[Header], trusted: Iterable[str]) -> SpamVerdict | None:
    """The spam verdict a trusted server wrote (SpamAssassin or rspamd); None when none did."""
    block = trusted_block(headers, trusted)
    first: dict[str, str] = {}
    for name, value in block:
        first.setdefault(name.lower(), value)
    by = next((received_by(v) for n, v in block if n.lower() == "received"), None)
    where = f" (by {by})" if by else ""
    if "x-spam-status" in first:
        return _spamassassin_status(first["x-spam-status"], where)
    if "x-spam-flag" in first:
        flag = first["x-spam-flag"].strip().lower() in ("yes", "true")
        return SpamVerdict("spam" if flag else "ham", f"upstream X-Spam-Flag{where}")
    if "x-spamd-result" in first:
        return _rspamd_result(first["x-spamd-result"], where)
    if "x-spam" in first or "x-rspamd-score" in first:
        score = _float(first.get("x-rspamd-score"))
        flag = first.get("x-spam", "").strip().lower() in ("yes", "true")
        return SpamVerdict("spam" if flag else "ham", f"upstream X-Spam{where}", score)
    return None


def _spamassassin_status(value: str, where: str) -> SpamVerdict:
    """``Yes, score=1000.0 required=5.0 tests=GTUBE,MISSING_DATE autolearn=no``."""
    label = "spam" if value.strip().lower().startswith("yes") else "ham"
    score = re.search(r"(?:score|hits)=" + _NUMBER, value)
    required = re.search(r"required=" + _NUMBER, value)
    tests = re.search(r"tests=([A-Za-z0-9_, ]*?)(?:\s+\w+=|$)", value)
    rules = tuple(t.strip() for t in tests.group(1).split(",") if t.strip()) if tests else ()
    return SpamVerdict(label, f"upstream X-Spam-Status{where}",
                       _float(score.group(1) if score else None),
                       _float(required.group(1) if required else None), rules[:20])


def _rspamd_result(value: str, where: str) -> SpamVerdict:
    """``default: True [15.00 / 15.00]; GTUBE(0.00)[]; ...``."""
    head = re.match(r"\s*\w+\s*:\s*(True|False)\s*\[\s*" + _NUMBER + r"\s*/\s*" + _NUMBER,
                    value, re.IGNORECASE)
    rules = tuple(re.findall(r";\s*([A-Z0-9_]+)\(", value))[:20]
    if not head:
        return SpamVerdict("ham", f"upstream X-Spamd-Result{where}", reasons=rules)
    label = "spam" if head.group(1).lower() == "true" else "ham"
    return SpamVerdict(label, f"upstream X-Spamd-Result{where}", _float(head.group(2)),
                       _float(head.group(3)), rules)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
