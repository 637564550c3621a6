"""Time split_reply and classify on the text bodies of the shared corpora (the ingest hot path).

    MAILTHREADS_CORPORA=/work/shared/corpora python benchmarks/trimming.py [--rounds 7]

Every .eml and .txt under the corpora is read once; the plain-text body of each (the file itself
for .txt) is split by split_reply, and each .eml is classified. The figure is the median over the
rounds of the total CPU time (process time: other work on the machine disturbs it less than
wall-clock time), and microseconds per input.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import statistics
import time
from pathlib import Path

from mailthreads.mail.classify import classify
from mailthreads.mail.cleanup import split_reply


def _body(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        part = message.get_body(preferencelist=("plain",))
        payload = part.get_payload(decode=True) if part is not None else b""
        return (payload or b"").decode(part.get_content_charset() or "utf-8", "replace")
    except Exception:  # noqa: BLE001 - malformed corpus files just give no body
        return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    root = Path(os.environ.get("MAILTHREADS_CORPORA", "../shared/corpora"))
    bodies: list[str] = []
    messages = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".txt" and path.is_file():
            bodies.append(path.read_text("utf-8", "replace"))
        elif path.suffix == ".eml" and path.is_file():
            raw = path.read_bytes()
            bodies.append(_body(raw))
            messages.append(email.message_from_bytes(raw))
    chars = sum(map(len, bodies))
    for label, work, count in (
        ("split_reply", lambda: [split_reply(body) for body in bodies], len(bodies)),
        ("classify", lambda: [classify(message) for message in messages], len(messages)),
    ):
        times = []
        for _ in range(args.rounds):
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
        median = statistics.median(times)
        print(
            f"{label:12s} {count} inputs ({chars / 1e6:.1f} M chars):"
            f" median {median * 1000:.0f} ms, {median / count * 1e6:.1f} us each;"
            f" runs {[round(t * 1000) for t in times]}"
        )


if __name__ == "__main__":
    main()
