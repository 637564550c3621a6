"""A discussion made ready to publish: Markdown, one self-contained HTML file, JSON, or mbox.

Pure: it is handed the threads and messages the store read. Everything from mail is text,
never markup: the HTML escapes every character that could open a tag, an attribute or an
entity (and links nothing), and the Markdown escapes what a Markdown renderer would turn into
HTML or a link. Signatures and addresses are left out unless asked for; quoted history is
folded (a note in Markdown, a closed <details> in HTML) unless ``quotes``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .localtime import absolute
from .printable import json_safe, neutralise

if TYPE_CHECKING:
    from .db.store import MessageRow, Thread

FORMATS = ("markdown", "html", "json", "mbox")


@dataclass(frozen=True)
class Options:
    author: str  # the name the author's own messages are shown under
    signatures: bool = False
    addresses: bool = False
    quotes: bool = False


@dataclass(frozen=True)
class Said:
    """One message of the conversation, as it will be shown."""

    who: str
    address: str | None  # only when --addresses
    date: str | None  # ISO 8601 UTC, as stored
    local_date: str  # in the author's time zone (TZ, else the system's)
    outgoing: bool
    text: str
    quoted: str  # empty unless --quotes
    quoted_lines: int
    signature: str  # empty unless --signatures


@dataclass(frozen=True)
class Discussion:
    thread: Thread
    said: list[Said]


def discussion(thread: Thread, messages: Sequence[MessageRow], options: Options) -> Discussion:
    """The human messages of a thread (machine mail is no part of the conversation)."""
    return Discussion(thread, [_said(message, options) for message in messages
                               if message.kind == "reply"])


def _said(message: MessageRow, options: Options) -> Said:
    outgoing = message.direction == "out"
    who = options.author if outgoing else (message.from_name or "")
    if not who:  # nobody named: the address is all there is, but it stays private
        who = "You" if outgoing else "Correspondent"
    quoted = (message.quoted_text or "").strip("\n")
    return Said(
        who=who,
        address=message.from_address if options.addresses else None,
        date=message.date,
        local_date=absolute(message.date) if message.date else "(no date)",
        outgoing=outgoing,
        text=(message.visible_text or "").strip("\n"),
        quoted=quoted if options.quotes else "",
        quoted_lines=quoted.count("\n") + 1 if quoted else 0,
        signature=(message.signature or "").strip("\n") if options.signatures else "",
    )


# Markdown -----------------------------------------------------------------------------------

# What a Markdown renderer (CommonMark, kramdown, goldmark) would read as markup: emphasis,
# code, links, images, headings, tables, strike-through, and the backslash itself.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~!])")


def markdown_text(text: str) -> str:
    """Mail text as Markdown that renders as exactly that text: no HTML, no link, no
    emphasis; its line breaks kept (two trailing spaces), its paragraphs too."""
    # Controls, bidi overrides and invisible characters made visible, as on a terminal: a
    # published post must neither run escapes in a reader's `cat` nor reverse its text.
    text = html.escape(neutralise(text), quote=False)  # & < > as entities: no raw HTML
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    lines = [re.sub(r"^(\s*)([-+]|\d+[.)])(\s)", r"\1\\\2\3", line.rstrip())
             for line in text.split("\n")]
    return "\n".join(line + "  " if line and index + 1 < len(lines) and lines[index + 1]
                     else line for index, line in enumerate(lines))


def markdown(discussions: Sequence[Discussion]) -> str:
    parts = []
    for item in discussions:
        thread = item.thread
        parts.append(f"## {markdown_text(thread.subject or thread.post_title or thread.post)}")
        for said in item.said:
            who = markdown_text(said.who)
            if said.address:
                who += f" &lt;{markdown_text(said.address)}&gt;"
            block = [f"**{who}** · {said.local_date}", "",
                     markdown_text(said.text) or "*(no text)*"]
            if said.quoted:  # one level of "> " off, so that it does not show twice
                quoted = re.sub(r"(?m)^> ?", "", said.quoted)
                block += ["", "\n".join(f"> {line}" if line else ">" for line in
                                        markdown_text(quoted).split("\n"))]
            elif said.quoted_lines:
                block += ["", f"*({said.quoted_lines} quoted "
                              f"line{'s' * (said.quoted_lines != 1)} left out)*"]
            if said.signature:
                block += ["", "\\-\\- ", markdown_text(said.signature)]
            parts.append("\n".join(block))
    return "\n\n".join(parts) + "\n"


# HTML ---------------------------------------------------------------------------------------

_STYLE = """body{font-family:Georgia,serif;max-width:42em;margin:2em auto;padding:0 1em;
line-height:1.5;color:#222}
.message{margin:1.5em 0;padding-left:1em;border-left:3px solid #ccc}
.message.author{border-left-color:#68a}
.meta{font-size:.9em;color:#555}
.text,.quote,.signature{white-space:pre-wrap;margin:.5em 0}
.quote{color:#666;border-left:2px solid #ddd;padding-left:.8em}
.signature{color:#777;font-size:.9em}"""


def _e(text: str) -> str:
    return html.escape(neutralise(text), quote=True)


def html_document(discussions: Sequence[Discussion], title: str) -> str:
    """One self-contained page: inline style, no script, no external resource, no link, and
    a Content-Security-Policy that would block any of them anyway."""
    body = []
    for item in discussions:
        thread = item.thread
        body.append(f"<section>\n<h2>{_e(thread.subject or thread.post_title or thread.post)}"
                    "</h2>")
        for said in item.said:
            who = _e(said.who) + (f" &lt;{_e(said.address)}&gt;" if said.address else "")
            block = [f'<article class="message{" author" if said.outgoing else ""}">',
                     f'<p class="meta"><strong>{who}</strong> · '
                     f'<time datetime="{_e(said.date or "")}">{_e(said.local_date)}</time></p>',
                     f'<div class="text">{_e(said.text) or "<em>(no text)</em>"}</div>']
            if said.quoted:
                block.append(f'<details><summary>{said.quoted_lines} quoted line'
                             f'{"s" * (said.quoted_lines != 1)}</summary>'
                             f'<div class="quote">{_e(said.quoted)}</div></details>')
            if said.signature:
                block.append(f'<div class="signature">-- \n{_e(said.signature)}</div>')
            block.append("</article>")
            body.append("\n".join(block))
        body.append("</section>")
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# JSON ---------------------------------------------------------------------------------------


def json_document(discussions: Sequence[Discussion]) -> dict[str, Any]:
    threads = []
    for item in discussions:
        thread = item.thread
        threads.append({
            "id": thread.id, "post": thread.post, "post_title": thread.post_title,
            "subject": thread.subject, "consent": thread.consent,
            "consent_at": thread.consent_at,
            "messages": [{key: value for key, value in said.__dict__.items()
                          if value is not None or key != "address"}
                         for said in item.said],
        })
    return {"threads": threads}


def json_text(discussions: Sequence[Discussion]) -> str:
    return json_safe(json.dumps(json_document(discussions), indent=2, ensure_ascii=False)) + "\n"


# mbox ---------------------------------------------------------------------------------------

_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def mbox_message(raw: bytes, sender: str | None, date: str | None) -> bytes:
    """One message in mboxrd: a ``From `` separator line, the exact bytes with every line
    that starts with ``>*From `` given one more ``>``, and an empty line after it."""
    envelope = sender if sender and re.fullmatch(r"[^\s\x00-\x1f\x7f]{1,254}", sender) \
        else "MAILER-DAEMON"
    try:
        moment = datetime.fromisoformat(date or "")
    except ValueError:
        moment = datetime(1970, 1, 1)
    separator = f"From {envelope} {moment.strftime('%a %b %d %H:%M:%S %Y')}\n".encode()
    body = _FROM_LINE.sub(rb">\1", raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return separator + body + b"\n"
