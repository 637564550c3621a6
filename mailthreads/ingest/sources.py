"""Find messages on disk: maildirs, mbox files and single .eml files, read lazily.

Yields ``(origin, raw bytes)`` one message at a time, so memory does not grow with the size of
the mailbox.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_MBOX_FROM = re.compile(rb"^From \S*")
_QUOTED_FROM = re.compile(rb"^>+From ")
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
# Blank lines before the headers, as some exports write them: not part of the message (a parser
# would take the first one for the end of an empty header block).
_LEADING_BLANK_LINES = re.compile(rb"^(?:[ \t]*\r?\n)+")


class SourceError(Exception):
    """A path that is not a maildir, an mbox or a message."""


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str  # maildir, mbox, directory, message, stdin


def classify_path(path: Path) -> Source:
    if str(path) == "-":
        return Source(path, "stdin")
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return Source(path, "maildir")
        return Source(path, "directory")
    with path.open("rb") as handle:
        head = without_leading_blank_lines(handle.read(4096))
    if head.startswith(b"From "):
        return Source(path, "mbox")
    first_line = head.split(b"\n", 1)[0]
    if _HEADER_LINE.match(first_line) or not head:
        return Source(path, "message")
    raise SourceError(f"{path}: not an email message, an mbox or a maildir")


def without_leading_blank_lines(raw: bytes) -> bytes:
    return _LEADING_BLANK_LINES.sub(b"", raw, count=1)


def count_messages(source: Source) -> int | None:
    """A quick count for the progress bar, or None when it would need a full read."""
    if source.kind == "maildir":
        return sum(len(_maildir_files(source.path / sub)) for sub in ("new", "cur"))
    if source.kind == "directory":
        return sum(1 for _ in _directory_files(source.path))
    if source.kind == "message":
        return 1
    return None


def read_messages(source: Source, on_skip: Callable[[Path, str], None] | None = None,
                  ) -> Iterator[tuple[str, bytes]]:
    """The messages of ``source``; ``on_skip(path, reason)`` hears of each file in a directory
    that is not mail (index files and notes beside the mail: dovecot-uidlist, .txt)."""
    if source.kind == "stdin":
        import sys

        yield "-", without_leading_blank_lines(sys.stdin.buffer.read())
    elif source.kind == "message":
        yield str(source.path), without_leading_blank_lines(source.path.read_bytes())
    elif source.kind == "maildir":
        for sub in ("new", "cur"):
            for name in _maildir_files(source.path / sub):
                path = source.path / sub / name
                yield str(path), without_leading_blank_lines(path.read_bytes())
    elif source.kind == "directory":
        for path in _directory_files(source.path):
            try:
                inner = classify_path(path)
            except SourceError:
                if on_skip:
                    on_skip(path, "not an email message or an mbox")
                continue
            if inner.kind in ("mbox", "message"):
                yield from read_messages(inner)
    elif source.kind == "mbox":
        yield from _read_mbox(source.path)


def _maildir_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def _directory_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        root_path = Path(root)
        if (root_path / "cur").is_dir() or (root_path / "new").is_dir():
            # A maildir inside a folder tree: its messages are under new/ and cur/.
            dirs[:] = [d for d in dirs if d in ("new", "cur")]
        for name in sorted(files):
            if not name.startswith(".") and not _sqlite_companion(root_path, name):
                yield root_path / name


def _sqlite_companion(folder: Path, name: str) -> bool:
    """A database's -wal, -shm or -journal file (e.g. our own, when the database lives in the
    folder being read): an empty one would otherwise pass for an empty message."""
    base, dash, suffix = name.rpartition("-")
    return bool(dash) and suffix in ("wal", "shm", "journal") and (folder / base).is_file()


def _read_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """Split an mbox on ``From `` lines (mboxrd: one level of ``>From`` quoting undone)."""
    lines: list[bytes] = []
    number = 0
    before_first = True
    with path.open("rb") as handle:
        for line in handle:
            if before_first and not line.strip():
                continue  # blank lines before the first From line
            before_first = False
            if _MBOX_FROM.match(line):
                if lines:
                    number += 1
                    yield f"{path}#{number}", _unquote_mbox(lines)
                lines = []
                continue
            lines.append(line)
    if lines:
        number += 1
        yield f"{path}#{number}", _unquote_mbox(lines)


def _unquote_mbox(lines: list[bytes]) -> bytes:
    return b"".join(line[1:] if _QUOTED_FROM.match(line) else line for line in lines)
