"""Upstream verdicts and Authentication-Results, believed only from the user's own servers
(mail.upstream), and the spamd reply parser. Pure: no server here (test_spam.py has spamd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailthreads.config import ConfigError, Spam, parse
from mailthreads.mail.upstream import (
    authentication,
    headers_of,
    parse_authentication_results,
    trusted_block,
    upstream_verdict,
)
from mailthreads.spam import ScannerUnavailable, judge, parse_spamd_reply

OURS = ("mx.own.example",)

# What the user's MX adds (top), then the sender's relay, then what the sender wrote.
TRUSTED_TOP = (
    "Authentication-Results: mx.own.example; dkim=none; spf=fail smtp.mailfrom=bank.example;\r\n"
    " dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=bank.example\r\n"
    "X-Spam-Status: Yes, score=7.5 required=5.0 tests=FORGED_BANK,\r\n"
    " HTML_ONLY autolearn=no version=4.0.1\r\n"
    "Received: from relay.sender.example (relay.sender.example [192.0.2.1])\r\n"
    "\tby mx.own.example (Postfix) with ESMTPS id 4Zb; Sun, 1 Nov 2026 09:00:01 +0000\r\n"
)
FOREIGN = ("Received: from pc (pc [10.0.0.2]) by relay.sender.example with SMTP;\r\n"
           " Sun, 1 Nov 2026 09:00:00 +0000\r\n")
SENDER_WRITTEN = (
    "X-Spam-Flag: NO\r\n"
    "X-Spam-Status: No, score=-5.0 required=5.0 tests=ALL_TRUSTED\r\n"
    "Authentication-Results: mx.own.example; dkim=pass; spf=pass; dmarc=pass\r\n"
    " header.from=bank.example\r\n"
    "X-Spamd-Result: default: False [-10.00 / 15.00]\r\n"
)
BODY = ("From: Bank <alerts@bank.example>\r\nTo: reply+why-i-blog@blog.example\r\n"
        "Subject: Re: Why I blog\r\nMessage-ID: <b1@bank.example>\r\n\r\nVerify your account.\r\n")


def raw(*parts: str) -> bytes:
    return "".join(parts).encode()


def test_headers_written_by_the_sender_below_the_first_foreign_received_are_ignored():
    headers = headers_of(raw(TRUSTED_TOP, FOREIGN, SENDER_WRITTEN, BODY))
    auth = authentication(headers, OURS)
    assert auth is not None and auth.dmarc == "fail" and auth.dmarc_policy == "reject"
    assert auth.forged and auth.header_from == "bank.example"
    verdict = upstream_verdict(headers, OURS)
    assert verdict is not None and verdict.label == "spam"
    assert (verdict.score, verdict.threshold) == (7.5, 5.0)
    assert verdict.reasons == ("FORGED_BANK", "HTML_ONLY")
    assert verdict.source == "upstream X-Spam-Status (by mx.own.example)"


def test_sender_written_headers_do_not_fill_in_what_our_server_did_not_say():
    top = ("Authentication-Results: mx.own.example; spf=fail smtp.mailfrom=bank.example\r\n"
           "Received: from relay.sender.example by mx.own.example; Sun, 1 Nov 2026 09:00 +0000\r\n")
    headers = headers_of(raw(top, FOREIGN, SENDER_WRITTEN, BODY))
    auth = authentication(headers, OURS)
    assert auth is not None and (auth.spf, auth.dkim, auth.dmarc) == ("fail", None, None)
    assert upstream_verdict(headers, OURS) is None


def test_forged_verdicts_alone_count_for_nothing():
    # Without the trusted top block, only the sender's headers and their relay's are left.
    headers = headers_of(raw(FOREIGN, SENDER_WRITTEN, BODY))
    assert trusted_block(headers, OURS) == []
    assert authentication(headers, OURS) is None
    assert upstream_verdict(headers, OURS) is None
    # Nor does a message that never passed a Received line of ours.
    assert upstream_verdict(headers_of(raw(SENDER_WRITTEN, BODY)), OURS) is None


def test_no_trusted_servers_configured_believes_nothing():
    headers = headers_of(raw(TRUSTED_TOP, FOREIGN, SENDER_WRITTEN, BODY))
    assert authentication(headers, ()) is None
    assert upstream_verdict(headers, ()) is None
    assert judge(raw(TRUSTED_TOP, FOREIGN, SENDER_WRITTEN, BODY), Spam()).verdict.label \
        == "unscanned"


def test_a_parent_domain_trusts_its_hosts_and_a_foreign_authserv_id_is_skipped():
    top = ("Authentication-Results: evil.example; dmarc=pass header.from=bank.example\r\n"
           "Authentication-Results: mx3.own.example; dmarc=fail policy.dmarc=quarantine "
           "header.from=bank.example\r\n"
           "Received: from x by mx3.own.example; Sun, 1 Nov 2026 09:00:01 +0000\r\n")
    auth = authentication(headers_of(raw(top, FOREIGN, BODY)), ("own.example",))
    assert auth is not None and auth.authserv_id == "mx3.own.example"
    assert auth.dmarc == "fail" and auth.dmarc_policy == "quarantine" and auth.forged
    # "notown.example" is not a host of "own.example".
    assert authentication(headers_of(raw(top.replace("mx3.own", "mx3.notown"), FOREIGN, BODY)),
                          ("own.example",)) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("mx.google.com; dkim=pass header.i=@x.org; spf=pass (google.com: ok) smtp.mailfrom=x.org;"
     " dmarc=fail (p=QUARANTINE sp=NONE dis=QUARANTINE) header.from=x.org",
     {"dkim": "pass", "spf": "pass", "dmarc": "fail", "dmarc_policy": "quarantine",
      "header_from": "x.org"}),
    ('rspamd.own.example; dmarc=fail reason="No valid SPF; no DKIM" header.from=x.org '
     "(policy=reject)",
     {"dmarc": "fail", "dmarc_policy": "reject", "header_from": "x.org"}),
    ("mx.own.example 1; dmarc=pass (p=none dis=none) header.from=x.org",
     {"dmarc": "pass", "dmarc_policy": "none", "header_from": "x.org"}),
    ("mx.own.example; none", {}),
])
def test_authentication_results_of_common_servers(value, expected):
    authserv_id, results = parse_authentication_results(value)
    assert authserv_id in ("mx.google.com", "rspamd.own.example", "mx.own.example")
    assert results == expected


def test_dmarc_failure_without_a_strict_policy_is_not_forged():
    top = ("Authentication-Results: mx.own.example; dmarc=fail (p=none) header.from=x.org\r\n"
           "Received: from x by mx.own.example; Sun, 1 Nov 2026 09:00:01 +0000\r\n")
    auth = authentication(headers_of(raw(top, BODY)), OURS)
    assert auth is not None and auth.dmarc == "fail" and not auth.forged


def test_rspamd_headers():
    top = ("X-Spamd-Result: default: True [16.20 / 15.00]; GTUBE(0.00)[];\r\n"
           " R_SPF_FAIL(1.00)[-all]\r\nX-Rspamd-Score: 16.20\r\nX-Spam: Yes\r\n"
           "Received: from x by mx.own.example; Sun, 1 Nov 2026 09:00:01 +0000\r\n")
    verdict = upstream_verdict(headers_of(raw(top, FOREIGN, SENDER_WRITTEN, BODY)), OURS)
    assert verdict is not None and verdict.label == "spam"
    assert (verdict.score, verdict.threshold) == (16.2, 15.0)
    assert verdict.reasons == ("GTUBE", "R_SPF_FAIL")
    only_flag = ("X-Spam: No\r\nX-Rspamd-Score: 1.5\r\n"
                 "Received: from x by mx.own.example; Sun, 1 Nov 2026 09:00:01 +0000\r\n")
    verdict = upstream_verdict(headers_of(raw(only_flag, BODY)), OURS)
    assert verdict is not None and (verdict.label, verdict.score) == ("ham", 1.5)


def test_spamd_replies():
    reply = parse_spamd_reply(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 14\r\n"
                              b"Spam: True ; 1004.2 / 5.0\r\n\r\nGTUBE,NO_RELAYS", "x")
    assert reply.is_spam and reply.score == 1004.2 and reply.rules == ("GTUBE", "NO_RELAYS")
    with pytest.raises(ScannerUnavailable, match="refused the scan: EX_NOPERM"):
        parse_spamd_reply(b"SPAMD/1.0 77 EX_NOPERM\r\n\r\n", "x")
    with pytest.raises(ScannerUnavailable, match="no SPAMD status line"):
        parse_spamd_reply(b"", "x")


def test_a_dead_scanner_gives_unscanned_with_the_reason():
    judgement = judge(raw(BODY), Spam(enabled=True, port=1, timeout=5))
    assert judgement.verdict.label == "unscanned"
    assert "spamd at 127.0.0.1:1" in judgement.verdict.reasons[0]


def test_spam_config_is_validated(tmp_path):
    config = parse({"spam": {"enabled": True, "port": 11783, "threshold": 6,
                             "authserv_ids": ["mx.own.example"], "dmarc_failure": "spam"}},
                   Path("c.toml"))
    assert config.spam == Spam(True, "127.0.0.1", 11783, 10.0, 6.0, ("mx.own.example",), "spam")
    with pytest.raises(ConfigError) as error:
        parse({"spam": {"enabeld": True, "dmarc_failure": "reject", "port": 70000}},
              Path("c.toml"))
    text = str(error.value)
    assert "c.toml: spam.enabeld: unknown key" in text
    assert "spam.dmarc_failure: 'reject' must be one of quarantine, spam" in text
    assert "spam.port" in text
