"""CPU time of split_reply and classify on every body of the shared corpora (the ingest hot path).

    MAILTHREADS_CORPORA=/work/shared/corpora python benchmarks/trimming.py [--rounds 7]

Every .eml and .txt under the corpora (perf_extra included) is read once: split_reply gets the
plain-text body of each (the file itself for .txt), classify gets each .eml and each .txt
wrapped as a reply. The figure is the median over the rounds of the total CPU time (process
time: other work on a shared machine disturbs it less than wall-clock time), and microseconds
per input. Writes the "## Trimming and classification" section of benchmarks/README.md
(--no-readme to only print it).
"""

from __future__ import annotations

import argparse
import datetime
import email
import email.policy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from email.message import Message
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

from mailthreads.mail.classify import classify  # noqa: E402
from mailthreads.mail.cleanup import split_reply  # noqa: E402

SECTION = "## Trimming and classification"
_REPLY_HEADERS = (
    b"From: A Reader <reader@example.org>\r\nSubject: Re: A post\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
)


def _body(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        part = message.get_body(preferencelist=("plain",))
        payload = part.get_payload(decode=True) if part is not None else b""
        return (payload or b"").decode(part.get_content_charset() or "utf-8", "replace")
    except Exception:  # noqa: BLE001 - malformed corpus files just give no body
        return ""


def _inputs(root: Path) -> tuple[list[str], list[Message]]:
    bodies: list[str] = []
    messages: list[Message] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".txt", ".eml"):
            continue
        raw = path.read_bytes()
        if path.suffix == ".txt":
            bodies.append(raw.decode("utf-8", "replace"))
            messages.append(email.message_from_bytes(_REPLY_HEADERS + raw))
        else:
            bodies.append(_body(raw))
            messages.append(email.message_from_bytes(raw))
    return bodies, messages


def _cpu_times(work: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    root = Path(os.environ.get("MAILTHREADS_CORPORA", "../shared/corpora"))
    bodies, messages = _inputs(root)
    chars = sum(map(len, bodies))
    rows = []
    for label, work, count in (
        ("split_reply", lambda: [split_reply(body) for body in bodies], len(bodies)),
        ("classify", lambda: [classify(message) for message in messages], len(messages)),
    ):
        times = _cpu_times(work, args.rounds)
        median = statistics.median(times)
        rows.append(
            f"| `{label}` | {count:,} | {median * 1000:.0f} | {median / count * 1e6:.1f} |"
            f" {', '.join(str(round(t * 1000)) for t in times)} |"
        )
    text = "\n".join(
        [
            SECTION,
            "",
            f"`python benchmarks/trimming.py`: CPU time of the two pure steps of the pipeline on"
            f" every body of the shared corpora ({len(bodies):,} bodies, {chars / 1e6:.1f} M"
            " characters, perf_extra included; classify also gets the .txt bodies as replies),"
            f" median of {args.rounds} rounds.",
            "",
            "| step | inputs | median CPU ms | µs per input | all rounds, ms |",
            "|---|---:|---:|---:|---|",
            *rows,
            "",
            f"Recorded {datetime.date.today()} on {os.cpu_count()} cores"
            f" ({platform.machine()}, Python {platform.python_version()}).",
        ]
    )
    print(text)
    if not args.no_readme:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
