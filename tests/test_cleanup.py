"""Unit tests for mailthreads.mail.cleanup: splitting a reply into visible/quoted/signature."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailthreads.mail.cleanup import (
    _WROTE_RE,
    ReplyParts,
    _has_quote_verb,
    html_to_text,
    split_reply,
)


def _lines(*lines: str) -> str:
    return "\n".join(lines)


# --- quote headers ----------------------------------------------------------------------


def test_english_quote_header_and_quote_go_to_quoted() -> None:
    parts = split_reply(
        _lines(
            "Great post, thanks!",
            "",
            "On Mon, Jan 1, 2024 at 10:00 AM Blog <reply+abc@blog.example> wrote:",
            "",
            "> A new comment was posted.",
            "> Reply to this email to answer.",
        )
    )
    assert parts == ReplyParts(
        visible="Great post, thanks!",
        quoted=_lines(
            "On Mon, Jan 1, 2024 at 10:00 AM Blog <reply+abc@blog.example> wrote:",
            "",
            "> A new comment was posted.",
            "> Reply to this email to answer.",
        ),
        signature="",
    )


def test_quote_header_wrapped_by_the_client_over_two_lines() -> None:
    parts = split_reply(
        _lines(
            "Sounds good.",
            "",
            "On Tue, Sep 25, 2012 at 8:59 AM, Chris Example <notifications@example.com>",
            "wrote:",
            "",
            "> Steps 0-2 are in prod.",
        )
    )
    assert parts.visible == "Sounds good."
    assert parts.quoted.startswith("On Tue, Sep 25, 2012")
    assert "wrote:" not in parts.visible


def test_quote_header_cut_by_quoted_printable_soft_break() -> None:
    parts = split_reply(
        _lines(
            "Fine by me.",
            "",
            "On Mon, Jun 3, 2024 at 12:53 AM Cody <cody@example.com> w=",
            "rote:",
            "",
            "> Is 10:30 good?",
        )
    )
    assert parts.visible == "Fine by me."


@pytest.mark.parametrize(
    "header",
    [
        "Am 03.02.2016 3:35 nachm. schrieb Max Mustermann <max@example.de>:",
        "Le 4 janv. 2016 19:03, « Neil » <neil@example.fr> a écrit :",
        "El jueves, 21 de noviembre de 2013, codinghorror escribió:",
        "Op 16 aug. 2014 05:13 schreef Jan <jan@example.nl>:",
        "Dnia 14 lip 2015 o godz. 00:25 Michael <m@example.pl> napisał(a):",
        "Den 15. jun. 2016 kl. 20.42 skrev Jeff <jeff@example.no>:",
        "20 окт. 2016 г. 19:37 пользователь Rafael <rafael@example.ru> написал:",
        "2022年1月1日(金) 9:00 田中太郎 <taro.tanaka@example.com>:",
        "---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam <sam@example.com> wrote ----",
    ],
)
def test_localised_quote_headers(header: str) -> None:
    parts = split_reply(_lines("Danke!", "", header, "", "> Alter Text."))
    assert parts.visible == "Danke!"
    assert parts.quoted.startswith(header)


def test_bare_attribution_counts_as_a_header_only_above_a_quote() -> None:
    parts = split_reply(_lines("Jens Petersen wrote:", "> Move yum-presto?", "", "+1"))
    assert parts.visible == "+1"
    text = _lines("Here is what Jens wrote:", "", "    yum install presto")
    assert split_reply(text).visible == text


def test_prose_ending_in_a_colon_is_not_a_quote_header() -> None:
    text = _lines("On your remote host you can run:", "", "    telnet 127.0.0.1 52698")
    assert split_reply(text).visible == text


def test_header_followed_by_unquoted_history_ends_the_reply() -> None:
    # Top-posting clients do not quote the history at all.
    parts = split_reply(
        _lines(
            "This is the 3rd email.",
            "",
            'On Mon, Feb 1, 2016 at 4:58 AM -0800, "Some One" <foo@bar.com> wrote:',
            "",
            "This is the 2nd email.",
        )
    )
    assert parts.visible == "This is the 3rd email."
    assert parts.quoted.endswith("This is the 2nd email.")


# --- Outlook blocks and separators ---------------------------------------------------------


def test_outlook_header_block_after_a_separator_line() -> None:
    parts = split_reply(
        _lines(
            "Outlook with a reply directly above line",
            "________________________________________",
            "From: CRM Comments [crm-comment@example.com]",
            "Sent: Friday, 23 March 2012 5:08 p.m.",
            "To: John S. Greene",
            "Subject: [contact:106] John Greene",
            "",
            "A new comment has been added.",
        )
    )
    assert parts.visible == "Outlook with a reply directly above line"
    assert parts.quoted.startswith("_____")
    assert parts.quoted.endswith("A new comment has been added.")


@pytest.mark.parametrize(
    "block",
    [
        ("*From:* Kim [mailto:kim@example.com]", "*Sent:* Monday, January 15, 2018 2:15 AM"),
        ("Von: Discourse <team@example.org>", "Gesendet: Don 11 Februar 2016 11:23"),
        ("De : Marie <marie@example.fr>", "Envoyé : lundi 5 juin 2017 12:22"),
        ("**From:** Jane <jane@example.com>", "**Sent:** Monday"),
    ],
)
def test_outlook_header_blocks_in_several_languages(block: tuple[str, str]) -> None:
    parts = split_reply(_lines("Merci.", "", *block, "To: someone", "", "Old message."))
    assert parts.visible == "Merci."


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "---Original Message---",
        "*-------- Original Message --------*",
        "-----Ursprüngliche Nachricht-----",
        "-----Mensaje original-----",
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
    ],
)
def test_original_message_separators(separator: str) -> None:
    parts = split_reply(_lines("This is a reply :)", "", separator, "This part is history"))
    assert parts.visible == "This is a reply :)"
    assert parts.quoted == _lines(separator, "This part is history")


def test_forwarded_message_without_own_words_shows_the_forwarded_text() -> None:
    parts = split_reply(
        _lines(
            "---------- Forwarded message ----------",
            "From: Some One <foo@bar.com>",
            "Date: Thu, Jan 28, 2016 at 4:00 PM",
            "Subject: Hello",
            "To: info@example.org",
            "",
            "This is a forwarded email.",
        )
    )
    assert parts.visible == "This is a forwarded email."


# --- signatures, footers, closings -----------------------------------------------------------


def test_dash_dash_space_signature() -> None:
    parts = split_reply(_lines("Works for me.", "", "-- ", "Rick", "rick@example.com"))
    assert parts == ReplyParts(
        visible="Works for me.", quoted="", signature=_lines("-- ", "Rick", "rick@example.com")
    )


def test_dashes_inside_a_line_are_not_a_signature() -> None:
    text = "And here is a fix -- this is not a signature.\n\nkthxbai"
    assert split_reply(text).visible == text


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my Verizon Wireless BlackBerry",
        "Sent from my cell, please excuse any typos.",
        "Envoyé depuis mon iPhone",
        "Von meinem Mobilgerät gesendet",
        "Get Outlook for Android<https://aka.ms/ghei36>",
        "Sent from Outlook Mobile<https://example.com>",
    ],
)
def test_mobile_footer_goes_to_signature(footer: str) -> None:
    parts = split_reply(_lines("Here is another email", "", footer))
    assert parts.visible == "Here is another email"
    assert parts.signature == footer


def test_sentence_starting_like_a_mobile_footer_is_kept() -> None:
    text = "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
    assert split_reply(text).visible == text


def test_closing_with_name_goes_to_signature() -> None:
    parts = split_reply(_lines("I have sent an invite.", "", "Regards,", "", "Christopher"))
    assert parts.visible == "I have sent an invite."
    assert parts.signature == _lines("Regards,", "", "Christopher")


def test_closing_alone_stays_in_the_text() -> None:
    text = _lines("yes we're fine", "", "thanks")
    assert split_reply(text).visible == text


def test_a_reply_that_is_only_a_closing_is_kept() -> None:
    text = _lines("Thanks,", "Bob")
    assert split_reply(text).visible == text


def test_mailing_list_footer_and_dash_sign_off() -> None:
    parts = split_reply(
        _lines(
            "How do I clear a bucket?",
            "",
            "-Abhishek",
            "",
            "_______________________________________________",
            "riak-users mailing list",
            "riak-users@lists.example.com",
        )
    )
    assert parts.visible == "How do I clear a bucket?"
    assert parts.signature.startswith("-Abhishek")


# --- inline answers, quotes ----------------------------------------------------------------


def test_interleaved_answers_keep_the_quotes_they_answer() -> None:
    parts = split_reply(
        _lines(
            "Hi,",
            "",
            "On Mon, Jan 1, 2024 at 10:00 AM Blog <blog@example.com> wrote:",
            "> Question one?",
            "",
            "Answer one.",
            "",
            "> Question two?",
            "",
            "Answer two.",
            "",
            "> Unanswered rest of the post.",
            "",
            "-- ",
            "Bob",
        )
    )
    assert parts.visible == _lines(
        "Hi,",
        "",
        "> Question one?",
        "",
        "Answer one.",
        "",
        "> Question two?",
        "",
        "Answer two.",
    )
    assert parts.quoted == _lines(
        "On Mon, Jan 1, 2024 at 10:00 AM Blog <blog@example.com> wrote:",
        "",
        "> Unanswered rest of the post.",
    )
    assert parts.signature == _lines("-- ", "Bob")


def test_bottom_post_below_a_leading_header_drops_the_quote() -> None:
    parts = split_reply(
        _lines(
            "On Mon, Aug 19, 2013 at 2:36 AM, Some One <info@example.org> wrote:",
            "",
            "> This seems like a problem for the web server.",
            "",
            "It is still the web server level.",
        )
    )
    assert parts.visible == "It is still the web server level."
    assert parts.quoted.endswith("> This seems like a problem for the web server.")


def test_quote_without_header_followed_by_text_is_kept() -> None:
    text = _lines("> This is a quote.", "", "And this is some text.")
    assert split_reply(text).visible == text


def test_message_that_is_only_a_quote_is_kept() -> None:
    assert split_reply("> Email with only quote.").visible == "> Email with only quote."


def test_message_that_is_only_quoted_history_has_no_visible_text() -> None:
    text = _lines("> On Thu, Apr 30, 2020 at 10:07 AM, A <a@example.com> wrote:", ">", ">> Hi")
    assert split_reply(text) == ReplyParts(visible="", quoted=text, signature="")


# --- plumbing --------------------------------------------------------------------------------


def test_no_quote_means_empty_quoted_and_signature() -> None:
    text = _lines("Formatting and", "", "    - Item #1", "    - Item #2")
    assert split_reply(text) == ReplyParts(visible=text, quoted="", signature="")


def test_crlf_input_is_normalised() -> None:
    parts = split_reply("Email with\r\nwindows\r\nendings\r\n\r\n-- \r\nme\r\n")
    assert parts == ReplyParts(
        visible="Email with\nwindows\nendings", quoted="", signature="-- \nme"
    )


def test_leading_and_trailing_blank_lines_are_stripped() -> None:
    assert split_reply("\n\n\nStrip me.\n\n\n").visible == "Strip me."


def test_empty_input() -> None:
    assert split_reply("") == ReplyParts(visible="", quoted="", signature="")


def test_many_quote_lines_complete() -> None:
    parts = split_reply("Hello\n" + ">\n" * 200_000)
    assert parts.visible == "Hello"
    assert parts.quoted.count("\n") == 200_000 - 1


def test_huge_single_line_completes() -> None:
    line = "On 1 Jan 2020 <a@b.c> " * 50_000
    assert split_reply(line).visible == line


def test_many_header_like_lines_complete() -> None:
    text = "On 1 Jan 2020 x@y.z wrote:\n> q\n" * 20_000
    parts = split_reply(text)
    assert parts.quoted.startswith("On 1 Jan 2020 x@y.z wrote:")


# --- html_to_text ----------------------------------------------------------------------------

_GMAIL_HTML = """
<div dir="ltr">Thanks, that <b>works</b>!<div><br></div>
<div>See <a href="https://example.com/docs">the docs</a>.</div>
<div>-- <br>John</div></div><br>
<div class="gmail_quote"><div class="gmail_attr">On Mon, 1 Jan 2024 at 10:00, Jane
&lt;<a href="mailto:jane@example.com">jane@example.com</a>&gt; wrote:<br></div>
<blockquote class="gmail_quote">Hello<br>there</blockquote></div>
"""


def test_html_to_text_makes_blockquotes_quote_lines_and_keeps_links() -> None:
    text = html_to_text(_GMAIL_HTML)
    assert "> Hello" in text
    assert "[the docs](https://example.com/docs)" in text
    assert "On Mon, 1 Jan 2024 at 10:00, Jane <jane@example.com> wrote:" in text
    assert "\n-- \n" in text or "\n--\n" in text  # not escaped to "\\--"


def test_html_reply_splits_like_a_plain_one() -> None:
    parts = split_reply(html_to_text(_GMAIL_HTML))
    assert parts.visible == _lines(
        "Thanks, that **works**!", "", "See [the docs](https://example.com/docs)."
    )
    assert parts.signature.splitlines()[-1] == "John"
    assert parts.quoted.endswith("> there")


def test_html_outlook_reply_is_cut_at_the_header_block() -> None:
    html = (
        "<p>Agreed.</p><div><hr><b>From:</b> Jane &lt;jane@example.com&gt;<br>"
        "<b>Sent:</b> Monday<br><b>To:</b> me<br><b>Subject:</b> hi</div><p>Old text</p>"
    )
    assert split_reply(html_to_text(html)).visible == "Agreed."


def test_html_to_text_does_not_wrap_and_does_not_raise_on_broken_markup() -> None:
    long_line = "word " * 100
    assert long_line.strip() in html_to_text(f"<p>{long_line}</p>")
    assert "broken" in html_to_text("<![< broken <![foo[ markup")


# --- properties ------------------------------------------------------------------------------

_MAIL_LINES = st.sampled_from(
    [
        "",
        "Thanks!",
        "> quoted",
        ">",
        ">> nested",
        "On Mon, 1 Jan 2024, A <a@b.c> wrote:",
        "On Mon, 1 Jan 2024, A <a@b.c>",
        "wrote:",
        "-- ",
        "--",
        "_____",
        "Sent from my iPhone",
        "From: X <x@y.z>",
        "Sent: Monday",
        "-----Original Message-----",
        "Regards,",
        "Bob",
        "-Bob",
        "w=",
        "\r",
        "\u1427",
    ]
)
_MAIL_TEXT = st.lists(st.one_of(_MAIL_LINES, st.text(max_size=40)), max_size=30).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_MAIL_TEXT, st.text()))
def test_split_reply_only_ever_selects_input_lines(text: str) -> None:
    input_lines = set(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    parts = split_reply(text)
    for part in (parts.visible, parts.quoted, parts.signature):
        assert set(part.split("\n")) <= input_lines | {""}
        assert part == "" or (part.split("\n")[0].strip() and part.split("\n")[-1].strip())


# --- the shortcuts of the hot path ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "ON MON, 3 JAN 2011 AT 10:00, BOB <BOB@EXAMPLE.ORG> WROTE:",
        "15 Oca 2017 tarihinde Ali <ali@example.com> şunu yazdı:",
        "15 OCA 2017 TARIHINDE ALI <ALI@EXAMPLE.COM> SUNU YAZDI:",
        "On Mon, 3 Jan 2011, Bob <bob@example.org> wrote ----",
    ],
)
def test_quote_headers_in_any_case(header: str) -> None:
    parts = split_reply(_lines("Agreed.", "", header, "", "> Old text."))
    assert parts.visible == "Agreed."
    assert parts.quoted.startswith(header)


# Spellings of the verbs, and letters that case-insensitive matching treats as others
# ("ı" and "İ" as "i", "ſ" as "s", the Kelvin sign as "k").
_VERB_PIECES = st.sampled_from(
    ["wrote", "WRITES", "Schrieb", "a écrit", "a ecrit", "escribió", "ha scritto", "skrev",
     "SKRIVER", "napisał", "NAPISAL", "napsal", "kirjoitti", "írta", "yazdı", "YAZDI",
     "написал", "写道", "wrote:", "rewrote", "wroter", "w=", "rote"]
)
_VERB_LETTERS = st.text(alphabet="wrotesWROTESchibkvnpalyzdı\u0130\u017f\u212aé :<@>", max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_VERB_PIECES, _VERB_LETTERS), max_size=6).map("".join))
def test_quote_verb_shortcut_agrees_with_the_pattern(text: str) -> None:
    assert _has_quote_verb(text) == (_WROTE_RE.search(text) is not None)
