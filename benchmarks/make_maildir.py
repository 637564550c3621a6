"""Build a maildir of N messages from the shared corpora, for the bulk-ingest benchmark.

Every corpus message is copied with its Message-ID, In-Reply-To and References rewritten per
replica (so thread structure is kept and every copy is a new message), and its To rewritten to
the reply address of one of a few hundred posts (so that it routes). Plain-text trimming cases
are wrapped into messages. The corpora are read from $MAILTHREADS_CORPORA (default
../shared/corpora) and are never copied into the repository.

    python benchmarks/make_maildir.py /tmp/bench/Maildir --count 100000
"""

from __future__ import annotations

import argparse
import os
import re
import zlib
from pathlib import Path

ID = re.compile(rb"<([^<>\s]+)>")
HEADER_END = re.compile(rb"\r?\n\r?\n")
THREADING_HEADER = re.compile(rb"^(Message-ID|In-Reply-To|References):", re.I)
TO_HEADER = re.compile(rb"^To:", re.I)
SUBJECT = re.compile(rb"^Subject:[ \t]*(.*)$", re.I | re.M)


def corpus_messages(corpora: Path) -> list[bytes]:
    messages = []
    for folder in ("fedora_devel_2010_01_threading/messages", "notmuch_threading/default_eml",
                   "perf_extra/notmuch_lkml", "sisimai_bounces/maildir", "autoreply_misc",
                   "discourse_replies", "notmuch_threading/t260_eml"):
        for path in sorted((corpora / folder).rglob("*")):
            if path.is_file() and path.suffix not in (".json", ".md", ".txt", ".html") \
                    or path.suffix == ".txt" and "messages" in str(path):
                messages.append(path.read_bytes())
    for folder in ("email_reply_trimmer/emails", "mail_parser_reply/emails"):
        for number, path in enumerate(sorted((corpora / folder).glob("*.txt"))):
            body = path.read_bytes()
            messages.append(b"From: Reader %d <reader%d@example.org>\nSubject: Re: a post\n"
                            b"Message-ID: <trim-%d-%s@example.org>\n"
                            b"Content-Type: text/plain; charset=utf-8\n\n"
                            % (number, number, number, path.stem.encode()) + body)
    return [m for m in messages if HEADER_END.search(m)]


def rewrite(raw: bytes, replica: int, posts: int) -> bytes:
    match = HEADER_END.search(raw)
    head, body = raw[: match.start()], raw[match.start():]
    subject = SUBJECT.search(head)
    topic = re.sub(rb"^((re|fwd?|aw|sv):\s*)+", b"", (subject.group(1) if subject else b"").lower())
    post = (zlib.crc32(topic) + replica * 7919) % posts
    lines, had_to = [], False
    for line in head.splitlines(keepends=True):
        if lines and line[:1] in (b" ", b"\t") and lines[-1][1]:
            line = ID.sub(lambda m: b"<r%d.%s>" % (replica, m.group(1)), line)
            lines.append((line, True))
            continue
        if THREADING_HEADER.match(line):
            line = ID.sub(lambda m: b"<r%d.%s>" % (replica, m.group(1)), line)
            lines.append((line, True))
        elif TO_HEADER.match(line):
            had_to = True
            lines.append((b"To: reply+post-%d@blog.example\n" % post, False))
        elif line[:1] in (b" ", b"\t") and lines and lines[-1][0].startswith(b"To:"):
            continue  # the folded rest of the old To header
        else:
            lines.append((line, False))
    text = b"".join(line for line, _ in lines)
    if not had_to:
        text = b"To: reply+post-%d@blog.example\n" % post + text
    if not re.search(rb"^Message-ID:", text, re.I | re.M):
        text = b"Message-ID: <r%d.synthetic-%d@bench.example>\n" % (
            replica, zlib.crc32(raw)) + text
    return text + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maildir", type=Path)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--corpora", type=Path, default=Path(os.environ.get(
        "MAILTHREADS_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora")))
    args = parser.parse_args()
    base = corpus_messages(args.corpora)
    for sub in ("cur", "new", "tmp"):
        (args.maildir / sub).mkdir(parents=True, exist_ok=True)
    written = 0
    replica = 0
    while written < args.count:
        for raw in base:
            if written == args.count:
                break
            name = f"{written:07d}.bench.{replica}:2,S"
            (args.maildir / "cur" / name).write_bytes(rewrite(raw, replica, args.posts))
            written += 1
        replica += 1
    print(f"{written} messages from {len(base)} corpus messages x {replica} replicas "
          f"in {args.maildir}")


if __name__ == "__main__":
    main()
