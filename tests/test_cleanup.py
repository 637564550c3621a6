"""Unit tests for mailthreads.mail.cleanup: splitting a reply into visible/quoted/signature."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

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
        # Lines are never rewritten; a reply glued to its quote header is split in two.
        for line in set(part.split("\n")) - input_lines - {""}:
            assert any(line in source for source in input_lines), line
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
     "написал", "写道", "wrote:", "rewrote", "wroter", "w=", "rote", "a scris", "MENULIS",
     "kirjutas", "va escriure", "napisao", "napísal", "đã viết", "sent:"]
)
_VERB_LETTERS = st.text(alphabet="wrotesWROTESchibkvnpalyzdı\u0130\u017f\u212aé :<@>", max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_VERB_PIECES, _VERB_LETTERS), max_size=6).map("".join))
def test_quote_verb_shortcut_agrees_with_the_pattern(text: str) -> None:
    assert _has_quote_verb(text) == (_WROTE_RE.search(text) is not None)


# --- mail in general (issue 14): shapes from other clients and real messages ---------------
#
# Each case is (text, expected visible, text that must not be visible). The shapes come from
# the clients named beside them; "real" cases are shortened from the messages named (names
# and addresses replaced), see tests/data/reading/README.md.

_FAMILY_CASES = {
    # Quote headers with no verb at all: Mail.ru, Yandex.
    "mail.ru header without a verb": (
        _lines(
            "Спасибо, всё работает.",
            "",
            "Пятница, 5 июня 2020, 10:00 +03:00 от Иван Петров <ivan@mail.example>:",
            "> Попробуйте ещё раз.",
        ),
        "Спасибо, всё работает.",
        "Попробуйте",
    ),
    "yandex header without a verb": (
        _lines(
            "Thanks, works now.",
            "",
            '05.06.2020, 10:00, "Ivan Petrov" <ivan@yandex.example>:',
            "> Try again.",
        ),
        "Thanks, works now.",
        "Try again",
    ),
    # Other verbs and languages beyond the first list.
    "sent instead of wrote": (
        _lines(
            "Fine by me.",
            "",
            "On Fri, Jun 5, 2020 at 10:00 AM, Ivan <ivan@example.com> sent:",
            "> Try again.",
        ),
        "Fine by me.",
        "Try again",
    ),
    "vietnamese gmail header": (
        _lines(
            "Cảm ơn bạn.",
            "",
            "Vào Th 6, 5 thg 6, 2020 vào lúc 10:00 Ivan <ivan@example.com> đã viết:",
            "> Try again.",
        ),
        "Cảm ơn bạn.",
        "Try again",
    ),
    "slovak header": (
        _lines(
            "Ďakujem.",
            "",
            "Dňa pi 5. 6. 2020 o 10:00 Ivan <ivan@example.com> napísal(a):",
            "> Skúste to znova.",
        ),
        "Ďakujem.",
        "Skúste",
    ),
    "korean gmail header": (
        _lines(
            "감사합니다.",
            "",
            "2020년 6월 5일 (금) 오전 10:00, Ivan <ivan@example.com>님이 작성:",
            "> Try again.",
        ),
        "감사합니다.",
        "Try again",
    ),
    # Headers wrapped over two or three lines: cut at their start, not at the verb.
    "finnish gmail header wrapped before the address": (
        _lines(
            "Kiitos.",
            "",
            "pe 5. kesäk. 2020 klo 10.00 Ivan Petrov (",
            "ivan@example.com) kirjoitti:",
            "> Yritä uudelleen.",
        ),
        "Kiitos.",
        "kesäk",
    ),
    "polish gmail header wrapped before the verb": (
        _lines(
            "Dzięki.",
            "",
            "pt., 5 cze 2020 o 10:00 Ivan Petrov",
            "<ivan@example.com> napisał(a):",
            "> Spróbuj ponownie.",
        ),
        "Dzięki.",
        "cze 2020",
    ),
    # real: Chatwoot's fixture mail_with_quote.eml (Gmail wraps inside the address)
    "gmail header wrapped inside the address": (
        _lines(
            "Yes, I am providing you step how to reproduce this issue",
            "",
            "On Thu, Aug 19, 2021 at 2:07 PM Tejaswini from Email sender test <",
            "tejaswini@chatwoot.com> wrote:",
            "",
            "> Any update on this?",
            ">",
            ">",
            "",
            "--",
            "* Sony Mathew*",
            "Software developer",
            "*Mob:9999999999",
        ),
        "Yes, I am providing you step how to reproduce this issue",
        "Tejaswini",
    ),
    # Android's stock mail app: "---- Name wrote ----" over an unquoted original.
    "android attribution without date or address": (
        _lines("Sure thing.", "", "---- Ivan Petrov wrote ----", "", "Try again please.", "Ivan"),
        "Sure thing.",
        "Try again",
    ),
    "reply message marker": (
        _lines(
            "Sure thing.",
            "",
            "-----Reply Message-----",
            "From: Ivan <ivan@example.com>",
            "To: blog",
            "",
            "Try again.",
        ),
        "Sure thing.",
        "Reply Message",
    ),
    "outlook block that starts with the date": (
        _lines(
            "Sure thing.",
            "",
            "Date: Fri, 5 Jun 2020 10:00:00",
            "From: Ivan <ivan@example.com>",
            "To: blog <reply@blog.example>",
            "Subject: Hello",
            "",
            "Try again.",
        ),
        "Sure thing.",
        "Date:",
    ),
    # The reply and the header on one line: the reply must stay.
    "reply glued to its quote header": (
        _lines(
            "I agree with you completely. On Fri, Jun 5, 2020 at 10:00 AM Ivan "
            "<ivan@example.com> wrote:",
            "> Try again.",
        ),
        "I agree with you completely.",
        "wrote",
    ),
    "reply glued to a wrapped quote header": (
        _lines(
            "Works for me!On Fri, Jun 5, 2020 at 10:00 AM Ivan Petrov",
            "<ivan@example.com> wrote:",
            "> Try again.",
        ),
        "Works for me!",
        "Ivan Petrov",
    ),
    # Device lines with the original, unquoted, below them.
    "unquoted original below sent from my iphone": (
        _lines(
            "Yes, I will.",
            "",
            "Sent from my iPhone",
            "",
            "A new comment was posted on your post.",
            "Reply to this email to answer.",
        ),
        "Yes, I will.",
        "A new comment",
    ),
    # real: amd-gfx list, 2024-03 (Outlook for iOS above an Outlook block)
    "outlook for ios above the original": (
        _lines(
            "Ping",
            "",
            "Get Outlook for iOS<https://aka.ms/o0ukef>",
            "________________________________",
            "From: Some One <some.one@example.com>",
            "Sent: Friday, March 22, 2024 12:49:56 PM",
            "To: list@lists.example.org <list@lists.example.org>",
            "Subject: [PATCH] Increase the log buffer size",
            "",
            "From version 0x54, the log entry increased.",
        ),
        "Ping",
        "log entry",
    ),
    # real: a GitHub issue comment answered from Outlook for iOS (ROCm, 2016)
    "outlook for ios glued to its link above an unquoted original": (
        _lines(
            "Did you remove your driver first.",
            "",
            "Greg",
            "",
            "Get Outlook for iOShttps://aka.ms/o0ukef",
            "",
            'On Wed, Aug 17, 2016 at 5:18 AM -0500, "Some One" '
            "<notifications@github.com<mailto:notifications@github.com>> wrote:",
            "",
            "I installed version 1.2 according to the instructions.",
        ),
        "Did you remove your driver first.\n\nGreg",
        "installed",
    ),
    # Quotes that lost their ">" are still one quote.
    "wrapped quote line that lost its marker": (
        _lines(
            "Thanks!",
            "",
            "On Fri, Jun 5, 2020 at 10:00 AM Ivan <ivan@example.com> wrote:",
            "> This is a rather long line of quoted text that the client wrapped and",
            "lost its marker on the next line",
            "> and then it goes on.",
        ),
        "Thanks!",
        "lost its marker",
    ),
    "quote broken by a notification link": (
        _lines(
            "Thanks!",
            "",
            "On Fri, Jun 5, 2020 at 10:00 AM Support <s@example.com> wrote:",
            "> Your ticket was updated.",
            "View ticket (http://support.example.com/t/1)",
            "> Reply above this line.",
        ),
        "Thanks!",
        "View ticket",
    ),
    # A trailing quote followed only by a sign-off is history.
    "trailing quote then thanks and a name": (
        _lines(
            "I fixed it.",
            "",
            "On Fri, Jun 5, 2020 at 10:00 AM Ivan <ivan@example.com> wrote:",
            "> Try again.",
            "",
            "Thanks!",
            "Bob",
        ),
        "I fixed it.",
        "Try again",
    ),
    "trailing quote then cheers": (
        _lines("I fixed it.", "", "> Try again.", "", "Cheers"),
        "I fixed it.",
        "Try again",
    ),
    # Signatures without "-- ".
    "signature under three dashes": (
        _lines("I fixed it.", "", "---", "Bob Smith", "Acme Corp"),
        "I fixed it.",
        "Acme",
    ),
    "dash space name": (_lines("I fixed it.", "", "- Bob"), "I fixed it.", "Bob"),
    "device line above a signature": (
        _lines("Done.", "", "Sent from my iPhone", "", "-- ", "Bob"),
        "Done.",
        "Bob",
    ),
    "thanks exclaimed and a name": (
        _lines("I fixed it.", "", "Thanks!", "Bob"),
        "I fixed it.",
        "Bob",
    ),
    "title under a name": (
        _lines(
            "I fixed it.",
            "",
            "Best regards,",
            "Bob Smith",
            "Senior Engineer | Acme Corp",
            "+1 555 1234",
        ),
        "I fixed it.",
        "Senior Engineer",
    ),
    "name, title and phone without a closing": (
        _lines("I fixed it.", "", "Bob Smith", "Senior Engineer, Acme Corp", "+1 555 123 4567"),
        "I fixed it.",
        "Senior Engineer",
    ),
    "german signature block without a closing": (
        _lines(
            "Erledigt.",
            "",
            "Anna Müller",
            "Geschäftsführerin",
            "Tel.: +49 30 1234567",
            "www.example.de",
        ),
        "Erledigt.",
        "Geschäftsführerin",
    ),
    "carrier before the device": (
        _lines("I fixed it.", "", "Sent from my Verizon, Samsung Galaxy smartphone"),
        "I fixed it.",
        "Verizon",
    ),
    "dutch device line": (
        _lines("Dank je.", "", "Verstuurd vanaf mijn iPhone"),
        "Dank je.",
        "iPhone",
    ),
    "finnish device line": (_lines("Kiitos.", "", "Lähetetty iPhonesta"), "Kiitos.", "iPhone"),
    "russian mail.ru device line": (
        _lines("Спасибо.", "", "Отправлено из мобильной Почты Mail.ru"),
        "Спасибо.",
        "Mail.ru",
    ),
    "turkish device line": (
        _lines("Teşekkürler.", "", "iPhone'umdan gönderildi"),
        "Teşekkürler.",
        "iPhone",
    ),
    "hungarian device line": (
        _lines("Köszönöm.", "", "Elküldve az iPhone-omról"),
        "Köszönöm.",
        "iPhone",
    ),
    "vietnamese device line": (_lines("Cảm ơn.", "", "Gửi từ iPhone của tôi"), "Cảm ơn.", "iPhone"),
    "aol app line": (_lines("Ok.", "", "Sent from the all new AOL app for iOS"), "Ok.", "AOL"),
    "carrier after the device": (
        _lines("Ok.", "", "Sent via the Samsung Galaxy S7, an AT&T 4G LTE smartphone"),
        "Ok.",
        "Galaxy",
    ),
}


@pytest.mark.parametrize("name", sorted(_FAMILY_CASES))
def test_mail_in_general(name: str) -> None:
    text, expected_visible, hidden = _FAMILY_CASES[name]
    parts = split_reply(text)
    assert parts.visible == expected_visible
    assert hidden not in parts.visible


@pytest.mark.parametrize(
    "text",
    [
        # A list whose last item is a name is not a sign-off.
        _lines("Invited so far:", "- Anna", "- Bob"),
        # An inline answer that is a single word stays (only closings count as a sign-off).
        _lines("> Did it work?", "", "Yes"),
        # A short answer in lower case right under a quoted line is not the rest of it.
        _lines(
            "On Fri, Jun 5, 2020 at 10:00 AM Ivan <ivan@example.com> wrote:",
            "> Can you check whether the build passes on arm64 and on the old x86 machines",
            "yes both pass",
            "> And the docs?",
            "",
            "See the wiki.",
        ),
        # A link in an answer between quotes is the answer, not part of the quote.
        _lines("> Where are the docs?", "http://docs.example.com", "> And the code?", "Here."),
        # "Sent from my desk, ..." is a sentence, not a device line, even with text below.
        _lines("Hi,", "", "Sent from my desk, which is easier than my phone.", "", "More text."),
        # Prose before a quote that mentions an address and a date is not a header.
        _lines("Write to me at <bob@example.com> from 2024 on:", "> old text", "", "ok"),
        # A sentence that starts like an app footer is not one.
        _lines("Hi,", "", "Sent from the app store page, see above."),
        # Capitalised words above a number or a link are content, not a signature block.
        _lines("The numbers are", "", "Total Cost", "1 234 567 890"),
        _lines("Meeting notes", "", "Agenda Items", "review budget", "http://example.com/doc"),
        _lines("Call me on:", "", "Bob", "+1 555 123 4567"),
        # Short content under a "---" separator is not a signature.
        _lines("Summary of the thread:", "---", "Looks good", "Ship it"),
        # A sentence ending with "sent:" is not a header.
        _lines("This is what I sent:", "", "> the text", "", "and this is new."),
        _lines("On 5 May I sent:", "> the text", "", "and this is new."),
    ],
)
def test_the_correspondents_words_stay_visible(text: str) -> None:
    parts = split_reply(text)
    for line in text.split("\n"):
        # (The quoted lines and the quote header are not the correspondent's words.)
        if line.strip() and not line.startswith(">") and not line.endswith("wrote:"):
            assert line in parts.visible.split("\n"), (line, parts)


def test_real_gmail_reply_with_wrapped_header_and_signature() -> None:
    # real: Chatwoot's fixture, read as the pipeline reads it (tests/data/reading/README.md)
    path = Path(__file__).parent / "data" / "reading" / "chatwoot_mail_with_quote.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    parts = split_reply(body.get_content())
    assert parts.visible == "Yes, I am providing you step how to reproduce this issue"
    assert parts.quoted.startswith("On Thu, Aug 19, 2021 at 2:07 PM")
    assert parts.signature.startswith("--\n* Sony Mathew*")


# Gmail's quote header as it writes it in other languages, wrapped where its 78-column plain
# text wraps it (the first line is the start of the header, whatever it starts with).
@pytest.mark.parametrize(
    "header",
    [
        ("Op vr 5 jun. 2020 om 10:00 schreef Ivan Petrov <", "ivan@example.com>:"),
        ("Ivan Petrov <ivan@example.com> ezt írta (időpont: 2020.", "jún. 5., P, 10:00):"),
        ("pá 5. 6. 2020 v 10:00 odesílatel Ivan Petrov <ivan@example.com>", "napsal:"),
        ("Ivan Petrov <ivan@example.com>, 5 Haz 2020 Cum, 10:00 tarihinde şunu yazdı:",),
        ("Στις Παρ, 5 Ιουν 2020 στις 10:00, ο/η Ivan Petrov <ivan@example.com> έγραψε:",),
        ("في الجمعة، 5 يونيو 2020 10:00 ص Ivan Petrov <ivan@example.com> كتب:",),
        ("fre. 5. jun. 2020 kl. 10:00 skrev Ivan Petrov <ivan@example.com>:",),
        ("Em sex., 5 de jun. de 2020 às 10:00, Ivan Petrov <", "ivan@example.com> escreveu:"),
        ("El vie., 5 jun. 2020 a las 10:00, Ivan Petrov (<", "ivan@example.com>) escribió:"),
        ("ven. 5 juin 2020 à 10:00, Ivan Petrov <ivan@example.com> a", "écrit :"),
        ("пт, 5 июн. 2020 г. в 10:00, Ivan Petrov <ivan@example.com>:",),
    ],
)
def test_gmail_headers_in_other_languages(header: tuple[str, ...]) -> None:
    parts = split_reply(_lines("Merci.", "", *header, "> Essayez encore."))
    assert parts.visible == "Merci."
    assert parts.quoted.startswith(header[0])
