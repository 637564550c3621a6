"""The read path side by side with notmuch: whole commands, start-up included, interleaved.

    python benchmarks/read_path.py --work /tmp/mailthreads-bench --count 100000

Uses the database and notmuch index that bulk_ingest.py built in --work (run it first, same
--count). In one run, interleaved (warm-up rounds first, output to /dev/null): `mailthreads threads`
(the newest 50) against `notmuch search --limit=50 '*'` and a lean script (Python + sqlite3,
the same 50 rows, nothing else: the floor for a Python command); `mailthreads show` and
`mailthreads search` against `notmuch show` and `notmuch search`. Writes the "## Read path"
section of benchmarks/README.md (--no-readme to only print it).

Python runs from a plain virtual environment made for the benchmark (``--work``/venv, this
checkout and its dependencies installed as pipx would install them), not from the Python
that runs this script: an interpreter's site hooks (``.pth`` files of other packages, an
editable install's import finder) cost start-up time that is not mailthreads' own. Every
mailthreads command still imports this checkout's code (PYTHONPATH), or --before's.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from readme_section import load_average, recorded, write_section  # noqa: E402

SECTION = "## Read path"
WORD = "patch"  # in 13,000 of the 83,000 messages
LEAN_SCRIPT = '''
import sqlite3, sys
conn = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
for row in conn.execute(
        "SELECT threads.id, posts.slug, correspondents.name, threads.state, threads.unread, "
        "threads.message_count, threads.last_activity, threads.subject FROM threads "
        "JOIN posts ON posts.id = threads.post_id "
        "JOIN correspondents ON correspondents.id = threads.correspondent_id "
        "WHERE threads.state != 'archived' ORDER BY threads.last_activity DESC LIMIT 50"):
    print(*row, sep="  ")
'''


def time_once(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run of ``command``."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
    return wall * 1000, cpu * 1000


def plain_venv(venv: Path) -> tuple[Path, Path]:
    """A virtual environment with this checkout installed (not editable), made once."""
    python, script = venv / "bin" / "python3", venv / "bin" / "mailthreads"
    if not script.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(HERE.parent)],
                       check=True)
    return python, script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mailthreads-bench"))
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also time `threads` and `show` of another checkout (the code "
                             "before a change), in the same run")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    database = args.work / "bench.db"
    maildir = args.work / f"Maildir-{args.count}"
    if not database.exists() or not (maildir / ".notmuch").exists():
        sys.exit(f"run benchmarks/bulk_ingest.py --count {args.count} --work {args.work} first")
    python, mailthreads = plain_venv(args.work / "venv")
    conn = sqlite3.connect(database)
    thread_id, messages, thread_count = conn.execute(
        "SELECT id, message_count, (SELECT count(*) FROM threads) FROM threads "
        "ORDER BY last_activity DESC LIMIT 1").fetchone()
    stored = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    message_id = conn.execute("SELECT message_id FROM messages WHERE thread_id = ? LIMIT 1",
                              (thread_id,)).fetchone()[0]
    conn.close()
    lean = args.work / "lean_threads.py"
    lean.write_text(LEAN_SCRIPT)
    os.environ.update(MAILTHREADS_DB=str(database),
                      MAILTHREADS_CONFIG=str(args.work / "config.toml"),
                      NOTMUCH_CONFIG=str(args.work / "notmuch-config"))
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # Every mailthreads command imports this checkout's code (the console script would import
    # the editable install's); env(1) runs them all, so they pay the same small exec cost.
    here = f"env PYTHONPATH={HERE.parent} {mailthreads}"
    commands = [
        ("python3 -c pass", f"{python} -c pass"),
        ("lean Python + sqlite3 script, newest 50", f"{python} {lean} {database}"),
        ("python3 -c 'import click'", f"{python} -c 'import click'"),
        ("mailthreads threads", f"{here} threads"),
        ("notmuch search --limit=50 '*'", "notmuch search --limit=50 *"),
        (f"mailthreads show {thread_id} ({messages} messages)",
         f"{here} show {thread_id} --keep-unread"),
        ("notmuch show id:...", f"notmuch show id:{message_id}"),
        (f"mailthreads search {WORD}", f"{here} search {WORD}"),
        (f"notmuch search --limit=50 {WORD}", f"notmuch search --limit=50 {WORD}"),
    ]
    if args.before:
        before = f"env PYTHONPATH={args.before.resolve()} {mailthreads}"
        commands += [("mailthreads threads, before", f"{before} threads"),
                     (f"mailthreads show {thread_id}, before",
                      f"{before} show {thread_id} --keep-unread"),
                     (f"mailthreads search {WORD}, before", f"{before} search {WORD}")]
    load_before = load_average()
    runs: dict[str, list[float]] = {name: [] for name, _ in commands}
    cpu: dict[str, list[float]] = {name: [] for name, _ in commands}
    for round_number in range(args.warmup + args.runs):
        # Interleaved: every round runs each command once, so that a change in the machine's
        # load during the run weighs on all of them alike.
        for name, command in commands:
            wall, used = time_once(shlex.split(command))
            if round_number >= args.warmup:
                runs[name].append(wall)
                cpu[name].append(used)
    load_after = load_average()
    median = {name: statistics.median(times) for name, times in runs.items()}
    best = {name: min(times) for name, times in runs.items()}
    cpu_median = {name: statistics.median(times) for name, times in cpu.items()}
    names = [name for name, _ in commands]
    threads, notmuch = median[names[3]], median[names[4]]
    lines = [
        SECTION, "",
        f"`python benchmarks/read_path.py --count {args.count}`: whole commands, Python "
        f"start-up included (Python from a plain venv with mailthreads installed), on the "
        f"database and notmuch index of the bulk ingest above "
        f"({stored:,} messages, {thread_count:,} threads), timed side by side in one run "
        f"({args.runs} rounds after {args.warmup} warm-up rounds; each round runs every command "
        "once, output to /dev/null).", "",
        "| command | median ms | best ms | median CPU ms |",
        "|---|---:|---:|---:|",
        *(f"| `{name}` | {median[name]:.0f} | {best[name]:.0f} | {cpu_median[name]:.0f} |"
          for name in names),
        "",
        f"`mailthreads threads` takes **{threads / notmuch:.2f}x** the time of "
        f"`notmuch search --limit=50 '*'` (medians) and {threads / median[names[1]]:.2f}x the "
        f"lean script's. Python's start-up alone takes {median[names[0]] / notmuch:.2f}x "
        "notmuch's whole search here; importing click adds "
        f"{median[names[2]] - median[names[0]]:.0f} ms.",
        "",
        recorded(load_before, load_after),
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if not args.no_readme:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
