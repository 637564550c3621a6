"""Caps for hostile input: a small value type, so that ``mail/`` never imports the config.

``config`` reads them from ``[limits]``; the parser and the classifier take them as given.
"""

from __future__ import annotations

from typing import NamedTuple


class Limits(NamedTuple):
    """Caps for hostile input, shared by every transport."""

    max_message_size: int = 25 * 1024 * 1024
    max_header_size: int = 256 * 1024
    max_mime_parts: int = 500
    max_mime_depth: int = 20
    # Parameters of one Content-Type or Content-Disposition (CPython splits them in quadratic
    # time), and nesting of HTML blockquotes and lists (html2text's output grows with its square).
    max_header_parameters: int = 100
    max_html_depth: int = 100
    # The budget of one message's analysis (parse, trim, classify), enforced in a worker
    # process that is replaced when a message goes over: wall-clock seconds, and bytes of
    # memory on top of what the worker holds before it starts on the message.
    max_parse_seconds: float = 30.0
    max_parse_memory: int = 512 * 1024 * 1024
