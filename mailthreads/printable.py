"""Text from mail made safe to print on a terminal, and safe inside JSON.

Anyone can send mail, and a subject, a display name or a body can carry terminal control
sequences (OSC 52 writes the clipboard, OSC 8 hides a link behind text, ``ESC[2J`` clears the
screen), bidi overrides that show text backwards and invisible characters that make two names
look alike. Everything mailthreads prints from a message goes through ``neutralise`` first.

The convention is the one ``mailthreads serve`` logs already use: such a character is shown as
the escape of its code point, in Python's spelling, so it stays visible and greppable: ESC is
``\\x1b``, a C1 CSI ``\\x9b``, the right-to-left override ``\\u202e``, a zero-width space
``\\u200b``, a lone carriage return ``\\r``. Which characters: control characters (C0, DEL,
C1), format characters (Unicode category Cf: bidi controls, zero-width characters, the soft
hyphen, the byte order mark, tag characters), line and paragraph separators, lone surrogates,
and the few letters that draw nothing (the Hangul fillers, the combining grapheme joiner),
which spoofers use as invisible names. One exception: a zero-width joiner between two emoji,
which only joins them into one picture (a family, a profession).

Pure: no click, no I/O, so that the CLI, the logs and the tests share it.
"""

from __future__ import annotations

import re
import unicodedata

_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Printable to Unicode, invisible on screen.
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_ZERO_WIDTH_JOINER = "\u200d"
_EMOJI_VARIATION = "\ufe0f"
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Everything outside printable ASCII is looked at character by character; ASCII text (most
# of any mail) is skipped by the regex engine.
_LOOK_CLOSER = re.compile(r"[^\x20-\x7e]+")
_LOOK_CLOSER_KEEP_LINES = re.compile(r"[^\t\n\x20-\x7e]+")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")


def neutralise(text: str, *, multiline: bool = True) -> str:
    """``text`` with every character that could act on a terminal made visible as an escape.

    ``multiline`` keeps tabs and newlines (bodies); a CR LF pair becomes a newline and a lone
    CR is escaped, since it moves the cursor back over what was printed. Without
    ``multiline`` (a subject, a name), tabs and newlines are escaped too.
    """
    if multiline:
        text = text.replace("\r\n", "\n")
        return _LOOK_CLOSER_KEEP_LINES.sub(_neutralise_run, text)
    return _LOOK_CLOSER.sub(_neutralise_run, text)


def json_safe(encoded: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with the same characters as
    ``neutralise`` written as ``\\uXXXX`` escapes: loads() still gives back the exact text."""
    # Raw tabs and newlines in JSON text are the indentation: inside strings they are escaped.
    return _LOOK_CLOSER_KEEP_LINES.sub(_json_escape_run, encoded)


def is_hidden(char: str) -> bool:
    """Whether ``char`` acts on a terminal or hides itself instead of showing as a glyph."""
    return char in _BLANK_LETTERS or unicodedata.category(char) in _HIDDEN_CATEGORIES


def escape(char: str) -> str:
    """``\\x1b``, ``\\u202e``, ``\\U000e0001``: the code point, readable and unambiguous."""
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _neutralise_run(match: re.Match[str]) -> str:
    run = match.group()
    if _printable(run):
        return run
    return "".join(escape(char) if is_hidden(char) and not _joins_emoji(run, index)
                   else char for index, char in enumerate(run))


def _printable(run: str) -> bool:
    """A quick "nothing hidden here" for most runs: Python finds every character of the hidden
    categories unprintable."""
    return run.isprintable() and _BLANK_LETTERS.isdisjoint(run)


def _joins_emoji(run: str, index: int) -> bool:
    if run[index] != _ZERO_WIDTH_JOINER or index == 0 or index + 1 == len(run):
        return False
    return _is_emoji_part(run[index - 1]) and _is_emoji_part(run[index + 1])


def _is_emoji_part(char: str) -> bool:
    # Symbols (So), skin tone modifiers (Sk) and the emoji variation selector.
    return char == _EMOJI_VARIATION or unicodedata.category(char) in {"So", "Sk"}


def _json_escape_run(match: re.Match[str]) -> str:
    if _printable(match.group()):
        return match.group()
    return "".join(_json_escape(char) if is_hidden(char) else char for char in match.group())


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: Chinese, Japanese and Korean characters and
    most emoji take two, combining marks none. Tables are laid out by this, not by ``len``,
    or one CJK subject pushes every column after it out of line and past the screen's edge."""
    if text.isascii():
        return len(text)
    # Only the characters outside ASCII can be wider or narrower than one column.
    return len(text) + sum(_char_width(char) - 1 for run in _NOT_ASCII.findall(text)
                           for char in run)


def clip_to_width(text: str, width: int) -> str:
    """``text`` if it fits in ``width`` columns, else as much of it as fits before an "…"."""
    if display_width(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        used += _char_width(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or char in (_ZERO_WIDTH_JOINER, _EMOJI_VARIATION) \
            or "\U0001f3fb" <= char <= "\U0001f3ff":  # a skin tone joins the emoji before it
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
