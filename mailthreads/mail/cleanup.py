"""Split the plain-text body of an emailed reply into what a reader of the discussion wants.

A reply by email carries more than the correspondent's new words: the quoted history (an
"On ... wrote:" line and "> " lines, or an Outlook "From:/Sent:" block followed by the
unquoted original), a signature, a "Sent from my iPhone" footer, mailing-list footers.
:func:`split_reply` separates those; :func:`html_to_text` turns HTML-only mail into text
that :func:`split_reply` understands.

The splitter never rewrites a line: every line of the input ends up, unchanged, in exactly
one of ``visible``, ``quoted`` or ``signature`` (blank lines at the edges are dropped). The one
exception is a reply glued to its quote header ("Agreed. On ... wrote:"), which is split in
two so that hiding the header never hides the correspondent's words.

Mail is hostile input. The patterns of split_reply only ever see short, length-capped strings
(a line, or the few joined lines of a wrapped header), none has ambiguous nested repetition
that could backtrack catastrophically, and history markers are only looked for in the first
``MAX_SCAN_LINES`` lines, so the work is linear in the size of the body. The few patterns run
over a whole text (html_to_text's clean-up; split_reply's searches for a reply glued to its
quote header and for an unquoted line between quoted ones) are single linear scans.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

import html2text

__all__ = ["ReplyParts", "html_to_text", "split_reply"]


@dataclass(frozen=True)
class ReplyParts:
    """A received reply, split for display."""

    visible: str  # the correspondent's own new words (inline answers keep what they answer)
    quoted: str  # the quoted history removed (quote header plus quoted block), "" when none
    signature: str  # the signature, mobile footer or closing removed, "" when none


# Quote headers, forward markers and Outlook blocks are only searched for in this many lines.
# Real replies put them within the first few hundred lines; the cap bounds the work on hostile
# bodies (the lines after it are still split into quotes, signature and text).
MAX_SCAN_LINES = 5_000
# A line longer than this cannot be a quote header, a field of an Outlook block, a footer or a
# closing, so the patterns never see more than this many characters at once.
MAX_HEADER_CHARS = 300
# Mail clients wrap a long "On <date>, <name> <address> wrote:" over at most this many lines.
MAX_HEADER_LINES = 5
# A bare "Jens Petersen wrote:" (no date, no address) has at most this many words.
MAX_ATTRIBUTION_WORDS = 6
# A "-- " signature or a list footer is at most this many lines; a longer tail is real text.
MAX_SIGNATURE_LINES = 25
# Longer lines are sentences, not a mobile footer ("Sent from my iPhone") ...
MAX_FOOTER_CHARS = 200
# ... nor a closing ("Kind regards,") or the name, title or phone number below one.
MAX_CLOSING_CHARS = 50
# Lines after a closing ("Regards,") that may still be name, title, phone.
MAX_NAME_LINES = 4
# How far below a quote header the quoted block may start (clients add blank lines).
MAX_GAP_BEFORE_QUOTE = 10
# Trimming the tail is a handful of passes (list footer, signature, quote, closing);
# the cap keeps a crafted tail from making it quadratic.
MAX_TAIL_PASSES = 12

# Characters that make a line look non-empty without showing anything: zero-width spaces,
# the byte-order mark, and the "ᐧ" that Gmail tracking extensions append to a message.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u1427"


class _Role(enum.Enum):
    VISIBLE = "visible"
    QUOTED = "quoted"
    SIGNATURE = "signature"


@dataclass(frozen=True)
class _History:
    """Where a piece of quoted history starts and how it is introduced."""

    start: int  # first line handed to the history (separator lines above the marker included)
    end: int  # first line after the quote header / forward marker itself
    # "header": "On ... wrote:"; "marker": "-----Original Message-----";
    # "fields": an Outlook "From: / Sent: / To:" block; "device": "Sent from my iPhone", under
    # which top-posting mobile clients put the original without quoting it.
    kind: Literal["header", "marker", "fields", "device"]


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text reply body into the new words, the quoted history and the signature."""
    text = _normalise_newlines(text)
    lines = text.split("\n")
    # A reply glued to its quote header is only noticed once the header is found: the line is
    # split and the work done again (rarely, and a bounded number of times).
    for _ in range(MAX_GLUED_HEADERS):
        try:
            return _split_lines(text, lines, find_glued=True)
        except _GluedHeader as glued:
            lines = glued.split(lines)
            text = "\n".join(lines)
    return _split_lines(text, lines, find_glued=False)


def _split_lines(text: str, lines: list[str], find_glued: bool) -> ReplyParts:
    # Computed once (the test of _is_blank, inlined): the long scans below (leading blank
    # lines, the tail, the edges of each part) would otherwise test the same lines repeatedly.
    blank = [not line.strip().strip(_INVISIBLE) for line in lines]
    # The lines as the rules read them: quoted lines that lost their ">" get it back. The
    # parts are still made of the original lines.
    seen = _restore_lost_quote_markers(text, lines) if ">" in text else lines
    roles = [_Role.VISIBLE] * len(lines)
    reply_start = _hand_over_leading_history(seen, blank, roles, find_glued)
    _hand_over_quoted_history(seen, blank, roles, reply_start, find_glued)
    _hand_over_tail(seen, blank, roles)
    parts = _collect_parts(lines, blank, roles)
    return ReplyParts(
        visible=parts[_Role.VISIBLE],
        quoted=parts[_Role.QUOTED],
        signature=parts[_Role.SIGNATURE],
    )


def html_to_text(html: str) -> str:
    """Readable plain text for an HTML-only message, in the form :func:`split_reply` expects.

    Blockquotes become "> " lines, links stay inline as ``[text](url)`` (a bare ``<url>`` when
    the text is the address itself, and mail addresses are shown as plain addresses), images
    are replaced by their alt text, and lines are never wrapped.
    """
    try:
        text = _convert_html(html)
    except AssertionError:
        # The stdlib HTML parser asserts on malformed "<!" declarations ("<![<", "<![foo[");
        # shown as text, they cannot break it.
        text = _convert_html(html.replace("<!", "&lt;!"))
    text = _undo_markdown_escapes(text)
    text = _MAILTO_LINK_RE.sub(_readable_mailto, text)
    text = text.replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    # HTML mail puts every typed line in its own block; one blank line between blocks is
    # enough to read it, the runs of empty <div>s and <br>s are not.
    text = _BLANK_RUN_RE.sub("\n\n", "\n".join(lines))
    return text.strip("\n")


def _convert_html(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # wrapping would split quote headers and URLs
    converter.unicode_snob = True  # keep letters such as "é" instead of ASCII look-alikes
    converter.images_to_alt = True  # tracking pixels vanish, real images keep their alt text
    converter.skip_internal_links = True
    return converter.handle(html)


# --------------------------------------------------------------------------------------
# Line classification (each function looks at one line, cheaply)
# --------------------------------------------------------------------------------------


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_blank(line: str) -> bool:
    return not line.strip().strip(_INVISIBLE)


def _is_quote(line: str) -> bool:
    """A "> " quoted line, the quoting every mail client understands."""
    return line.lstrip()[:1] == ">"


# Supercite-style quoting ("Richard> text", "C> text") is only trusted at the end of a
# message: a name followed by ">" at the start of a line is too ambiguous to open a quote.
_SUPERCITE_RE = re.compile(r"[A-Za-z]{1,12}>")


def _is_quoted_at(lines: list[str], index: int) -> bool:
    """A quoted line, or the rest of one cut by an undecoded quoted-printable soft break
    ("> ... Wednesda=" followed by "y")."""
    if _is_quote(lines[index]):
        return True
    previous = lines[index - 1] if index > 0 else ""
    return previous.endswith("=") and _is_quote(previous)


def _is_trailing_quote_at(lines: list[str], index: int) -> bool:
    return _is_quoted_at(lines, index) or _SUPERCITE_RE.match(lines[index]) is not None


def _delimiter_char(line: str) -> str | None:
    """The character of a separator line such as "-----", "_____" or "* * *", else None."""
    if len(line) > MAX_HEADER_CHARS:
        return None
    core = line.strip().replace(" ", "")
    if len(core) >= 3 and core[0] in "-_=*~+#" and core == core[0] * len(core):
        return core[0]
    return None


def _is_signature_dash(line: str) -> bool:
    """The "-- " signature separator (many clients drop the trailing space)."""
    return line.strip() == "--"


# --- quote headers ("On <date>, <name> wrote:") ----------------------------------------

# The verb of a quote header, in the languages mail clients localise it to. The whole words
# share one pair of \b (the same matches as a \b...\b around each word, but one boundary test
# instead of one per word at every position, which makes the search about 2.5 times faster).
_WROTE_RE = re.compile(
    r"\b(?:wrote|writes|schrieb|geschrieben|a\s[ée]crit|escribi[óo]|ha\sscritto|scrisse"
    r"|schreef|geschreven|skrev|skriver|escreveu|kirjoitti|írta|yazdı"
    # Romanian, Indonesian, Estonian, Catalan, Croatian/Serbian/Bosnian (Latin script)
    r"|a\sscris|menulis|kirjutas|va\sescriure|napisao|napisala)\b"
    r"|\bnapisa[łl]|\bnapsal|\bnapísal|đã\sviết|rakstīja|rašė|skrifaði|έγραψε"
    r"|написал|написала|написав|написа|пише|写道|寫道|書きました|작성|כתב|كتب|نوشت",
    re.IGNORECASE,
)
# Every match of _WROTE_RE in ASCII text contains one of these, once lowercased ("ı" matches
# "i" under IGNORECASE, hence "yazdi"). A case-insensitive search tries every verb at every
# position; this plain one skips ahead to the few letters the stems start with, so it rules
# out an ordinary line of prose several times faster. A verb added above needs its stem here
# (tests/test_cleanup.py checks that both agree).
_WROTE_STEMS_ASCII_RE = re.compile(
    # (Short stems that several verbs share: "scri" is in escribió, scritto, scrisse, a scris
    # and va escriure; fewer branches make the search faster.)
    r"wrote|writes|schr|scri|skr|ecrit|napis|napsal|escrev|kirj|yazdi|menulis"
)


def _has_quote_verb(text: str) -> bool:
    """Whether ``text`` contains the verb of a quote header ("wrote", "schrieb", ...)."""
    if text.isascii() and _WROTE_STEMS_ASCII_RE.search(text.lower()) is None:
        return False
    return _WROTE_RE.search(text) is not None


# A header ending in its verb, without a colon ("---- On ... wrote ----").
_ENDS_WITH_WROTE_RE = re.compile(r"\b(?:wrote|schrieb|skrev|escribió|escreveu)$", re.IGNORECASE)
# The pattern is only searched in this many last characters (enough for the longest verb and
# the character before it that \b looks at), instead of being tried at every position.
_ENDS_WITH_WROTE_WINDOW = 16
# Words that open a quote header; only needed to trust a header wrapped over several lines.
_HEADER_LEAD_RE = re.compile(
    r"(?:On|Am|Le|El|Em|Op|Il|Den|Dnia|W dniu|At|Dne|Dňa|Dana|Pada|Vào|Ngày|Στις|В|У)\b"
)
# Localised clients open the header with an abbreviated weekday and the day: "pe 5.6.2020 klo"
# (Finnish), "fre. 5. jun. 2020 kl." (Norwegian), "pt., 5 cze 2020 o" (Polish), "Fri, 5 Jun".
# The lines that may open a header wrapped over several lines: a lead word or a weekday (one
# pattern, so that most lines cost one failed match).
_WRAPPED_HEADER_LEAD_RE = re.compile(_HEADER_LEAD_RE.pattern + r"|[^\W\d_]{1,4}+\.?,?\s\d")


# Gmail's localised header starts with a numeric date: "2016-10-24 15:36 GMT+02:00 Name <a>:",
# "2022年1月1日(金) 9:00 Name <a>:".
_DATE_LED_RE = re.compile(r"\d{4}\s?[-/.年년]\s?\d{1,2}\s?[-/.月월]")
_GMT_OFFSET_RE = re.compile(r"GMT[+-]\d\d:?\d\d")
# Decorations around a header: "---- On ... wrote ----", "*On ... wrote:*".
_HEADER_DECORATION = " \t-*_"


def _quote_header_end(lines: list[str], start: int) -> int | None:
    """If a quote header starts at ``start``, the index of the line after it, else None.

    The header may be wrapped over up to MAX_HEADER_LINES lines (with one blank line after
    its first line, as some clients do), and a quoted-printable soft break ("w=" / "rote:")
    may cut a word in two.
    """
    first = lines[start].strip()
    if not first or len(first) > MAX_HEADER_CHARS or _is_quote(first):
        return None
    starts_with_digit = first[0].isdigit()
    # (A date-led header starts with a digit: most lines need not be matched against it.)
    if starts_with_digit and _is_date_led_header(first):
        return start + 1
    # Only a line that already looks like the start of a header may continue on the next
    # lines; otherwise "Thanks!" followed by "On ... wrote:" would become one header.
    may_wrap = bool(
        starts_with_digit or _WRAPPED_HEADER_LEAD_RE.match(first) or ("<" in first and "@" in first)
    )
    if not may_wrap and not _has_quote_verb(first):
        return None
    pieces: list[str] = []
    for index in range(start, min(len(lines), start + MAX_HEADER_LINES)):
        raw = lines[index]
        if len(raw) > MAX_HEADER_CHARS:
            return None
        if _is_blank(raw):
            if index == start + 1:
                continue
            return None
        piece = raw.strip()
        if index > start:
            # A line that opens a header itself is not the continuation of this one.
            if not may_wrap or _HEADER_LEAD_RE.match(piece) or _DATE_LED_RE.match(piece):
                return None
            # A wrapped "<address>" leaves its ">" at the start of the next line.
            piece = piece.lstrip("> ")
        _append_header_piece(pieces, piece)
        candidate = " ".join(pieces).strip(_HEADER_DECORATION)
        if _ends_header(candidate):
            if _is_quote_header_text(candidate) or _is_decorated_attribution(first, candidate):
                return index + 1
            return None
    return None


def _append_header_piece(pieces: list[str], piece: str) -> None:
    # Undecoded quoted-printable: a line ending in "=" continues without a space.
    if pieces and pieces[-1].endswith("="):
        pieces[-1] = pieces[-1][:-1] + piece
    else:
        pieces.append(piece)


def _ends_header(candidate: str) -> bool:
    if candidate.endswith((":", "：")):
        return True
    return _ENDS_WITH_WROTE_RE.search(candidate[-_ENDS_WITH_WROTE_WINDOW:]) is not None


def _is_quote_header_text(candidate: str) -> bool:
    """A complete header: the verb plus a date or an address, so prose like "as I wrote:"
    does not count."""
    if len(candidate) > MAX_HEADER_CHARS * 2:
        return False
    has_date_or_address = "@" in candidate or any(char.isdigit() for char in candidate)
    if not has_date_or_address:
        return False
    if _has_quote_verb(candidate) or _is_date_led_header(candidate):
        return True
    # "On <date>, <name> <address> sent:" / "said:": too common as words to be verbs anywhere
    # else, and only with the address ("On 5 May I sent:" is the correspondent's sentence).
    return (
        "@" in candidate
        and _OTHER_VERB_END_RE.search(candidate[-8:]) is not None
        and bool(_HEADER_LEAD_RE.match(candidate))
    )


# Verbs only trusted at the very end of a header that opens like one.
_OTHER_VERB_END_RE = re.compile(r"\b(?:sent|said|says)\s?:$", re.IGNORECASE)


def _is_decorated_attribution(first: str, candidate: str) -> bool:
    """Android's "---- Name wrote ----": no date, no address, but framed like a marker."""
    return (
        first.startswith("--")
        and first.endswith("--")
        and len(candidate.split()) <= MAX_ATTRIBUTION_WORDS + 1
    )


def _is_verbless_header(line: str) -> bool:
    """Mail.ru, Yandex, Zoho and several mobile clients: "<date>, <time>, Name <address>:"
    with no verb at all; only trusted when a quote follows it."""
    stripped = line.strip()
    if not stripped.endswith((":", "：")) or len(stripped) > MAX_HEADER_CHARS:
        return False
    # The header ends with the address, and has the time of the message.
    if not stripped[:-1].rstrip().endswith(">") or "@" not in stripped:
        return False
    return _ADDRESS_AT_END_RE.search(stripped) is not None and (
        _TIME_RE.search(stripped) is not None
    )


_ADDRESS_AT_END_RE = re.compile(r"<[^<>\s@]{1,64}@[^<>\s@]{1,255}>\s?[:：]$")
_TIME_RE = re.compile(r"\b\d{1,2}:\d\d\b")


def _is_bare_attribution(line: str) -> bool:
    """A short "Jens Petersen wrote:" with neither date nor address; only trusted when a
    quote follows it."""
    stripped = line.strip()
    return (
        stripped.endswith((":", "："))
        and len(stripped.split()) <= MAX_ATTRIBUTION_WORDS
        and _has_quote_verb(stripped)
    )


def _quote_within_gap(lines: list[str], index: int) -> bool:
    for below in range(index, min(len(lines), index + MAX_GAP_BEFORE_QUOTE + 1)):
        if not _is_blank(lines[below]):
            return _is_quote(lines[below])
    return False


def _is_date_led_header(line: str) -> bool:
    """Gmail's localised "2016-03-03 17:21 GMT+01:00 Some One" header (no verb at all)."""
    if not _DATE_LED_RE.match(line):
        return False
    has_address = "@" in line and (line.endswith((":", "：", ">")) or "<" in line)
    return has_address or _GMT_OFFSET_RE.search(line) is not None


# --- forward / original-message markers -------------------------------------------------

_MARKER_PHRASES = frozenset(
    {
        # "-----Original Message-----" and its translations
        "original message",
        "original-nachricht",
        "ursprüngliche nachricht",
        "ursprungliche nachricht",
        "message d'origine",
        "message original",
        "mensaje original",
        "messaggio originale",
        "oorspronkelijk bericht",
        "origineel bericht",
        "ursprungligt meddelande",
        "originalmeddelande",
        "oprindelig meddelelse",
        "opprinnelig melding",
        "alkuperäinen viesti",
        "wiadomość oryginalna",
        "oryginalna wiadomość",
        "mensagem original",
        "исходное сообщение",
        "оригинальное сообщение",
        "вихідне повідомлення",
        "оригінальне повідомлення",
        "původní zpráva",
        "eredeti üzenet",
        "原始邮件",
        "原始郵件",
        "元のメッセージ",
        "původní správa",
        "pôvodná správa",
        "izvorna poruka",
        "originalna poruka",
        "mesaj original",
        "mesajul original",
        "orijinal mesaj",
        "özgün ileti",
        "αρχικό μήνυμα",
        "оригинално съобщение",
        "missatge original",
        "pesan asli",
        "thư gốc",
        "tin nhắn gốc",
        "원본 메시지",
        # "-----Reply Message-----" (several mobile and webmail clients) and its translations
        "reply message",
        "antwortnachricht",
        "message de réponse",
        "mensaje de respuesta",
        "messaggio di risposta",
        "mensagem de resposta",
        "antwoordbericht",
        "ответное сообщение",
        "回复的原邮件",
        "回覆的原郵件",
        # forwards
        "forwarded message",
        "begin forwarded message",
        "weitergeleitete nachricht",
        "anfang der weitergeleiteten nachricht",
        "anfang der weitergeleiteten e-mail",
        "weitergeleitete e-mail",
        "thư chuyển tiếp",
        "전달된 메시지",
        "iletilen ileti",
        "välitetty viesti",
        "message transféré",
        "début du message réexpédié",
        "début du message transféré",
        "mensaje reenviado",
        "messaggio inoltrato",
        "inizio messaggio inoltrato",
        "doorgestuurd bericht",
        "begin doorgestuurd bericht",
        "vidarebefordrat meddelande",
        "videresendt meddelelse",
        "videresendt melding",
        "przekazana wiadomość",
        "wiadomość przekazana",
        "mensagem encaminhada",
        "início da mensagem encaminhada",
        "пересылаемое сообщение",
        "пересланное сообщение",
        "转发的邮件",
        "転送されたメッセージ",
    }
)


def _is_forward_marker(line: str) -> bool:
    """Whether the line is "-----Original Message-----", "Begin forwarded message:" or the
    like, in any of the languages mail clients use."""
    stripped = line.strip()
    if not stripped or len(stripped) > 100:
        return False
    core = stripped.strip(" \t-_=*~<>[]():").casefold()
    return " ".join(core.split()) in _MARKER_PHRASES


# --- Outlook header blocks ("From: / Sent: / To: / Subject:") --------------------------

_FROM_FIELD_RE = re.compile(
    r"(?:From|Von|De|Da|Van|Från|Fra|Od|От|Від|Lähettäjä|Feladó|Kimden|Odesílatel"
    r"|Expéditeur|Remitente|差出人|发件人|寄件者)\s?[:：]"
)
_OTHER_FIELD_RE = re.compile(
    r"(?:Sent|Date|To|Subject|Cc|Bcc|Reply-To|Gesendet|Datum|An|Betreff|Envoyé|Objet|À"
    r"|Inviato|Data|A|Oggetto|Risposta|Verzonden|Aan|Onderwerp|Skickat|Till|Ämne|Sendt|Til"
    r"|Emne|Wysłano|Do|Temat|DW|Enviado|Enviada|Fecha|Para|Asunto|Assunto|Отправлено|Дата"
    r"|Кому|Тема|Надіслано|Lähetetty|Vastaanottaja|Aihe|Elküldve|Címzett|Tárgy|Gönderildi"
    r"|Kime|Konu|Odesláno|Komu|Předmět|送信日時|宛先|件名|发送时间|收件人|主题|日期)\s?[:：]"
)


def _field_head(line: str) -> str:
    # Rich-text clients and html_to_text bold the field names: "*From:*", "**From:**".
    return line.strip()[:60].replace("*", "").replace("_", "")


# Some clients (and Outlook in some locales) start the block with the date instead.
_DATE_FIELD_RE = re.compile(
    r"(?:Date|Sent|Gesendet|Datum|Envoyé|Inviato|Data|Verzonden|Skickat|Sendt|Wysłano|Enviado"
    r"|Enviada|Fecha|Отправлено|Дата|Надіслано|Lähetetty|Elküldve|Gönderildi|Odesláno|送信日時"
    r"|发送时间|日期)\s?[:：]"
)


def _outlook_block_at(lines: list[str], start: int) -> bool:
    """A "From:" line followed within three lines by another header field, or a "Date:"
    line followed within three lines by a "From:" line."""
    head = _field_head(lines[start])
    if _FROM_FIELD_RE.match(head):
        follower = _OTHER_FIELD_RE
    elif head[:1] in _DATE_FIELD_INITIALS and _DATE_FIELD_RE.match(head):
        follower = _FROM_FIELD_RE
    else:
        return False
    for index in range(start + 1, min(len(lines), start + 4)):
        if _is_blank(lines[index]):
            return False
        if follower.match(_field_head(lines[index])):
            return True
    return False


_DATE_FIELD_INITIALS = frozenset("DSGEIVWFOLОДН送发日")


# --- signatures, mobile footers, closings ------------------------------------------------

_URL_IN_ANGLES_RE = re.compile(r"<[^<>\s]{1,300}>")
_MARKDOWN_LINK_RE = re.compile(r"\[([^\[\]\n]{0,100})\]\([^()\s]{0,300}\)")
_BARE_URL_RE = re.compile(r"https?://\S{1,300}")
# "Sent from my <device>": the device is a few words, optionally followed by an apology.
_SENT_FROM_MY_RE = re.compile(
    r"sent (?:from|with|via|using|on) my ([^,.;!]{1,60})(.{0,80})$", re.IGNORECASE
)
_APOLOGY_RE = re.compile(r"excuse|typo|brevity|pardon|autocorrect|short", re.IGNORECASE)
# "Sent from Outlook Mobile", "Sent with Airmail": no "my", so the app must be recognisable.
_SENT_FROM_APP_RE = re.compile(
    r"sent (?:from|with|via|using|by|on) (?:a |an |the )?(.{1,60})$", re.IGNORECASE
)
# "mail" without word boundaries: Mailbox, Airmail, Gmail, Windows Mail.
_MOBILE_WORD_RE = re.compile(
    r"mail|\b(?:mobile|phone|iphone|ipad|ipod|android|blackberry|outlook|galaxy|samsung"
    r"|tablet|device|cell|windows|yahoo|spark|superhuman|huawei|nokia|xperia|smartphone"
    r"|wireless|handheld|pixel|xiaomi|motorola|ios|aol|app)\b",
    re.IGNORECASE,
)
_OTHER_MOBILE_FOOTER_RE = re.compile(
    r"get outlook for (?:ios|android)"
    r"|(?:[\w-]{1,20} )?from (?:my )?(?:mobile|phone|iphone|ipad|android|blackberry|galaxy)\b"
    r"|envoy[ée] (?:depuis|de|avec) (?:mon|ma|l'|un)"
    r"|von meine[mr] .{1,60} gesendet|gesendet (?:von|mit) (?:meinem|meiner|mein)"
    r"|diese nachricht wurde von meinem .{1,60} gesendet"
    r"|sendt fra (?:min|mit)|skickat från (?:min|mitt)|lähetetty (?:laitteesta|puhelimesta)"
    r"|enviado (?:desde|de|do|com|a partir do) (?:mi|meu|o meu|o)"
    r"|inviato (?:da|dal|con) (?:mio |il mio )?"
    r"|verzonden (?:vanaf|met|van) |wysłane z |odesláno z |отправлено с |надіслано з "
    r"|從我的 ?.{1,30}傳送|从我的 ?.{1,30}发送|发自我的|.{1,30}から送信"
    # Dutch, Finnish, Russian (Mail.ru, Yandex), Turkish, Hungarian, Vietnamese, Slovak,
    # Croatian, Romanian, Indonesian, Greek, Korean, Catalan, French (Outlook)
    r"|verstuurd (?:vanaf|met|van) |lähetetty \S|отправлено из |.{1,40} gönderildi$"
    r"|elküldve (?:az?|a) |(?:được )?gửi từ |odoslané z |poslano (?:s|sa|iz) "
    r"|trimis de pe |dikirim dari |εστάλη από |.{1,30}에서 보냄|enviat des de"
    r"|envoy[ée] à partir de |sent on the go",
    re.IGNORECASE,
)


# "BlackBerry 10 smartphone on the Rogers network" is about the longest device name.
MAX_DEVICE_WORDS = 8
# "Sent from the all new AOL app for iOS": an app footer without "my" is at most this long.
MAX_APP_FOOTER_WORDS = 12
# ", Samsung Galaxy smartphone" after the carrier; a longer clause is a sentence.
MAX_CARRIER_DEVICE_WORDS = 4


def _is_mobile_footer(line: str) -> bool:
    """Whether the line is "Sent from my iPhone" or one of the many variants that mail
    apps append to every message."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_FOOTER_CHARS:
        return False
    text = _MARKDOWN_LINK_RE.sub(r"\1", stripped)
    text = _URL_IN_ANGLES_RE.sub("", text)
    text = _BARE_URL_RE.sub("", text)
    text = text.strip(" \t()<>[]*_").strip()
    if not text:
        return False
    sent_from_my = _SENT_FROM_MY_RE.match(text)
    if sent_from_my:
        # "Sent from my desk, is much easier then my mobile phone." is a sentence, not a
        # footer; "Sent from my cell, please excuse any typos." is a footer.
        device, rest = sent_from_my.group(1), sent_from_my.group(2).strip(" .!")
        if len(device.split()) > MAX_DEVICE_WORDS:
            return False
        # "Sent from my Verizon, Samsung Galaxy smartphone": the carrier, then the device.
        carrier = rest.startswith(",") and len(rest.split()) <= MAX_CARRIER_DEVICE_WORDS
        return (
            not rest
            or _APOLOGY_RE.search(rest) is not None
            or (carrier and _MOBILE_WORD_RE.search(rest) is not None)
        )
    if _OTHER_MOBILE_FOOTER_RE.match(text):
        return True
    sent_from_app = _SENT_FROM_APP_RE.match(text)
    if sent_from_app is None or ";" in text or len(text.split()) > MAX_APP_FOOTER_WORDS:
        return False
    app, _, carrier = sent_from_app.group(1).partition(",")
    # "Sent via the Samsung Galaxy S7, an AT&T 4G LTE smartphone": a device after the comma.
    if carrier and not (
        len(carrier.split()) <= MAX_CARRIER_DEVICE_WORDS + 2 and _MOBILE_WORD_RE.search(carrier)
    ):
        return False
    return _MOBILE_WORD_RE.search(app) is not None


# Closings that end a message on their own line; the name below them is signature.
_FORMAL_CLOSINGS = frozenset(
    {
        "regards",
        "best regards",
        "kind regards",
        "warm regards",
        "warmest regards",
        "many regards",
        "with regards",
        "with best regards",
        "with kind regards",
        "thanks & regards",
        "thanks and regards",
        "thanks & best regards",
        "best wishes",
        "all the best",
        "sincerely",
        "yours sincerely",
        "sincerely yours",
        "yours truly",
        "yours faithfully",
        "respectfully",
        "br",
        "rgds",
        "mit freundlichen grüßen",
        "mit freundlichen grüssen",
        "freundliche grüße",
        "freundliche grüsse",
        "viele grüße",
        "viele grüsse",
        "beste grüße",
        "liebe grüße",
        "herzliche grüße",
        "schöne grüße",
        "gruß",
        "grüße",
        "mfg",
        "lg",
        "vg",
        "med venlig hilsen",
        "venlig hilsen",
        "med vennlig hilsen",
        "vennlig hilsen",
        "hilsen",
        "mvh",
        "kh",
        "vh",
        "med vänliga hälsningar",
        "med vänlig hälsning",
        "vänliga hälsningar",
        "vänlig hälsning",
        "hälsningar",
        "met vriendelijke groet",
        "met vriendelijke groeten",
        "vriendelijke groet",
        "vriendelijke groeten",
        "groeten",
        "groetjes",
        "mvg",
        "cordialement",
        "bien cordialement",
        "bien à vous",
        "amicalement",
        "salutations",
        "sincères salutations",
        "saludos",
        "un saludo",
        "saludos cordiales",
        "atentamente",
        "cordialmente",
        "cordiali saluti",
        "distinti saluti",
        "saluti",
        "pozdrawiam",
        "z poważaniem",
        "z powazaniem",
        "pozdrowienia",
        "atenciosamente",
        "cumprimentos",
        "abraços",
        "с уважением",
        "з повагою",
    }
)
# Words that close a message but are also ordinary content ("Thanks!" is an answer); they
# only count as a closing when written like one, with a comma: "Thanks,".
_CASUAL_CLOSINGS = frozenset(
    {
        "thanks",
        "thank you",
        "thanks again",
        "many thanks",
        "thanks a lot",
        "cheers",
        "best",
        "greetings",
        "take care",
        "merci",
        "danke",
        "vielen dank",
        "gracias",
        "grazie",
        "obrigado",
        "obrigada",
        "tack",
        "tak",
        "takk",
        "dziękuję",
        "dzięki",
        "спасибо",
    }
)
# "-Abhishek Kona", "/John": a dash or slash glued to a capitalised name, alone on a line.
_SIGN_OFF_RE = re.compile(r"(?:-|/{1,2})([^\W\d_])[\w.'-]{0,30}(?: [\w.'-]{1,30}){0,3}")


def _is_closing(line: str, any_punctuation: bool = False) -> bool:
    """A closing line; a casual one ("Thanks") only with a comma, unless ``any_punctuation``."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_CLOSING_CHARS:
        return False
    core = " ".join(stripped.rstrip(" ,.!;:").casefold().split())
    if core in _FORMAL_CLOSINGS or any(
        part.strip() in _FORMAL_CLOSINGS for part in core.split("/")
    ):
        return True
    return core in _CASUAL_CLOSINGS and (any_punctuation or stripped.endswith(","))


def _looks_like_name(line: str) -> bool:
    """One to three capitalised words and nothing else: "Bob", "Anna Maria Smith"."""
    words = line.split()
    return 0 < len(words) <= 3 and all(
        word[0].isupper() and word.replace(".", "").replace("-", "").isalpha() for word in words
    )


def _is_name_line(line: str) -> bool:
    """A short line that can be a name, a title or a phone number below a closing."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_CLOSING_CHARS or _is_quote(stripped):
        return False
    words = stripped.split()
    if len(words) > 6 or stripped.endswith(("?", "!", ":")):
        return False
    return not (stripped.endswith(".") and len(words) >= 4)


def _is_sign_off(line: str) -> bool:
    match = _SIGN_OFF_RE.fullmatch(line.strip())
    return match is not None and match.group(1).isupper()


# --------------------------------------------------------------------------------------
# Repairs before the rules: a reply glued to its quote header, quotes that lost their ">"
# --------------------------------------------------------------------------------------

# A quote header that starts after the end of a sentence on the same line: "Agreed. On Fri,
# ... wrote:" (clients that put the header right after the text, HTML turned into text).
_GLUED_LEAD_RE = re.compile(r"[.!?)\]][ \t]*(On|Am|Le|El|Em|Op|Il|Den|Dnia|W dniu|Dne|Dňa|Vào)\s")


class _GluedHeader(Exception):
    """A quote header found at the end of a line of the correspondent's text."""

    def __init__(self, index: int, cut: int) -> None:
        super().__init__(index, cut)
        self.index, self.cut = index, cut

    def split(self, lines: list[str]) -> list[str]:
        line = lines[self.index]
        pieces = [line[: self.cut].rstrip(), line[self.cut :].lstrip()]
        return lines[: self.index] + pieces + lines[self.index + 1 :]


# A message with more glued headers than this is split at the first ones only.
MAX_GLUED_HEADERS = 5


def _check_glued(lines: list[str], start: int, last: int) -> None:
    """Raise _GluedHeader if the header found at ``start`` (ending on line ``last``) begins
    after the correspondent's text, on its own first line or on the line above it."""
    for first in (start, start - 1):
        if first < 0 or len(lines[first]) > MAX_HEADER_CHARS:
            continue
        cut = _glued_header_cut(lines, first, last)
        if cut is not None:
            raise _GluedHeader(first, cut)


def _glued_header_cut(lines: list[str], first: int, last: int) -> int | None:
    line = lines[first]
    for match in _GLUED_LEAD_RE.finditer(line):
        cut = match.start(1)
        header = [line[cut:], *lines[first + 1 : last + 1]]
        if _quote_header_end(header, 0) == len(header) or (
            len(header) == 1 and _is_verbless_header(header[0])
        ):
            return cut
    return None


# A link as mail clients render it in text, alone on its line: "View ticket (http://...)".
_LABELLED_LINK_RE = re.compile(r"[^()<>\[\]]{1,80}[(<\[]https?://[^\s()<>\[\]]{1,300}[)>\]]")
# Clients wrap text at 72 to 80 characters: a quoted line that long, which the next word
# would have made longer than WRAP_WIDTH, was wrapped (the test format=flowed readers use).
WRAP_WIDTH = 72
MAX_WRAPPED_CHARS = 80


# An unquoted, non-blank line between two quoted lines (one scan of the whole text finds the
# few there are, instead of a test of every line).
# (It starts with a literal newline, which the engine finds by a fast scan, hence the "\n"
# put in front of the text.)
_BETWEEN_QUOTES_RE = re.compile(r"\n[ \t]*>[^\n]*\n(?![ \t]*>)([^\n]*)(?=\n[ \t]*>)")


def _restore_lost_quote_markers(text: str, lines: list[str]) -> list[str]:
    """The lines with a ">" put back on single unquoted lines inside a quoted block: the rest of
    a quoted line that a client wrapped without repeating the ">", or a notification's link
    ("View ticket (http://...)") that it left unquoted."""
    if len(lines) != text.count("\n") + 1:  # a glued header was split off: line numbers moved
        text = "\n".join(lines)
    text = "\n" + text
    seen = lines
    line_index, counted_to = -1, 0
    for match in _BETWEEN_QUOTES_RE.finditer(text):
        line_index += text.count("\n", counted_to, match.start(1))
        counted_to = match.start(1)
        if line_index >= MAX_SCAN_LINES:
            break
        line = lines[line_index]
        if not line.strip() or not _is_lost_quote_line(
            lines[line_index - 1], line, lines[line_index + 1]
        ):
            continue
        if seen is lines:
            seen = list(lines)
        seen[line_index] = "> " + lines[line_index]
    return seen


def _is_lost_quote_line(above: str, line: str, below: str) -> bool:
    stripped = line.strip()
    if len(stripped) > MAX_HEADER_CHARS:
        return False
    if _LABELLED_LINK_RE.fullmatch(stripped):
        return True
    # The rest of a wrapped sentence: the quoted line above stops mid-sentence where the next
    # word did not fit, this one goes on (not with a capital), and the quoted line below goes
    # on in lower case (an answer sits between two quoted sentences instead).
    above = above.rstrip()
    first_word = stripped.split(maxsplit=1)[0]
    return (
        not stripped[:1].isupper()
        and below.lstrip(" \t>")[:1].islower()
        and above[-1:] not in ".!?:"
        and len(above) <= MAX_WRAPPED_CHARS
        and len(above) + 1 + len(first_word) > WRAP_WIDTH
    )


# --------------------------------------------------------------------------------------
# Finding the quoted history
# --------------------------------------------------------------------------------------


def _history_at(lines: list[str], index: int, find_glued: bool = False) -> _History | None:
    """The history introduced at ``index`` (a quote header, marker or Outlook block).

    With ``find_glued``, a quote header glued to the correspondent's text raises _GluedHeader.
    """
    line = lines[index]
    if len(line) > MAX_HEADER_CHARS or _is_blank(line) or _is_quote(line):
        return None
    header_end = _quote_header_end(lines, index)
    # (The test of the last character first: most lines end in a letter.)
    last = line[-1]
    if header_end is None and (
        (last in ":：" or (last in " \t" and line.rstrip()[-1:] in (":", "：")))
        and (_is_bare_attribution(line) or _is_verbless_header(line))
        and _quote_within_gap(lines, index + 1)
    ):
        header_end = index + 1
    if header_end is not None:
        if find_glued:
            _check_glued(lines, index, header_end - 1)
        return _History(index, header_end, "header")
    if _is_forward_marker(line):
        return _History(index, index + 1, "marker")
    if _outlook_block_at(lines, index):
        return _History(index, index + 1, "fields")
    # A device line is a paragraph of its own (the lowercased test spares most lines the
    # dearer one).
    if (
        index > 0
        and len(line) <= MAX_FOOTER_CHARS
        and _is_blank(lines[index - 1])
        and _ends_paragraph(lines, index)
        and _FOOTER_WORD_RE.search(line.lower())
        and _is_mobile_footer(line)
    ):
        return _History(index, index + 1, "device")
    return None


def _ends_paragraph(lines: list[str], index: int) -> bool:
    """Whether the line is the last of its paragraph: a blank line, a separator, a quote or
    an Outlook block (or nothing) comes next."""
    if index + 1 >= len(lines):
        return True
    below = lines[index + 1].lstrip()
    return (
        not below.strip(_INVISIBLE)
        or below[0] in "_-=*>"
        or _FROM_FIELD_RE.match(below) is not None
    )


# Words one of which every mobile footer contains, lowercased (a cheap test before
# _is_mobile_footer; searched case-sensitively in the lowercased line, which is many times
# faster than a case-insensitive search).
_FOOTER_WORD_RE = re.compile(
    r"sent|from|outlook|envoy|gesendet|enviad|inviato|verzonden|verstuurd|wysłane|odesl|odosl"
    r"|отправлено|надіслано|lähetetty|skickat|sendt|gönderildi|elküldve|gửi|我的|发自|送信"
    r"|보냄|trimis|dikirim|poslano|εστάλη"
)


def _find_history(lines: list[str], start: int, find_glued: bool) -> _History | None:
    """The first history marker at or after ``start`` (not inside a "> " quote)."""
    for index in range(start, min(len(lines), MAX_SCAN_LINES)):
        history = _history_at(lines, index, find_glued)
        if history is not None:
            return _with_separator_above(lines, history, start)
    return None


def _with_separator_above(lines: list[str], history: _History, floor: int) -> _History:
    # Outlook draws a line ("_____", " -----", "* * *" once converted from HTML) above the
    # header block; it belongs to the history, not to the reply.
    start = history.start
    index = history.start - 1
    while index >= floor and (_is_blank(lines[index]) or _delimiter_char(lines[index])):
        if _delimiter_char(lines[index]):
            start = index
        index -= 1
    return _History(start, history.end, history.kind)


def _next_content(blank: list[bool], index: int) -> int:
    while index < len(blank) and blank[index]:
        index += 1
    return index


def _quote_follows(lines: list[str], blank: list[bool], index: int) -> bool:
    """Whether a "> " quoted block starts within a few lines below ``index``."""
    content = _next_content(blank, index)
    return (
        content < len(lines)
        and content - index <= MAX_GAP_BEFORE_QUOTE
        and _is_quote(lines[content])
    )


def _quote_block_end(lines: list[str], blank: list[bool], index: int) -> int:
    """The first line after the quoted block starting at ``index`` (blank lines inside it
    belong to the block)."""
    while index < len(lines) and (blank[index] or _is_quoted_at(lines, index)):
        index += 1
    return index


def _answers_inline(lines: list[str], blank: list[bool], index: int) -> bool:
    """Whether, from ``index`` on, the text goes on to quote and answer again.

    Below a leading "On ... wrote:" block, a single answer is a bottom-post (the quote is just
    history); text, quote, text is an inline reply whose quotes the reader needs.
    """
    quoted_after_text = False
    for position in range(index, min(len(lines), MAX_SCAN_LINES)):
        line = lines[position]
        if _is_signature_dash(line) or _delimiter_char(line) == "_":
            return False
        if _is_quoted_at(lines, position):
            quoted_after_text = True
        elif quoted_after_text and not blank[position]:
            return True
    return False


def _hand_over_leading_history(
    lines: list[str], blank: list[bool], roles: list[_Role], find_glued: bool
) -> int:
    """Hand history at the very top to ``quoted``; return where the reply starts.

    Forwarded mail starts with "---------- Forwarded message ----------" and its header
    block; a bottom-posted reply starts with "On ... wrote:" and the quote it answers.
    """
    index = _next_content(blank, 0)
    while index < min(len(lines), MAX_SCAN_LINES):
        history = _history_at(lines, index, find_glued)
        if history is None and _delimiter_char(lines[index]):
            below = _next_content(blank, index + 1)
            if below < len(lines) and _history_at(lines, below) is not None:
                _assign(roles, index, below, _Role.QUOTED)
                index = below
                continue
        if history is None or history.kind == "device":
            break
        end = history.end
        if history.kind == "fields":
            end = _next_blank(blank, index)
        elif history.kind == "header" and _quote_follows(lines, blank, end):
            block_end = _quote_block_end(lines, blank, _next_content(blank, end))
            if not _answers_inline(lines, blank, block_end):
                end = block_end
        _assign(roles, index, end, _Role.QUOTED)
        index = _next_content(blank, end)
    return index


def _next_blank(blank: list[bool], index: int) -> int:
    while index < len(blank) and not blank[index]:
        index += 1
    return index


def _hand_over_quoted_history(
    lines: list[str], blank: list[bool], roles: list[_Role], start: int, find_glued: bool
) -> None:
    """Hand everything from the first history marker on to ``quoted``.

    An "On ... wrote:" followed by "> " lines may be answered inline, so only the header goes
    and the search goes on below it; _hand_over_tail later drops the quotes nobody answered.
    A forward marker, an Outlook block or a header followed by unquoted text (top-posting
    clients do not quote) ends the reply; so does a device line ("Sent from my iPhone") with
    the correspondent's words above it and more text below it.
    """
    position = start
    while True:
        history = _find_history(lines, position, find_glued)
        if history is None:
            return
        if history.kind == "device":
            if not _device_line_ends_reply(lines, blank, roles, start, history):
                position = history.end
                continue
            _assign(roles, history.start, history.end, _Role.SIGNATURE)
            _assign(roles, history.end, len(lines), _Role.QUOTED)
            return
        if history.kind == "header" and _quote_follows(lines, blank, history.end):
            _assign(roles, history.start, history.end, _Role.QUOTED)
            position = history.end
            continue
        _assign(roles, history.start, len(lines), _Role.QUOTED)
        return


def _device_line_ends_reply(
    lines: list[str], blank: list[bool], roles: list[_Role], start: int, history: _History
) -> bool:
    words_above = any(
        not blank[index] and roles[index] is _Role.VISIBLE for index in range(start, history.start)
    )
    below = _next_content(blank, history.end)
    # A device line at the very end, or above a "-- " signature, is a footer: the tail hands
    # it over.
    return words_above and below < len(lines) and not _is_signature_dash(lines[below])


# --------------------------------------------------------------------------------------
# Trimming the tail: unanswered quotes, signatures, footers, closings
# --------------------------------------------------------------------------------------

# A tail step looks at the still-visible lines (their indices, in order, the last one not
# blank) and returns how many of the last ones it takes, and for which part.
_Taken = tuple[int, _Role] | None


def _trailing_quote(lines: list[str], blank: list[bool], visible: list[int]) -> _Taken:
    """Quoted lines after the last own words are history nobody answered."""
    index = len(visible)
    while index > 0:
        line_index = visible[index - 1]
        if not (blank[line_index] or _is_trailing_quote_at(lines, line_index)):
            break
        index -= 1
    if index == len(visible):
        return None
    if index == 0 and not _quotes_only_history(lines, blank, visible):
        # Nothing but a quote: keep it, it is all the correspondent sent.
        return None
    return len(visible) - index, _Role.QUOTED


def _quotes_only_history(lines: list[str], blank: list[bool], visible: list[int]) -> bool:
    # A message that is nothing but a quoted "On ... wrote:" block carries no new words.
    first = next((index for index in visible if not blank[index]), None)
    if first is None:
        return False
    dequoted = lines[first].lstrip(" \t>")
    return _quote_header_end([dequoted], 0) is not None


def _trailing_signature(lines: list[str], blank: list[bool], visible: list[int]) -> _Taken:
    """A "-- " signature, or a list footer under a "_____" line, closing the message; or a
    short signature under a "---" line (clients and people who drop the "-- " convention)."""
    earliest = None
    lowest = max(-1, len(visible) - 1 - MAX_SIGNATURE_LINES)
    for position in range(len(visible) - 1, lowest, -1):
        line = lines[visible[position]]
        if _is_quote(line):
            break
        delimiter = _delimiter_char(line)
        dash_line = delimiter == "-" and _is_short_signature(lines, visible[position + 1 :])
        if _is_signature_dash(line) or delimiter == "_" or dash_line:
            earliest = position
    if earliest is None:
        return None
    return len(visible) - earliest, _Role.SIGNATURE


# Below a "---" line, a signature is a few short lines; more is content under a separator.
MAX_DASH_SIGNATURE_LINES = 6
MAX_DASH_SIGNATURE_CHARS = 80


def _is_short_signature(lines: list[str], below: list[int]) -> bool:
    # A few short lines, starting with a name: "Looks good" under a "---" is still content.
    content = [lines[index] for index in below if lines[index].strip()]
    return (
        0 < len(content) <= MAX_DASH_SIGNATURE_LINES
        and _looks_like_name(content[0])
        and all(len(line) <= MAX_DASH_SIGNATURE_CHARS and not _is_quote(line) for line in content)
    )


def _trailing_footer_lines(lines: list[str], blank: list[bool], visible: list[int]) -> _Taken:
    """Mobile footers ("Sent from my iPhone") and bare separator lines at the very end."""
    index = len(visible)
    while index > 0:
        line_index = visible[index - 1]
        line = lines[line_index]
        if not (blank[line_index] or _delimiter_char(line) or _is_mobile_footer(line)):
            break
        index -= 1
    if index == len(visible):
        return None
    return len(visible) - index, _Role.SIGNATURE


def _trailing_closing(lines: list[str], blank: list[bool], visible: list[int]) -> _Taken:
    """A closing with a name below it ("Regards,\nName"), or a lone "-Name", under the text.

    A closing with no name below it ("Cheers") stays: it is the tone of the message rather
    than a signature.
    """
    names = 0
    below = ""
    for position in range(len(visible) - 1, -1, -1):
        if blank[visible[position]]:
            continue
        line = lines[visible[position]]
        if names and _is_closing(line):
            return _keep_own_words(blank, visible, position)
        # "Thanks!" + "Bob": an exclaimed closing only counts above a plain name.
        if names == 1 and _looks_like_name(below) and _is_closing(line, any_punctuation=True):
            return _keep_own_words(blank, visible, position)
        if names >= MAX_NAME_LINES or not _is_name_line(line):
            break
        names += 1
        below = line
    last = len(visible) - 1
    if _is_sign_off(lines[visible[last]]) or (
        last > 0 and blank[visible[last - 1]] and _is_spaced_sign_off(lines[visible[last]])
    ):
        return _keep_own_words(blank, visible, last)
    return None


# "- Bob", "– Bob Smith": a dash, a space and a name, in a paragraph of its own (a list item
# has other items above it).
_SPACED_SIGN_OFF_RE = re.compile(r"[-–—] ([^\W\d_][\w.'-]{0,30}(?: [^\W\d_][\w.'-]{0,30}){0,2})")


def _is_spaced_sign_off(line: str) -> bool:
    match = _SPACED_SIGN_OFF_RE.fullmatch(line.strip())
    return match is not None and all(word[0].isupper() for word in match.group(1).split())


def _sign_off_under_quote(lines: list[str], blank: list[bool], visible: list[int]) -> _Taken:
    """A closing ("Thanks!", "Cheers") alone under a trailing quote: the quote is history,
    the closing is the sign-off (the next pass hands the quote over)."""
    last = len(visible) - 1
    if not _is_closing(lines[visible[last]], any_punctuation=True):
        return None
    above = last - 1
    while above >= 0 and blank[visible[above]]:
        above -= 1
    if above < 0 or not _is_quoted_at(lines, visible[above]):
        return None
    # Own words above the quote: otherwise the closing is all the correspondent wrote.
    while above >= 0 and (blank[visible[above]] or _is_quoted_at(lines, visible[above])):
        above -= 1
    if above < 0:
        return None
    return len(visible) - last, _Role.SIGNATURE


def _keep_own_words(blank: list[bool], visible: list[int], position: int) -> _Taken:
    # A message that is only "Thanks,\nBob" is the reply itself, not a signature.
    if not all(blank[index] for index in visible[:position]):
        return len(visible) - position, _Role.SIGNATURE
    return None


# A phone number or a mail address alone on a short line: what a signature block has and a
# reply rarely ends with (a web site alone is too common in content to count).
# (A phone number is labelled, international or dashed: "1 234 567" alone may be content.)
_CONTACT_RE = re.compile(
    r"(?:tel|phone|mob|mobile|cell|fax|t|m|p)\.?:?\s?\+?\(?\d[\d ().-]{6,20}\d"
    r"|\+\(?\d[\d ().-]{6,20}\d|\(?\d{3}\)?[ .-]\d{3}[.-]\d{4}"
    r"|(?:e-?mail:?\s?)?[^\s@]{1,64}@[^\s@]{1,255}\.\w{2,}",
    re.IGNORECASE,
)
# A signature block without a closing or "-- ": at most this many lines.
MAX_CONTACT_BLOCK_LINES = 6


def _trailing_contact_block(lines: list[str], blank: list[bool], visible: list[int]) -> _Taken:
    """A last paragraph of a name, titles and contact lines ("Bob Smith / Senior Engineer,
    Acme / +1 555 123 4567"): a signature even without a closing or "-- " above it."""
    start = len(visible)
    while start > 0 and not blank[visible[start - 1]]:
        start -= 1
    block = [lines[index].strip() for index in visible[start:]]
    if not 2 <= len(block) <= MAX_CONTACT_BLOCK_LINES or start == 0:
        return None
    # "Call me on:" above it: the number is the answer.
    above = next((lines[i] for i in reversed(visible[:start]) if not blank[i]), "")
    if above.rstrip().endswith(":"):
        return None
    if not _looks_like_name(block[0]) or any(len(line) > MAX_CLOSING_CHARS for line in block):
        return None
    if not any(_CONTACT_RE.fullmatch(line) for line in block[1:]):
        return None
    return _keep_own_words(blank, visible, start)


_TAIL_STEPS = (
    _trailing_quote,
    _trailing_signature,
    _trailing_footer_lines,
    _trailing_closing,
    _sign_off_under_quote,
    _trailing_contact_block,
)


def _hand_over_tail(lines: list[str], blank: list[bool], roles: list[_Role]) -> None:
    """Hand unanswered quotes, signatures, footers and closings at the end to their parts."""
    visible = [index for index, role in enumerate(roles) if role is _Role.VISIBLE]
    for _ in range(MAX_TAIL_PASSES):
        while visible and blank[visible[-1]]:
            visible.pop()
        if not visible:
            return
        for step in _TAIL_STEPS:
            taken = step(lines, blank, visible)
            if taken is not None:
                count, role = taken
                for index in visible[-count:]:
                    roles[index] = role
                del visible[-count:]
                break
        else:
            return


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _assign(roles: list[_Role], start: int, end: int, role: _Role) -> None:
    for index in range(start, end):
        roles[index] = role


def _collect_parts(lines: list[str], blank: list[bool], roles: list[_Role]) -> dict[_Role, str]:
    """The lines of each part, in order, without blank lines at either end."""
    parts = {}
    for role in _Role:
        # Compared by identity rather than grouped in a dict keyed by role: an Enum member's
        # hash is a Python-level call, paid for every line.
        indices = [index for index, line_role in enumerate(roles) if line_role is role]
        start = 0
        while start < len(indices) and blank[indices[start]]:
            start += 1
        end = len(indices)
        while end > start and blank[indices[end - 1]]:
            end -= 1
        parts[role] = "\n".join(lines[index] for index in indices[start:end])
    return parts


# html2text escapes Markdown syntax in text ("\-- ", "1\. ", "\+ "); the result is meant as
# plain text, and split_reply must see "-- " to find the signature.
_ESCAPED_LINE_START_RE = re.compile(r"^([ \t]{0,20})\\([-+])", re.MULTILINE)
_ESCAPED_ORDINAL_RE = re.compile(r"^([ \t]{0,20}\d{1,9})\\\.", re.MULTILINE)
_ESCAPED_BACKSLASH_RE = re.compile(r"\\\\(?=[\\`*_{}\[\]()#+\-.!])")
_MAILTO_LINK_RE = re.compile(r"\[([^\[\]\n]{0,300})\]\(mailto:([^()\s]{1,300})\)")
_BLANK_RUN_RE = re.compile(r"\n{3,}")


def _undo_markdown_escapes(text: str) -> str:
    text = _ESCAPED_LINE_START_RE.sub(r"\1\2", text)
    text = _ESCAPED_ORDINAL_RE.sub(r"\1.", text)
    return _ESCAPED_BACKSLASH_RE.sub(r"\\", text)


def _readable_mailto(match: re.Match[str]) -> str:
    label, address = match.group(1), match.group(2)
    return address if label.strip() in ("", address) else f"{label} <{address}>"
