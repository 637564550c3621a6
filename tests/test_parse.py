import inspect
import re
from email.message import EmailMessage

import mailparser
import pytest
from mailfactory import message

from mailthreads.config import Limits
from mailthreads.mail import parse as parse_module
from mailthreads.mail.parse import Unparseable, parse


def test_encoded_words_and_charsets_are_decoded():
    raw = (b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\r\n"
           b"To: reply+p@blog.example\r\n"
           b"Subject: =?iso-8859-1?q?R=E9ponse_=E0_votre_article?=\r\n"
           b"Message-ID: <x@y>\r\n"
           b"Content-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Tr=E8s bien =E9crit.\r\n")
    parsed = parse(raw)
    assert parsed.sender.name == "Jürgen Müller"
    assert parsed.subject == "Réponse à votre article"
    assert "Très bien écrit." in parsed.text


def test_folded_headers_cannot_smuggle_line_breaks():
    raw = message().replace(b"Subject: Re: Why I blog",
                            b"Subject: A long subject that a client folds\r\n across two lines")
    parsed = parse(raw)
    assert parsed.subject == "A long subject that a client folds across two lines"
    assert "\n" not in parsed.subject and "\r" not in parsed.subject


def test_identity_ignores_transport_headers_but_not_the_body():
    plain = parse(message())
    relayed = parse(b"Received: from a by b\r\nDelivered-To: x@y\r\nX-Spam: no\r\n" + message())
    edited = parse(message(body="Another text.\n"))
    assert plain.identity_sha256 == relayed.identity_sha256
    assert plain.identity_sha256 != edited.identity_sha256


def test_synthetic_message_id_is_stable():
    first = parse(message(message_id=None))
    again = parse(b"Received: from a by b\r\n" + message(message_id=None))
    assert first.synthetic_message_id
    assert first.message_id == again.message_id


@pytest.mark.parametrize("limits, raw, reason", [
    (Limits(max_message_size=1000), message(body="x" * 2000), "byte limit"),
    (Limits(max_header_size=200), message(headers={"X-Big": "y" * 500}), "header section"),
    (Limits(max_mime_parts=3), message(html="<p>hi</p>") + b"", None),
])
def test_limits_quarantine_hostile_mail(limits, raw, reason):
    if reason is None:
        parse(raw, limits)  # three parts are within a limit of three
        return
    with pytest.raises(Unparseable, match=reason):
        parse(raw, limits)


def _parts_by_regex(raw: bytes) -> int:
    """The part count as a regex of the message's own boundaries reads it: the reference."""
    import re

    mentions = list(parse_module._BOUNDARY_MENTION.finditer(raw))
    values = [parse_module._BOUNDARY.match(raw, m.start()) for m in mentions]
    pattern = rb"--(?<![^\r\n]--)"
    if values and all(values):
        boundaries = sorted({v.group(1) or v.group(2) for v in values}, key=len, reverse=True)
        pattern += (rb"(?:" + b"|".join(re.escape(b) for b in boundaries)
                    + rb")(?!--)[ \t]*(?:[\r\n]|\Z)")
    elif not values:
        return 1
    return 1 + sum(1 for _ in re.finditer(pattern, raw))


def _same_count_as_the_reference(raw: bytes) -> None:
    """``_check_part_count`` lets the message through at the reference's count and stops it
    one below (where the boundaries declared do not hit their own limit first)."""
    parts = _parts_by_regex(raw)
    declared = len({m.group(1) or m.group(2) for m in parse_module._BOUNDARY.finditer(raw)})
    parse_module._check_part_count(raw, Limits(max_mime_parts=max(parts, declared)))
    if parts - 1 >= max(declared, 1):
        with pytest.raises(Unparseable, match="counted by their boundary lines"):
            parse_module._check_part_count(raw, Limits(max_mime_parts=parts - 1))


HEAD = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n"


@pytest.mark.parametrize("raw", [
    HEAD % b"B" + b"--B\r\nx\r\n--B \t\r\ny\r\n--B--\r\n--Bx\r\n ---B\r\n--B",
    HEAD % b'"a b "' + b"--a b \n--a b  \n--a b\n--a b --\n",
    HEAD % b"a" + b"Content-Type: multipart/alternative; boundary=ab\r\n\r\n"
    + b"--ab\r\n--a\r\n--abc\r\n--a\r--ab \r\n----a\r\n--a--\r\n",
    HEAD % b"B" + b"Content-Type: multipart/x; boundary*0=Q\r\n\r\n--Q\r\n--z\r\n-- \r\n",
])
def test_part_count_reads_delimiter_lines_as_a_regex_of_the_boundaries_would(raw):
    _same_count_as_the_reference(raw)


def test_part_count_of_corpus_messages_is_unchanged(corpora):
    files = sorted(path for path in corpora.rglob("*.eml") if path.is_file())[:400]
    assert files
    for path in files:
        raw = path.read_bytes()
        if parse_module._BOUNDARY_MENTION.search(raw):
            _same_count_as_the_reference(raw)


@pytest.mark.parametrize("raw", [
    b"A: 1\n\nbody", b"A: 1\r\n\r\nbody", b"A: 1\r\rbody", b"A: 1\n\r\nbody",
    b"A: 1\r\n\nbody\n\n", b"A: 1\rB: 2\n\n", b"A: 1\r", b"A: 1\n", b"A: 1",
    b"\n\n", b"\r\n\r\n", b"A: 1\r\n\r", b"A: 1\nB: 2\r\n\r\n", b"",
])
def test_header_end_is_where_the_header_end_pattern_first_matches(raw):
    reference = parse_module._HEADER_END.search(raw)
    assert parse_module._header_end(raw) == (reference and reference.start())
    for endpos in range(len(raw) + 2):  # "\r" at the end of the window is a lone CR
        reference = parse_module._HEADER_END.search(raw, 0, endpos)
        assert parse_module._header_end(raw, endpos) == (reference and reference.start())


def _overlong_parameters_reference(limit: int) -> re.Pattern[bytes]:
    """The pattern as it was first written: the line-start test before "content-"."""
    field_text = rb"(?:[^;\r\n]|(?:\r\n|\r|\n)[ \t])*+"
    return re.compile(rb"(?<![^\r\n])content-(?:type|disposition)[ \t]*:"
                      + rb"(?:" + field_text + rb";){" + str(limit + 1).encode() + rb"}", re.I)


def test_the_caps_find_what_their_case_insensitive_patterns_find(corpora):
    raws = [path.read_bytes() for path in sorted(corpora.rglob("*.eml"))[:400]]
    raws.append(b"Received: z\nX: 1 received: 2\r\nRECEIVED: a\r\n\tb\r\nReceived: c\r\n"
                b"X-Received: d\r\n\r\nBoUnDaRy = x\r\n"
                b"xCONTENT-TYPE: a" + b";" * 5 + b"\r\nCONTENT-TYPE: a" + b";" * 5 + b"\r\n")
    raws.append(b"Content-Disposition: a" + b";" * 5 + b"\n")
    received = re.compile(rb"^Received:[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)
    for raw in raws:
        lowered = raw.lower()
        assert [m.span() for m in parse_module._BOUNDARY_MENTION_LOWERCASE.finditer(lowered)] \
            == [m.span() for m in parse_module._BOUNDARY_MENTION.finditer(raw)]
        for limit in (4, 100):
            found = [m.span() for m in _overlong_parameters_reference(limit).finditer(raw)]
            assert [m.span() for m in parse_module._overlong_parameters(limit).finditer(raw)] \
                == found
            assert [m.span() for m in
                    parse_module._overlong_parameters(limit, 0).finditer(lowered)] == found
        end = parse_module._header_end(raw)
        if end is not None:
            cut = end + (2 if raw.startswith(b"\r\n", end) else 1)
            assert parse_module._without_trace_headers(raw) == \
                received.sub(b"", raw[:cut]) + raw[cut:]


@pytest.mark.parametrize("scan_limit", [0, 64 * 1024])  # as they are; lowercased
def test_the_caps_refuse_the_same_mail_scanned_lowercased_or_not(monkeypatch, scan_limit):
    monkeypatch.setattr(parse_module, "LOWERCASE_SCAN_LIMIT", scan_limit)
    overlong = HEAD % b"B" + b"CONTENT-TYPE: text/plain" + b"; a=b" * 5 + b"\r\n\r\nx\r\n"
    with pytest.raises(Unparseable, match="parameters"):
        parse(overlong, Limits(max_header_parameters=4))
    boundaries = b"".join(b"Content-Type: multipart/mixed; BOUNDARY=b%d\r\n" % i
                          for i in range(6))
    with pytest.raises(Unparseable, match="boundaries"):
        parse(HEAD % b"B" + boundaries, Limits(max_mime_parts=5))


def test_too_many_and_too_deep_parts():
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(30))
    raw = (b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           + parts + b"--B--\r\n")
    with pytest.raises(Unparseable, match="part limit"):
        parse(raw, Limits(max_mime_parts=10))
    nested = b"From: a@b\r\nMIME-Version: 1.0\r\n"
    for depth in range(30):
        nested += f"Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n".encode()
    nested += b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    with pytest.raises(Unparseable, match="nested"):
        parse(nested, Limits(max_mime_depth=10))


def test_a_message_that_trips_mail_parser_is_still_parsed():
    # A nested multipart whose start boundary never appears: mail-parser 4.8 looks for it in
    # the outer epilogue, which is None, and raises. The standard library view takes over.
    raw = (b"From: Jane <jane@example.com>\r\nTo: reply+p@blog.example\r\nSubject: odd\r\n"
           b"Message-ID: <odd@x>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=OUTER\r\n\r\n"
           b"--OUTER\r\nContent-Type: text/plain\r\n\r\nThe visible words.\r\n"
           b"--OUTER\r\nContent-Type: multipart/alternative; boundary=NEVER\r\n\r\n"
           b"no boundary here\r\n")  # and no closing boundary: the epilogue is None
    with pytest.raises(AttributeError):
        mailparser.parse_from_bytes(raw)
    parsed = parse(raw)
    assert parsed.sender.address == "jane@example.com"
    assert parsed.subject == "odd"
    assert "The visible words." in parsed.text


def test_encoded_line_breaks_in_a_display_name_are_decoded_and_folded():
    raw = message().replace(b"From: Jane Reader <jane@example.com>",
                            b"From: =?utf-8?q?Evil=0D=0ABcc=3A_x?= <e@x.example>")
    parsed = parse(raw)
    assert (parsed.sender.name, parsed.sender.address) == ("Evil Bcc: x", "e@x.example")


# -- mail-parser's private hook (one adapter, checked against the installed release) ----------

def _with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = "=?utf-8?q?J=C3=BCrgen?= <jm@example.de>"
    msg["To"] = "reply+p@blog.example, Other <o@example.org>"
    msg["Cc"] = "c@example.net"
    msg["Subject"] = "Re: a post with a picture"
    msg.set_content("Words before the picture.\n")
    msg.add_alternative("<p>Words <b>before</b> the picture.</p>", subtype="html")
    msg.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="p.png")
    return bytes(msg)


HOOK_SAMPLES = [message(), message(html="<p>I enjoyed <i>this</i>.</p>"), _with_attachment()]


def test_mail_parsers_private_hook_is_still_there_and_still_called():
    hook = getattr(mailparser.MailParser, parse_module.MAILPARSER_HOOK, None)
    assert callable(hook), (f"mail-parser no longer has MailParser."
                            f"{parse_module.MAILPARSER_HOOK}: the adapter is off (slower)")
    assert tuple(inspect.signature(hook).parameters) == parse_module.MAILPARSER_HOOK_PARAMETERS
    assert parse_module._MailParser is not mailparser.MailParser
    # Called by parsing, and what it built is what the adapter saves.
    assert mailparser.MailParser.from_bytes(message()).mail
    assert parse_module._MailParser.from_bytes(message()).mail == {}


@pytest.mark.parametrize("raw", HOOK_SAMPLES)
def test_the_adapter_reads_mail_as_mail_parser_does(raw):
    lean, full = parse_module._MailParser.from_bytes(raw), mailparser.MailParser.from_bytes(raw)
    for name in ("from_", "to", "cc", "subject", "text_plain", "text_html", "attachments"):
        assert getattr(lean, name) == getattr(full, name), name
    assert lean.message.as_bytes() == full.message.as_bytes()


def test_without_the_hook_mail_parser_itself_is_used():
    class Renamed(mailparser.MailParser):
        _make_mail = None

    class Changed(mailparser.MailParser):
        def _make_mail(self, complete, fields):  # another signature: not ours to override
            return super()._make_mail(complete)

    assert parse_module._lean_parser(Renamed) is Renamed
    assert parse_module._lean_parser(Changed) is Changed
    assert parse_module._lean_parser(mailparser.MailParser) is not mailparser.MailParser
