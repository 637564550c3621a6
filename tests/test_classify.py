"""Unit tests for mailthreads.mail.classify (machine mail vs. human replies)."""

from __future__ import annotations

import base64
import email
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailthreads.mail.classify import (
    _FAILURE_WORDING,
    _MTA_BOILERPLATE,
    _NOTICE_CUES,
    _NOTICE_STEMS,
    TEMPORARY_FAILURE,
    Classification,
    _lowercase_as_matched,
    classify,
)

KINDS = {"reply", "auto_reply", "bounce", "feedback_report", "other"}


def parse(raw: str) -> Message:
    return email.message_from_bytes(raw.encode("utf-8"))


def simple_message(extra_headers: str = "", subject: str = "Re: A post", body: str = "") -> str:
    return (
        "From: Ann Reader <ann@example.org>\n"
        "To: reply+abc123@blog.example.com\n"
        f"Subject: {subject}\n"
        "Message-ID: <reply-1@example.org>\n"
        "In-Reply-To: <post-7@blog.example.com>\n"
        f"{extra_headers}"
        "\n"
        f"{body or 'Thanks, I enjoyed this.'}\n"
    )


def report(report_type: str, report_part: str, original: str = "", preamble: str = "") -> str:
    """A multipart/report with a notice, a machine-readable part and the original headers."""
    original = original or (
        "Content-Type: text/rfc822-headers\n\n"
        "From: Blog <notify@blog.example.com>\n"
        "To: Bob <bob@example.net>\n"
        "Subject: New reply to your comment\n"
        "Message-ID: <notify-42@blog.example.com>\n"
    )
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
        "To: notify@blog.example.com\n"
        "Subject: Report\n"
        "Message-ID: <report-1@mx.example.net>\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="XX"\n'
        "\n"
        "--XX\n"
        "Content-Type: text/plain\n"
        "\n"
        f"{preamble or 'This is a machine-generated report.'}\n"
        "\n"
        "--XX\n"
        f"{report_part}\n"
        "--XX\n"
        f"{original}\n"
        "--XX--\n"
    )


def dsn_part(action: str, status: str, recipient: str = "Bob@Example.NET") -> str:
    return (
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example.net\n"
        "Arrival-Date: Mon, 1 Jul 2024 10:00:00 +0000\n"
        "\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
    )


# --------------------------------------------------------------------------
# RFC 3834 Auto-Submitted
# --------------------------------------------------------------------------


def test_auto_submitted_auto_replied_is_an_auto_reply() -> None:
    result = classify(parse(simple_message("Auto-Submitted: auto-replied (vacation)\n")))

    assert result.kind == "auto_reply"
    assert "Auto-Submitted: auto-replied (RFC 3834)" in result.reasons
    assert result.original_message_id == "post-7@blog.example.com"
    assert result.failed_recipients == ()


def test_auto_submitted_no_is_a_human_reply() -> None:
    result = classify(parse(simple_message("Auto-Submitted: no\n")))

    assert result.kind == "reply"
    assert result.reasons == ("Auto-Submitted: no (RFC 3834)",)


def test_auto_submitted_no_outranks_a_precedence_hint() -> None:
    result = classify(parse(simple_message("Auto-Submitted: no\nPrecedence: bulk\n")))

    assert result.kind == "reply"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated\n",
        "Auto-Submitted: auto-notified\n",
        "Precedence: bulk\n",
        "Precedence: list\n",
        "Precedence: junk\n",
    ],
)
def test_auto_generated_mail_counts_as_auto_reply(header: str) -> None:
    assert classify(parse(simple_message(header))).kind == "auto_reply"


@pytest.mark.parametrize(
    "header",
    ["X-Autoreply: yes\n", "X-Autorespond: Vacation\n", "X-Apple-Action: VACATION\n"],
)
def test_vendor_auto_reply_headers(header: str) -> None:
    assert classify(parse(simple_message(header))).kind == "auto_reply"


def test_plain_reply_is_a_reply() -> None:
    result = classify(parse(simple_message()))

    # original_message_id is only for machine mail; a reply's parent is threading's job.
    assert result == Classification("reply", ("no machine-mail signs",), None)


# --------------------------------------------------------------------------
# Exchange headers
# --------------------------------------------------------------------------


def test_x_auto_response_suppress_alone_is_human() -> None:
    # Outlook sets it on ordinary mail (Discourse's quirks_exchange_xars fixture).
    message = parse(simple_message("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\n"))

    assert classify(message).kind == "reply"


def test_inbox_rules_loop_alone_is_human() -> None:
    message = parse(simple_message("X-MS-Exchange-Inbox-Rules-Loop: ann@example.org\n"))

    assert classify(message).kind == "reply"


def test_x_auto_response_suppress_with_inbox_rules_loop_is_an_out_of_office() -> None:
    headers = "X-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: ann@example.org\n"

    assert classify(parse(simple_message(headers))).kind == "auto_reply"


# --------------------------------------------------------------------------
# RFC 3464 delivery status notifications
# --------------------------------------------------------------------------


def test_failed_dsn_is_a_bounce_with_original_id_and_recipient() -> None:
    result = classify(parse(report("delivery-status", dsn_part("failed", "5.1.1"))))

    assert result.kind == "bounce"
    assert result.reasons == (
        "multipart/report; report-type=delivery-status with Action: failed (RFC 3464)",
    )
    assert result.original_message_id == "notify-42@blog.example.com"
    assert result.failed_recipients == ("bob@example.net",)


def test_original_id_comes_from_an_attached_message_rfc822() -> None:
    original = (
        "Content-Type: message/rfc822\n\n"
        "From: notify@blog.example.com\n"
        "Message-ID: <notify-43@blog.example.com>\n"
        "\n"
        "Someone replied.\n"
    )
    result = classify(parse(report("delivery-status", dsn_part("failed", "5.0.0"), original)))

    assert result.original_message_id == "notify-43@blog.example.com"


def test_delayed_dsn_is_a_bounce() -> None:
    result = classify(parse(report("delivery-status", dsn_part("delayed", "4.4.7"))))

    assert result.kind == "bounce"
    assert result.failed_recipients == ("bob@example.net",)


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_success_dsn_is_other(action: str) -> None:
    result = classify(parse(report("delivery-status", dsn_part(action, "2.0.0"))))

    assert result.kind == "other"
    assert result.failed_recipients == ()


def test_dsn_without_action_falls_back_on_the_status_class() -> None:
    part = dsn_part("failed", "5.2.2").replace("Action: failed\n", "")

    assert classify(parse(report("delivery-status", part))).kind == "bounce"


# --------------------------------------------------------------------------
# ARF and MDN
# --------------------------------------------------------------------------


def test_arf_complaint_is_a_feedback_report() -> None:
    part = (
        "Content-Type: message/feedback-report\n"
        "\n"
        "Feedback-Type: abuse\n"
        "User-Agent: SomeGenerator/1.0\n"
        "Version: 1\n"
    )
    result = classify(parse(report("feedback-report", part)))

    assert result.kind == "feedback_report"
    assert result.reasons == (
        "multipart/report; report-type=feedback-report, Feedback-Type: abuse (RFC 5965 ARF)",
    )
    assert result.original_message_id == "notify-42@blog.example.com"


def test_read_receipt_is_other() -> None:
    part = (
        "Content-Type: message/disposition-notification\n"
        "\n"
        "Reporting-UA: mail.example.net; Mail/1.0\n"
        "Final-Recipient: rfc822; bob@example.net\n"
        "Original-Message-ID: <notify-44@blog.example.com>\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n"
    )
    result = classify(parse(report("disposition-notification", part, original=" ")))

    assert result.kind == "other"
    assert result.original_message_id == "notify-44@blog.example.com"


# --------------------------------------------------------------------------
# Envelope sender, sender, subject and wording
# --------------------------------------------------------------------------


def test_null_envelope_sender_is_a_bounce() -> None:
    result = classify(parse(simple_message()), envelope_sender="")

    assert result.kind == "bounce"
    assert "null envelope sender <>" in result.reasons


def test_null_envelope_sender_with_auto_replied_is_an_auto_reply() -> None:
    message = parse(simple_message("Auto-Submitted: auto-replied\n"))

    assert classify(message, envelope_sender="").kind == "auto_reply"


def test_known_envelope_sender_outranks_a_return_path_header() -> None:
    message = parse("Return-Path: <>\n" + simple_message())

    assert classify(message).kind == "bounce"  # envelope unknown: Return-Path is used
    assert classify(message, envelope_sender="ann@example.org").kind == "reply"


def test_non_mime_exim_bounce() -> None:
    raw = (
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        "To: notify@blog.example.com\n"
        "Subject: Mail delivery failed: returning message to sender\n"
        "Message-ID: <bounce-9@mx.example.net>\n"
        "X-Failed-Recipients: Bob@example.net\n"
        "Auto-Submitted: auto-replied\n"
        "\n"
        "This message was created automatically by mail delivery software.\n"
        "\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error.\n"
        "\n"
        "------ This is a copy of the message, including all the headers. ------\n"
        "\n"
        "From: notify@blog.example.com\n"
        "Message-ID: <notify-45@blog.example.com>\n"
        "\n"
        "Someone replied.\n"
    )
    result = classify(parse(raw))

    # Exim marks its bounces auto-replied; the bounce signs must win.
    assert result.kind == "bounce"
    assert result.failed_recipients == ("bob@example.net",)
    assert result.original_message_id == "notify-45@blog.example.com"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: A post",
        "Automatic reply: A post",
        "Abwesenheitsnotiz: A post",
        "Réponse automatique : A post",
        "Auto-Reply: A post",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    assert classify(parse(simple_message(subject=subject))).kind == "auto_reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Undeliverable: A post",
        "Delivery Status Notification (Failure)",
        "Mail delivery failed: returning message to sender",
        "Returned mail: see transcript for details",
        "Undelivered Mail Returned to Sender",
    ],
)
def test_bounce_subjects(subject: str) -> None:
    assert classify(parse(simple_message(subject=subject))).kind == "bounce"


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Why my mail delivery failed",
        "Re: Out of office, out of mind",
        "Re: Automatic replies considered harmful",
        "Ooo, nice post",
    ],
)
def test_reply_subjects_that_mention_machine_mail_stay_human(subject: str) -> None:
    assert classify(parse(simple_message(subject=subject))).kind == "reply"


def test_mailer_daemon_sender_is_a_bounce() -> None:
    raw = simple_message().replace("Ann Reader <ann@example.org>", "MAILER-DAEMON@mx.example.net")

    assert classify(parse(raw)).kind == "bounce"


def test_a_person_writing_as_postmaster_is_human() -> None:
    raw = simple_message().replace("ann@example.org", "postmaster@example.org")

    assert classify(parse(raw)).kind == "reply"


def test_a_person_pasting_a_bounce_is_human() -> None:
    body = (
        "Your newsletter bounced off my old address, this is what I got:\n"
        "\n"
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "<ann@old.example.org>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n"
    )

    assert classify(parse(simple_message(body=body))).kind == "reply"


def test_bounce_wording_with_a_machine_header_is_a_bounce() -> None:
    raw = (
        "From: Mail System <system@mx.example.net>\n"
        "Subject: failure notice\n"
        "\n"
        "Hi. This is the qmail-send program at mx.example.net.\n"
    )

    assert classify(parse(raw), envelope_sender="").kind == "bounce"


def test_amazon_ses_notification_json() -> None:
    raw = (
        "From: no-reply@sns.amazonaws.com\n"
        "Subject: AWS Notification Message\n"
        "\n"
        '{"notificationType":"Bounce","bounce":{"bounceType":"Permanent",'
        '"bouncedRecipients":[{"emailAddress":"Bob@example.net"}]}}\n'
    )
    result = classify(parse(raw))

    assert result.kind == "bounce"
    assert result.failed_recipients == ("bob@example.net",)


# --------------------------------------------------------------------------
# Robustness: never raise, bounded work
# --------------------------------------------------------------------------

MALFORMED = [
    b"",
    b"\x00\xff\xfe",
    b"From: \xff\xfe\r\nSubject: =?utf-8?B?////?=\r\n\r\nbody",
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary",
    b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n',
    b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\n Status",
    b"Content-Type: text/plain; charset=no-such-charset\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!===",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n",
    b"Auto-Submitted: \r\nPrecedence:\r\nReturn-Path: <<<>>>\r\nIn-Reply-To: <\r\n\r\n",
    b"Subject: " + b"x" * 100_000 + b"\r\n\r\n",
    b"Content-Type: \xff/\xfe; report-type=\xff\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_messages_never_raise(raw: bytes) -> None:
    result = classify(email.message_from_bytes(raw))

    assert result.kind in KINDS


def test_hand_built_nonsense_payloads_never_raise() -> None:
    odd_payload = Message()
    odd_payload["Content-Type"] = "multipart/report; report-type=delivery-status"
    odd_payload.set_payload(["not a message", 42, None])  # type: ignore[list-item]
    numeric_payload = Message()
    numeric_payload.set_payload(12345)  # type: ignore[arg-type]

    assert classify(odd_payload).kind in KINDS
    assert classify(numeric_payload).kind in KINDS


def test_ten_thousand_levels_of_nesting_return() -> None:
    # Built by hand: the stdlib parser itself recurses too deeply on this as bytes.
    top = Message()
    top["From"] = "ann@example.org"
    top["Content-Type"] = 'multipart/mixed; boundary="b"'
    current = top
    for _ in range(10_000):
        child = Message()
        child["Content-Type"] = 'multipart/mixed; boundary="b"'
        current.set_payload([child])
        current = child
    current.set_payload([parse("Content-Type: text/plain\n\nhello\n")])

    assert classify(top).kind == "reply"


def test_ten_thousand_parts_return() -> None:
    parts = "".join(f"--B\nContent-Type: text/plain\n\npart {n}\n" for n in range(10_000))
    raw = f'From: ann@example.org\nContent-Type: multipart/mixed; boundary="B"\n\n{parts}--B--\n'

    assert classify(parse(raw)).kind == "reply"


def test_huge_encoded_body_returns() -> None:
    payload = base64.encodebytes(b"Mail delivery failed. " * 400_000).decode("ascii")
    raw = (
        "From: MAILER-DAEMON@mx.example.net\n"
        "Content-Type: text/plain\n"
        "Content-Transfer-Encoding: base64\n"
        f"\n{payload}"
    )

    assert classify(parse(raw)).kind == "bounce"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_classify_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    result = classify(email.message_from_bytes(raw))

    assert result.kind in KINDS
    assert isinstance(result.reasons, tuple)


_INTERESTING_LINES = st.sampled_from(
    [
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
        "Content-Type: multipart/report; report-type=feedback-report; boundary=b",
        "Content-Type: message/delivery-status",
        "Content-Type: message/rfc822",
        "Content-Type: text/rfc822-headers",
        "Content-Transfer-Encoding: base64",
        "--b",
        "--b--",
        "Action: failed",
        "Status: 5.1.1",
        "Final-Recipient: rfc822; <x@y>",
        "Auto-Submitted: auto-replied",
        "Return-Path: <>",
        "From: MAILER-DAEMON",
        "Subject: Undeliverable:",
        "Message-ID: <a@b>",
        "",
        " folded",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_INTERESTING_LINES, st.text(max_size=40)), max_size=40))
def test_classify_never_raises_on_mail_like_junk(lines: list[str]) -> None:
    raw = "\r\n".join(lines).encode("utf-8", "surrogatepass")

    assert classify(email.message_from_bytes(raw)).kind in KINDS


# --------------------------------------------------------------------------
# The shortcuts of the hot path
# --------------------------------------------------------------------------


def test_header_names_match_in_any_case() -> None:
    message = parse(simple_message("AUTO-SUBMITTED: auto-replied\nx-autoreply: yes\n"))
    result = classify(message)
    assert result.kind == "auto_reply"
    assert "X-Autoreply: yes" in result.reasons


_BOUNCE_PHRASES = st.sampled_from(
    [
        "This is the qmail-send program",
        "could not be delivered to:",
        "Diagnostic-Code: smtp; 550 5.1.1",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; mx.example.net",
        "your mail to bob@example.org was not be delivered",
        "requested action not taken",
        "message will be retried",
        "user unknown",
        "550 5.1.1",
        "mailbox is full",
        "Delivery Status Notification",
        "returned mail",
    ]
).flatmap(lambda phrase: st.sampled_from([phrase, phrase.upper(), phrase.swapcase()]))
# Letters that case-insensitive matching treats as others ("ı" and "İ" as "i", "ſ" as "s",
# the Kelvin sign as "k"), line breaks and spaces.
_ODD_PIECES = st.sampled_from(["\u0131", "\u0130", "\u017f", "\u212a", "é", "\n", " ", "\n\n  "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_BOUNCE_PHRASES, _ODD_PIECES, st.text(max_size=8)), max_size=10))
def test_bounce_wording_shortcuts_agree_with_the_pattern(pieces: list[str]) -> None:
    text = "".join(pieces)
    for wording in (_MTA_BOILERPLATE, _FAILURE_WORDING):
        match = wording.pattern.search(text)
        assert wording.search(text) == (match.group(0) if match else None)


# --- mail in general (issue 14) ---------------------------------------------------------------

_READING_DATA = Path(__file__).parent / "data" / "reading"


def test_sendmail_delay_warning_is_a_temporary_bounce() -> None:
    # real: the Ruby mail gem's fixture (tests/data/reading/README.md)
    raw = (_READING_DATA / "mail_gem_report_422.eml").read_bytes()
    result = classify(email.message_from_bytes(raw))
    assert result.kind == "bounce"
    assert TEMPORARY_FAILURE in result.reasons
    assert result.failed_recipients == ("fraser@oooooooo.com.au",)


def test_delay_warning_without_a_report_is_a_temporary_bounce() -> None:
    # The same Sendmail warning as plain text, the way older servers send it.
    raw = simple_message(
        subject="Warning: could not send message for past 4 hours",
        body=(
            "    **********************************************\n"
            "    **      THIS IS A WARNING MESSAGE ONLY      **\n"
            "    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n"
            "    **********************************************\n\n"
            "The original message was received at Sat, 19 Apr 2003 05:15:03 +0200\n\n"
            "Warning: message still undelivered after 4 hours\n"
            "Will keep trying until message is 5 days old\n"
        ),
    ).replace("Ann Reader <ann@example.org>", "Mail Delivery Subsystem <MAILER-DAEMON@mx.example>")
    result = classify(parse(raw))
    assert result.kind == "bounce"
    assert TEMPORARY_FAILURE in result.reasons


def test_failed_delivery_is_not_temporary() -> None:
    # Sendmail gives up after five days with a 4.x.x status: the mail is returned for good.
    raw = simple_message(
        subject="Returned mail: Cannot send message for 5 days",
        body="The original message was received at Mon, 1 Jan 2024\n\nMessage will be deleted",
    ).replace("Ann Reader <ann@example.org>", "Mail Delivery Subsystem <MAILER-DAEMON@mx.example>")
    result = classify(parse(raw))
    assert result.kind == "bounce"
    assert TEMPORARY_FAILURE not in result.reasons


_UTF8 = "Content-Type: text/plain; charset=utf-8\n"

_OUT_OF_OFFICE_TEXTS = {
    "en": "I am out of the office until Monday, 10 June, with limited access to email. "
    "For urgent matters please contact jane@example.com.",
    "en-leave": "Thank you for your message. I am on annual leave and will be back on 3 July. "
    "In urgent cases please contact my colleague Jane Doe.",
    "de": "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 14.06. nicht im Büro. "
    "In dringenden Fällen wenden Sie sich bitte an Frau Muster.",
    "fr": "Bonjour, je suis absente du bureau jusqu'au 12 juin. En cas d'urgence, "
    "veuillez contacter Marie Dupont.",
    "es": "Estoy fuera de la oficina hasta el 15 de junio. Para asuntos urgentes, póngase en "
    "contacto con Ana García.",
    "it": "Sono fuori ufficio fino al 20 giugno. Per urgenze contattare Mario Rossi.",
    "nl": "Ik ben afwezig tot en met 21 juni. Voor dringende zaken kunt u contact opnemen met "
    "Jan Jansen. (spoed: 010-1234567)",
    "pt": "Estou fora do escritório até o dia 22 de junho. Em caso de urgência, entre em contato "
    "com João Silva.",
    "sv": "Jag är ledig till och med 23 juni och kommer tillbaka måndag. I brådskande ärenden, "
    "kontakta Anna Svensson.",
    "fi": "Olen lomalla ja palaan toimistolle 24.6. Kiireellisissä asioissa ota yhteyttä "
    "Matti Meikäläiseen.",
    "pl": "Jestem na urlopie do dnia 25 czerwca. W pilnych sprawach proszę o kontakt z Janem "
    "Kowalskim. Wiadomość została wysłana automatycznie; skontaktuj się z biurem.",
    "ru": "Я в отпуске до 26 июня. По срочным вопросам обращайтесь к Ивану Петрову.",
    # real: sisimai set-of-emails rfc3834-02 and -04 (BSD-2-Clause), their bodies
    "en-friday": "I'm out of the office Friday. For pressing news matters, Nyaan.",
    "en-traveling": "***Please stop and read this message.***\n\nI will be traveling for work "
    "on July 10-31.  During that time I will have intermittent access to email and phone, "
    "and I will respond to your message as promptly as possible.\n\nPlease contact our "
    "Client Service Support Team (information below) if you need immediate assistance.",
}


@pytest.mark.parametrize("language", sorted(_OUT_OF_OFFICE_TEXTS))
def test_out_of_office_recognised_by_its_text(language: str) -> None:
    # Exchange and others often send these with no header that marks them.
    raw = simple_message(_UTF8, subject="Re: A post", body=_OUT_OF_OFFICE_TEXTS[language])
    result = classify(parse(raw))
    assert result.kind == "auto_reply", result.reasons
    assert result.reasons[0].startswith("out-of-office wording")


@pytest.mark.parametrize(
    "body",
    [
        "I was on vacation until last week, sorry for the late answer. Great post!",
        "Back from holiday: I tried your recipe and it worked. Please contact me if you "
        "write a follow-up.",
        "I'm out of office today, but I wanted to say: urgent reading for everyone!",
        "Olen lomalla, mutta kiitos hyvästä kirjoituksesta.",
    ],
)
def test_people_writing_about_their_holidays_stay_human(body: str) -> None:
    assert classify(parse(simple_message(_UTF8, body=body))).kind == "reply"


_OLD_STYLE_BOUNCES = {
    # Lotus Notes / Domino, and Exchange 5.5 era subjects
    "nondeliverable subject": ("Nondeliverable mail", "Your message could not be delivered."),
    "message delivery failure": ("Message Delivery Failure", "Delivery to: bob@example.net"),
    "gmail in spanish": (
        "Notificación de estado de entrega (Error)",
        "No se ha podido entregar el mensaje.",
    ),
    "gmail in german": (
        "Benachrichtigung zum Übermittlungsstatus (Fehler)",
        "Die Nachricht konnte nicht zugestellt werden.",
    ),
    # No telling subject, no daemon sender: the opening sentence of the notice decides.
    "postfix text under an ordinary sender": (
        "Notice",
        "This is the mail system at host mx.example.net.\n\nI'm sorry to have to inform you "
        "that your message could not be delivered to one or more recipients.",
    ),
    "sendmail transcript": (
        "Mail problem",
        "The original message was received at Mon, 1 Jan 2024 10:00:00 +0100\n\n"
        "   ----- Transcript of session follows -----\n550 5.1.1 <bob@example.net>... "
        "User unknown",
    ),
    "groupwise": (
        "Message status",
        "The message that you sent was undeliverable to the following:\n\tbob@example.net",
    ),
}


@pytest.mark.parametrize("name", sorted(_OLD_STYLE_BOUNCES))
def test_old_style_bounces_are_bounces(name: str) -> None:
    subject, body = _OLD_STYLE_BOUNCES[name]
    raw = simple_message(_UTF8, subject=subject, body=body).replace(
        "Ann Reader <ann@example.org>", "Mail Administrator <mail@mx.example.net>"
    )
    assert classify(parse(raw)).kind == "bounce"


def test_a_reply_that_starts_with_a_pasted_notice_stays_human() -> None:
    body = "This is the mail system at host mx.example.net. Is that what you meant in the post?"
    assert classify(parse(simple_message(subject="Re: A post", body=body))).kind == "reply"


def test_real_gmail_reply_is_a_reply() -> None:
    # real: Chatwoot's fixture mail_with_quote.eml (tests/data/reading/README.md)
    raw = (_READING_DATA / "chatwoot_mail_with_quote.eml").read_bytes()
    assert classify(email.message_from_bytes(raw)).kind == "reply"


_NOTICE_PIECES = st.sampled_from(
    ["limited access to", "no access to email", "urgent", "Dringend", "urgencia", "spoed",
     "brådskande", "haster", "kiireellisissä", "pilnych", "срочным", "acil", "緊急",
     "please contact", "wenden sie sich", "Vertretung", "contactez", "contattare",
     "entre em contato", "kontakta", "ota yhteyttä", "skontaktuj", "обращайтесь",
     "this is an automatic", "Réponse automatique", "автоматический ответ", "otomatik yanıt",
     "自动", "will not be read", "nicht weitergeleitet", "x", " "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NOTICE_PIECES, max_size=5).map("".join))
def test_out_of_office_shortcut_agrees_with_the_pattern(text: str) -> None:
    lowered = _lowercase_as_matched(text)
    if _NOTICE_CUES.search(lowered):
        assert any(stem in lowered for stem in _NOTICE_STEMS)
