"""How many messages of the shared corpora change verdict when a real spamd scans them.

Starts a private spamd (tests/spamd.py: offline, Debian's rules, no Bayes), scans every message
file of $MAILTHREADS_CORPORA (default ../shared/corpora) with mailthreads' own client, and
prints, per set, how many files spamd calls spam (every one was filed as mail before: the
scanner is off by default), with the files and rules. Bodies without headers (the trimming
sets) are scanned as a reply with minimal headers; the sets' expected outputs and cut-out
fragments are left out.

    PYTHONPATH=. python3 benchmarks/spam_corpora.py [--json] [SET,SET...]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from spamd import SpamdServer  # noqa: E402

from mailthreads.config import Spam  # noqa: E402
from mailthreads.spam import scan  # noqa: E402

CORPORA = Path(os.environ.get("MAILTHREADS_CORPORA")
               or Path(__file__).resolve().parents[2] / "shared" / "corpora")
SUFFIXES = {".eml", ".txt", ".msg", ".mbox", ""}
WRAP = (b"From: Reader <reader@example.com>\r\nTo: reply+post@blog.example\r\n"
        b"Subject: Re: post\r\nDate: Sun, 01 Nov 2026 09:00:00 +0000\r\n"
        b"Message-ID: <x@example.com>\r\n\r\n")


# Files that are not messages: expected outputs, and the trimming sets' cut-out parts.
NOT_MESSAGES = ("LICENSE", "COPYING", "README", "NOTICE", "default_tree_expected")
FRAGMENT_FOLDERS = {"trimmed", "elided", "embedded", "before", "matchers"}
# Sets of bare reply bodies (no header section, though a first line may look like one).
BODY_SETS = {"email_reply_trimmer", "github_email_reply_parser", "zapier_email_reply_parser",
             "mail_parser_reply"}
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]")


def messages() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(CORPORA.rglob("*")):
        parts = path.relative_to(CORPORA).parts
        if not path.is_file() or path.suffix not in SUFFIXES \
                or path.name.startswith(NOT_MESSAGES) or FRAGMENT_FOLDERS & set(parts):
            continue
        found.append((parts[0], path))
    return found


def as_message(corpus: str, raw: bytes) -> bytes:
    """The file as a message: an mbox "From " line dropped, a bare body given headers."""
    if corpus in BODY_SETS:
        return WRAP + raw
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[-1]
    return raw if _HEADER_LINE.match(raw) else WRAP + raw


def main() -> None:
    if not CORPORA.is_dir():
        sys.exit(f"corpora not found at {CORPORA}; set MAILTHREADS_CORPORA")
    chosen = {a for arg in sys.argv[1:] if not arg.startswith("--") for a in arg.split(",")}
    root = Path(tempfile.mkdtemp(prefix="spam-corpora-"))
    server = SpamdServer(root).start()
    settings = Spam(enabled=True, port=server.port, timeout=60)
    try:
        files = [(name, path) for name, path in messages()
                 if not chosen or name in chosen]
        with ThreadPoolExecutor(2) as pool:
            verdicts = list(pool.map(lambda item: scan(as_message(
                item[0], item[1].read_bytes()), settings), files))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    sets: dict[str, dict] = defaultdict(lambda: {"scanned": 0, "spam": [], "unscanned": 0})
    for (name, path), verdict in zip(files, verdicts, strict=True):
        entry = sets[name]
        entry["scanned"] += 1
        if verdict.label == "spam":
            entry["spam"].append({"file": str(path.relative_to(CORPORA)),
                                  "score": verdict.score, "rules": list(verdict.reasons)})
        elif verdict.label == "unscanned":
            entry["unscanned"] += 1
    if "--json" in sys.argv:
        print(json.dumps(sets, indent=2))
        return
    total = sum(s["scanned"] for s in sets.values())
    spam = sum(len(s["spam"]) for s in sets.values())
    print(f"{total} files scanned, {spam} spam")
    for name, entry in sorted(sets.items()):
        print(f"  {name}: {entry['scanned']} scanned, {len(entry['spam'])} spam"
              + (f", {entry['unscanned']} unscanned" if entry["unscanned"] else ""))
        for hit in entry["spam"]:
            print(f"    {hit['file']}: {hit['score']:g} {','.join(hit['rules'][:8])}")


if __name__ == "__main__":
    main()
