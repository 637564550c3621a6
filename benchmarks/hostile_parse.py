"""Time and peak memory of analysing each hostile shape of issue 8, at the size caps.

    python benchmarks/hostile_parse.py [--size BYTES] [--tree PATH] [--shape NAME ...]

Each shape is built by tests/mailfactory.py and analysed in a fresh child process, the way
mailthreads analyses mail: through ``budget.Analyser`` (the cheap byte-level checks, then the
analysis in a worker process under ``[limits] max_parse_seconds`` and ``max_parse_memory``).
``--tree`` points at another checkout (for example the code before the change, from
``git archive``); a tree without ``mailthreads/budget.py`` is measured with a plain
``analyse_or_unparsed`` call, which is all it had. Figures: wall-clock seconds, and the peak
resident memory of the child and its worker (ru_maxrss of each, the larger one).

``--smtp`` measures what a sender sees instead: a real ``mailthreads serve`` of the tree takes
the hostile message and then a normal reply, and the figure is the time from the normal reply's
250 until it is filed (what the hostile message in front of it costs it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SHAPES = {
    "normal reply": "message",
    "parts without Content-Type": "parts_without_content_type",
    "nested <div>s": "nested_html",
    "quote lines": "quote_lines",
    "Content-Type of semicolons": "semicolon_content_type",
}

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from mailthreads.config import Config
path = sys.argv[2]
raw = open(path, "rb").read()
start = time.perf_counter()
try:
    from mailthreads.ingest.budget import Analyser
except ImportError:
    from mailthreads.ingest import analyse_or_unparsed
    result = analyse_or_unparsed(raw, Config(), None)
else:
    with Analyser(Config()) as analyser:
        result = analyser.analyse(raw)
seconds = time.perf_counter() - start
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024,
                  "outcome": getattr(result, "reason", result) if not hasattr(result, "kind")
                  else "analysed"}))
"""


def build(shape: str, size: int) -> bytes:
    sys.path.insert(0, str(HERE / "tests"))
    import mailfactory

    function = getattr(mailfactory, SHAPES[shape])
    if shape == "normal reply":
        return function()
    if shape == "Content-Type of semicolons":
        return function(250_000)  # inside the 256 KiB header cap
    return function(size)


def measure(tree: Path, raw: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".eml") as file:
        file.write(raw)
        file.flush()
        output = subprocess.run([sys.executable, "-c", _CHILD, str(tree), file.name],
                                capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def measure_smtp(tree: Path, raw: bytes) -> dict:
    import smtplib
    import time

    sys.path.insert(0, str(tree / "tests"))
    from smtp_support import Serve, message, query, wait_for, write_config

    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "replies.db"
        config = write_config(Path(directory))
        with Serve(database, config) as server:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=300) as client:
                client.sendmail("mallory@example.com", ["reply+why-i-blog@blog.example"], raw)
                client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                                message(message_id="normal@example.com"))
                accepted = time.monotonic()
            wait_for(lambda: query(database, "SELECT 1 FROM messages WHERE message_id = ?",
                                   ("normal@example.com",)), "the normal reply", 600)
            waited = time.monotonic() - accepted
            reasons = query(database, "SELECT reason FROM quarantine")
    return {"seconds": waited, "outcome": reasons[0][0] if reasons else "filed"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=24_000_000)
    parser.add_argument("--tree", type=Path, default=HERE)
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES))
    parser.add_argument("--smtp", action="store_true",
                        help="time a normal reply behind each shape through serve")
    args = parser.parse_args()
    print(f"tree: {args.tree}   size: {args.size:,} bytes")
    if args.smtp:
        print("| shape in front | normal reply filed after (s) | hostile message |\n|---|---:|---|")
        for shape in args.shape or SHAPES:
            figures = measure_smtp(args.tree, build(shape, args.size))
            print(f"| {shape} | {figures['seconds']:.2f} | {figures['outcome'][:90]} |",
                  flush=True)
        return
    print("| shape | seconds | peak MB | outcome |\n|---|---:|---:|---|")
    for shape in args.shape or SHAPES:
        figures = measure(args.tree, build(shape, args.size))
        print(f"| {shape} | {figures['seconds']:.2f} | {figures['peak_mb']:.0f} "
              f"| {figures['outcome'][:90]} |", flush=True)


if __name__ == "__main__":
    main()
