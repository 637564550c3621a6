"""The composed answer, parsed back with the standard library: what every mail client will see."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import getaddresses, parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailthreads.config import Addresses
from mailthreads.mail import compose
from mailthreads.mail.parse import parse
from mailthreads.mail.records import ThreadMessage
from mailthreads.mail.routing import parse_reply_address, reply_address
from mailthreads.tokens import make_token, token_matches

SECRET = "s3cret-for-the-tests-only"
ADDRESSES = Addresses(domain="blog.example", secret=SECRET)
WHEN = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)


def reply(**overrides) -> compose.Reply:
    values = dict(
        from_name="Zoë Author", from_address="me@blog.example",
        to_name="Ada Lovelace", to_address="ada@example.net",
        subject="Re: Why I blog",
        reply_to=reply_address("why-i-blog", ADDRESSES, make_token(SECRET, "why-i-blog", 7)),
        message_id="1762079400.abc123.mailthreads@blog.example",
        date=WHEN,
        in_reply_to="r1@example.net",
        references=("root@blog.example", "r1@example.net"),
    )
    values.update(overrides)
    return compose.Reply(**values)


def parsed(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def body_of(msg) -> str:
    """The text as a client shows it: line ends as the platform has them."""
    return msg.get_content().replace("\r\n", "\n")


def unflow(text: str) -> str:
    """Decode format=flowed (RFC 3676, DelSp=no) the way a flowed-aware client does."""
    out: list[str] = []
    pending: tuple[int, str] | None = None
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        soft = content.endswith(" ") and content != "-- "
        if pending and pending[0] == depth:
            content = pending[1] + content
        elif pending:
            out.append(">" * pending[0] + (" " if pending[0] else "") + pending[1])
        pending = None
        if soft:
            pending = (depth, content)
        else:
            out.append(">" * depth + (" " if depth and content else "") + content)
    if pending:
        out.append(">" * pending[0] + (" " if pending[0] else "") + pending[1])
    return "\n".join(out)


def test_headers_and_threading_parse_back():
    raw = compose.compose(reply(), "Thank you for writing.\n")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = parsed(raw)
    assert getaddresses([str(msg["From"])]) == [("Zoë Author", "me@blog.example")]
    assert getaddresses([str(msg["To"])]) == [("Ada Lovelace", "ada@example.net")]
    assert msg["Subject"] == "Re: Why I blog"
    assert msg["Message-ID"] == "<1762079400.abc123.mailthreads@blog.example>"
    assert msg["Message-ID"].rstrip(">").endswith("@blog.example")
    assert msg["In-Reply-To"] == "<r1@example.net>"
    assert msg["References"].split() == ["<root@blog.example>", "<r1@example.net>"]
    assert parsedate_to_datetime(msg["Date"]) == WHEN
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert body_of(msg) == "Thank you for writing.\n"
    assert msg.get_param("format") is None  # short lines need no format=flowed
    assert msg["Content-Transfer-Encoding"] == "7bit"


def test_reply_to_is_the_signed_address_of_the_thread():
    msg = parsed(compose.compose(reply(), "Hi\n"))
    (_, address), = getaddresses([str(msg["Reply-To"])])
    route = parse_reply_address(address, ADDRESSES)
    assert route is not None and route.slug == "why-i-blog"
    token = route.token
    assert token == token.lower() and re.fullmatch(r"[a-z2-7]{16,}", token)
    assert token_matches(SECRET, "why-i-blog", 7, token)
    assert not token_matches(SECRET, "why-i-blog", 8, token)
    assert not token_matches(SECRET, "another-post", 7, token)
    assert not token_matches("a-different-secret-entirely", "why-i-blog", 7, token)
    # Mail systems may upper-case a local part: the token still verifies.
    assert token_matches(SECRET, "why-i-blog", 7, token.upper())


@pytest.mark.parametrize(("subject", "expected"), [
    ("Why I blog", "Re: Why I blog"),
    ("Re: Why I blog", "Re: Why I blog"),
    ("RE: re: Re:Why I blog", "Re: Why I blog"),
    ("AW: Re[2]: SV: Antw: Why I blog", "Re: Why I blog"),
    ("Fwd: Why I blog", "Re: Fwd: Why I blog"),
    ("Return of the blog", "Re: Return of the blog"),
    ("Reading list", "Re: Reading list"),
    ("", "Re: your reply"),
    ("Re:", "Re: your reply"),
])
def test_subject_gets_one_reply_prefix(subject, expected):
    assert compose.reply_subject(subject) == expected
    assert parsed(compose.compose(reply(subject=subject), "x\n"))["Subject"] == expected


def test_references_keep_the_root_and_the_newest_ancestors():
    chain = [f"m{i}@example.net" for i in range(40)]
    refs = compose.thread_references("parent@example.net", chain)
    assert len(refs) == compose.MAX_REFERENCES
    assert refs[0] == "m0@example.net"  # the thread's root: clients thread on it
    assert refs[-1] == "parent@example.net"  # the parent: In-Reply-To's twin
    assert refs[-2] == "m39@example.net"
    # Ids a client cannot use are left out, repeated ones counted once.
    assert compose.thread_references("p@x", ["a@x", "not an id", "a@x", "<b@x>", "c"]) == (
        "a@x", "p@x")


def test_long_references_are_folded_but_parse_back_whole():
    chain = tuple(f"{'x' * 40}.{i}@mail.example.net" for i in range(11))
    msg_raw = compose.compose(reply(references=(*chain, "r1@example.net")), "x\n")
    assert all(len(line) <= 998 for line in msg_raw.split(b"\r\n"))
    refs = parsed(msg_raw)["References"].split()
    assert refs == [f"<{r}>" for r in (*chain, "r1@example.net")]


def test_answer_to_a_message_without_its_own_id_has_no_in_reply_to():
    assert compose.usable_message_id("abc@synthetic.mailthreads.invalid", synthetic=True) is None
    msg = parsed(compose.compose(reply(in_reply_to=None, references=()), "x\n"))
    assert msg["In-Reply-To"] is None and msg["References"] is None


LINE_BREAKS = ["Hi\r\nBcc: victim@evil.example", "Hi\nBcc: v@evil.example",
               "Hi\rX-Injected: 1", "Hi\0there"]
EXPECTED_HEADERS = ["from", "to", "reply-to", "subject", "date", "message-id", "in-reply-to",
                    "references", "content-type", "content-transfer-encoding", "mime-version"]


def header_names(raw: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode().lower()
            for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if line[:1] != b" "]


@pytest.mark.parametrize("field", ["to_address", "in_reply_to", "reply_to"])
@pytest.mark.parametrize("evil", LINE_BREAKS)
def test_a_line_break_in_an_address_or_id_is_refused(field, evil):
    with pytest.raises(compose.UnsafeHeader):
        compose.compose(reply(**{field: evil}), "x\n")


@pytest.mark.parametrize("field", ["subject", "to_name", "from_name"])
@pytest.mark.parametrize("evil", LINE_BREAKS)
def test_control_characters_in_a_subject_or_name_are_taken_out(field, evil):
    # A stray NUL or line break must not block the answer, nor add a header.
    raw = compose.compose(reply(**{field: evil}), "x\n")
    assert header_names(raw) == EXPECTED_HEADERS
    header = {"subject": "Subject", "to_name": "To", "from_name": "From"}[field]
    value = str(parsed(raw)[header])
    assert not re.search(r"[\x00-\x1f]", value)
    assert "Hi" in value and ("there" in value or "Bcc" in value or "X-Injected" in value)


def test_a_line_break_in_a_reference_is_refused():
    with pytest.raises(compose.UnsafeHeader):
        compose.thread_references("p@x", ["a@x\r\nBcc: v@evil.example"])
    with pytest.raises(compose.UnsafeHeader):
        compose.compose(reply(references=("a@x\nBcc: v@evil.example",)), "x\n")


HOSTILE = (
    b"From: =?utf-8?b?QWRhDQpCY2M6IHZpY3RpbUBldmlsLmV4YW1wbGU=?= <ada@example.net>\r\n"
    b"To: reply+why-i-blog@blog.example\r\n"
    b"Subject: =?utf-8?q?Hello=0D=0ABcc=3A_victim=40evil=2Eexample?=\r\n"
    b"Message-ID: <r1@example.net>\r\n"
    b"Date: Sun, 01 Nov 2026 09:00:00 +0000\r\n"
    b"\r\nHello.\r\n"
)


def test_hostile_received_subject_cannot_add_headers():
    # An encoded word hides CR/LF from a first look; the parser folds the decoded subject.
    received = parse(HOSTILE)
    raw = compose.compose(reply(subject=received.subject), "Thanks\n")
    msg = parsed(raw)
    assert msg["Bcc"] is None
    assert "victim@evil.example" in msg["Subject"]  # kept as harmless text, on one line
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", header_block, re.M | re.I)


def test_hostile_received_name_never_adds_a_header():
    # However the parser hands the name over (decoded and folded, or still an encoded word),
    # the answer is either refused or carries exactly the headers it should.
    received = parse(HOSTILE)
    try:
        raw = compose.compose(reply(to_name=received.sender.name,
                                    to_address=received.sender.address), "Thanks\n")
    except compose.UnsafeHeader:
        return
    msg = parsed(raw)
    assert msg["Bcc"] is None and len(msg.get_all("To")) == 1
    assert [a for _, a in getaddresses(msg.get_all("To"))] == ["ada@example.net"]


def test_an_encoded_name_is_cleaned_decoded():
    # Python's email package (3.11.7) decodes an encoded word while folding and writes a
    # decoded CR/LF out as a real line break, which would add a Bcc: the decoded text is
    # what is cleaned.
    raw = compose.compose(reply(to_name="=?utf-8?b?QWRhDQpCY2M6IHZpY3RpbUBldmlsLmV4YW1wbGU=?="),
                          "Thanks\n")
    assert header_names(raw) == EXPECTED_HEADERS
    assert getaddresses(parsed(raw).get_all("To")) == [("Ada Bcc: victim@evil.example",
                                                       "ada@example.net")]


NESTED = "=?utf-8?q?=3D=3Futf-8=3Fq=3FHello=3D0D=3D0ABcc=3D3A_victim=3D40evil=3D2Eexample=3F=3D?="


@pytest.mark.parametrize("field", ["subject", "to_name"])
@pytest.mark.parametrize("evil", ["=?utf-8?q?Hello=0D=0ABcc=3A_victim=40evil=2Eexample?=", NESTED])
def test_encoded_line_breaks_become_spaces(field, evil):
    raw = compose.compose(reply(**{field: evil}), "x\n")
    assert header_names(raw) == EXPECTED_HEADERS
    msg = parsed(raw)
    shown = msg["Subject"] if field == "subject" else str(msg["To"])
    assert "Hello Bcc: victim@evil.example" in shown
    # Harmless encoded words are decoded and encoded again properly.
    msg = parsed(compose.compose(reply(**{field: "=?utf-8?q?Zo=C3=AB?="}), "x\n"))
    assert "Zoë" in (msg["Subject"] if field == "subject" else str(msg["To"]))


def q_word(text: str) -> str:
    return "=?utf-8?q?" + "".join(chr(b) if chr(b).isalnum() else f"={b:02X}"
                                  for b in text.encode()) + "?="


def test_encoded_words_nested_too_deep_refuse_the_subject_and_drop_the_name():
    deep = "Hello\r\nBcc: victim@evil.example"
    for _ in range(compose.MAX_ENCODED_WORD_NESTING + 2):
        deep = q_word(deep)
    with pytest.raises(compose.UnsafeHeader, match="nested"):
        compose.compose(reply(subject=deep), "x\n")
    raw = compose.compose(reply(to_name=deep), "x\n")
    assert header_names(raw) == EXPECTED_HEADERS
    assert getaddresses(parsed(raw).get_all("To")) == [("", "ada@example.net")]
    # As deep as allowed still goes out, on one line.
    allowed = "Hello\r\nBcc: victim@evil.example"
    for _ in range(compose.MAX_ENCODED_WORD_NESTING):
        allowed = q_word(allowed)
    assert parsed(compose.compose(reply(subject=allowed), "x\n"))["Subject"] == \
        "Re: Hello Bcc: victim@evil.example"


# Text as it comes out of SQLite: any character but a lone surrogate (UTF-8 cannot hold one).
ANY_TEXT = st.characters(blacklist_categories=("Cs",))
HEADER_TEXT = st.text(st.sampled_from("ab =?!_:@<>\"\\\r\n\t\x00\x1b\x85\u2028é") | ANY_TEXT,
                      max_size=40) | st.builds(q_word, st.text(ANY_TEXT, max_size=20))


@given(HEADER_TEXT, HEADER_TEXT)
def test_any_received_subject_or_name_gives_exactly_the_headers_on_one_line(subject, name):
    try:
        raw = compose.compose(reply(subject=subject, to_name=name), "x\n")
    except compose.UnsafeHeader as error:
        assert "nested" in str(error) or "broken" in str(error)
        return
    assert header_names(raw) == EXPECTED_HEADERS
    msg = parsed(raw)
    for value in (str(msg["Subject"]), str(msg["To"])):
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", value), value
    assert getaddresses(msg.get_all("To"))[0][1] == "ada@example.net"


def test_the_header_block_is_read_back_before_anything_goes_out():
    raw = compose.compose(reply(), "x\n")
    names = [line.split(b":", 1)[0].decode().lower()
             for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if line[:1] != b" "]
    compose._verify_headers(raw, names)
    with pytest.raises(compose.UnsafeHeader, match="bcc"):
        compose._verify_headers(raw.replace(b"\r\nSubject:", b"\r\nBcc: v@evil.example"
                                            b"\r\nSubject:"), names)
    with pytest.raises(compose.UnsafeHeader):  # a blank line smuggled in ends the headers early
        compose._verify_headers(raw.replace(b"\r\nSubject:", b"\r\n\r\nSubject:"), names)


def test_names_and_addresses_that_are_not_plain_are_refused():
    with pytest.raises(compose.UnsafeHeader):
        compose.compose(reply(to_address="ada@example.net, eve@evil.example"), "x\n")
    with pytest.raises(compose.UnsafeHeader):
        compose.compose(reply(to_address="not-an-address"), "x\n")
    # A display name with address syntax in it stays a name.
    msg = parsed(compose.compose(reply(to_name='Eve <eve@evil.example>, "x"'), "x\n"))
    assert [a for _, a in getaddresses(msg.get_all("To"))] == ["ada@example.net"]


def test_utf8_body_and_names_round_trip():
    body = "Grüße aus Köln — ça va? 日本語も大丈夫です。\n\n-- \nZoë\n"
    raw = compose.compose(reply(to_name="Ådа Łovelace", subject="Re: Über das Bloggen"), body)
    assert raw.isascii()  # 7-bit clean: any relay passes it unchanged
    msg = parsed(raw)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert body_of(msg) == body
    assert msg["Subject"] == "Re: Über das Bloggen"
    assert getaddresses([str(msg["To"])]) == [("Ådа Łovelace", "ada@example.net")]
    assert parse(raw).subject == "Re: Über das Bloggen"


def test_long_lines_go_format_flowed_and_come_back_whole():
    paragraph = ("This is a long paragraph that a person typed without pressing return, as "
                 "people do in every mail client, and it goes on for a good while longer. ") * 3
    quoted = "> " + "A quoted line from the correspondent that is also much longer than a " \
                    "mail client would like to show on one line of text."
    body = "\n".join([
        paragraph.strip(),
        "",
        "From here on, a line that an mbox would mangle if it were not stuffed, and long too.",
        "  indented code stays indented " + "x" * 60,
        quoted,
        ">",
        "> short quote",
        "https://example.com/" + "a" * 120,
        "-- ",
        "Zoë",
    ]) + "\n"
    msg = parsed(compose.compose(reply(), body))
    assert msg.get_param("format") == "flowed"
    sent = body_of(msg)
    lines = sent.rstrip("\n").split("\n")
    url_line = next(line for line in lines if "https://" in line)
    assert all(len(line) <= 78 for line in lines if line is not url_line)
    assert not any(line.startswith("From ") for line in lines)  # stuffed
    assert "-- " in lines  # the signature separator keeps its space
    assert ">" in lines  # an empty quote line stays a hard line
    quote_pieces = [line for line in lines if line.startswith(">") and "correspondent" not in line
                    and line not in (">", "> short quote")]
    assert quote_pieces and all(line.startswith("> ") for line in quote_pieces)
    assert unflow(sent.rstrip("\n")) == body.rstrip("\n")


def test_trailing_spaces_are_trimmed_so_they_cannot_fake_soft_breaks():
    text, flowed = compose.flow("short line   \nanother\t\n-- \nsig")
    assert (text, flowed) == ("short line\nanother\n-- \nsig", False)


def test_template_quotes_below_and_comments_are_dropped():
    header = compose.attribution("2026-11-01T09:00:00Z", "Ada Lovelace", "ada@example.net")
    assert header == "On Sun, 1 Nov 2026 09:00 UTC, Ada Lovelace wrote:"
    text = compose.template(header, "First line.\n\nSecond paragraph.", ["To: Ada"])
    assert text.startswith("\n")  # room on top, where the editor's cursor is
    assert "> First line.\n>\n> Second paragraph." in text
    assert "# To: Ada" in text
    assert not compose.has_new_text(compose.body_from_edit(text), header)

    edited = "Thank you, Ada.\n# a thought I dropped\nMore soon.   " + text
    body = compose.body_from_edit(edited)
    assert body.startswith("Thank you, Ada.\nMore soon.\n\n" + header)
    assert "#" not in body and "> Second paragraph." in body
    assert compose.has_new_text(body, header)
    # Answers written between quoted lines count too.
    assert compose.has_new_text(f"{header}\n> First line.\nIndeed.\n", header)


def msg_row(row_id, kind="reply", direction="in", address="ada@example.net"):
    return ThreadMessage(id=row_id, message_id=f"m{row_id}@example.net", kind=kind,
                         direction=direction, from_name="Ada", from_address=address,
                         kind_reasons=(f"{kind} sign",))


def test_machine_mail_is_never_answered_without_asking():
    thread = [msg_row(1), msg_row(2, direction="out", address="me@blog.example"),
              msg_row(3, kind="auto_reply")]
    target = compose.choose_target(thread, None)
    assert target.warning and "an auto-reply" in target.warning and "auto_reply sign" in \
        target.warning
    assert target.message.id == 2  # the discussion, not the out-of-office
    bounce = [msg_row(1), msg_row(2, kind="bounce", address="mailer-daemon@mx.example")]
    target = compose.choose_target(bounce, None)
    assert "a bounce" in target.warning and target.message.id == 1
    # Naming a machine message explicitly asks too; a human one does not.
    assert compose.choose_target(bounce, "2").warning
    assert compose.choose_target(bounce, "<m1@example.net>").warning is None
    assert compose.choose_target([msg_row(1)], None) == compose.Target(msg_row(1), None)
    with pytest.raises(LookupError):
        compose.choose_target(bounce, "99")


def test_the_answer_goes_to_the_correspondent_never_to_a_machine():
    thread = [msg_row(1, address="ada@old.example"), msg_row(2, address="ada@new.example"),
              msg_row(3, kind="bounce", address="mailer-daemon@mx.example")]
    fallback = ("Ada", "ada@thread.example")
    assert compose.recipient(thread, thread[2], fallback) == ("Ada", "ada@new.example")
    assert compose.recipient(thread, thread[0], fallback) == ("Ada", "ada@old.example")
    own = [msg_row(1, direction="out", address="me@blog.example")]
    assert compose.recipient(own, own[0], fallback) == fallback


def test_bare_subject_drops_reply_and_forward_prefixes_in_several_languages():
    from mailthreads.mail.compose import bare_subject

    for subject in ("Re: Fwd: Why I blog", "Antw: Why I blog", "AW: WG: why i blog",
                    "Re[2]: Why I blog", "  Why I blog "):
        assert bare_subject(subject) == "why i blog", subject
    assert bare_subject("Reply policy") == "reply policy"  # a word, not a prefix
