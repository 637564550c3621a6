"""Bulk ingest of a generated maildir, side by side with `notmuch new`, plus read-path timings.

    python benchmarks/bulk_ingest.py --count 100000 --work /tmp/mailthreads-bench

Builds the maildir with make_maildir.py (once), then, on the same files:
- `mailthreads ingest` into a fresh database (the whole pipeline: parsing, trimming,
  classification, threading, FTS), wall time and peak memory;
- `notmuch new` into a fresh notmuch database;
- `mailthreads threads` / `mailthreads show` against `notmuch search` / `notmuch show`,
  median wall time of repeated runs, Python start-up included.
Writes the "## Bulk ingest" section of benchmarks/README.md (--no-readme to only print it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from readme_section import load_average, recorded, write_section  # noqa: E402

SECTION = "## Bulk ingest"


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak resident memory (KiB) of one command and its children."""
    elapsed, peak, _ = run_cpu(command, env)
    return elapsed, peak


def run_cpu(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Wall seconds, peak resident memory (KiB) and CPU seconds (user + system) of one
    command and its children."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def median_time(command: list[str], env: dict[str, str], repeat: int) -> float:
    run(command, env)  # warm the page cache
    return statistics.median(run(command, env)[0] for _ in range(repeat))


def ratios(rows: list[tuple[str, float, float, int, float]]) -> list[str]:
    """How mailthreads compares with each peer measured in the same run."""
    ours = rows[0]
    return [f"mailthreads against {name.split()[0]}: {seconds / ours[1]:.2f}x its speed "
            f"(wall time), {ours[4] / cpu:.2f}x its CPU seconds." for name, seconds, _, _, cpu
            in rows[1:]] + ([""] if len(rows) > 1 else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mailthreads-bench"))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--skip-notmuch", action="store_true")
    parser.add_argument("--skip-mu", action="store_true")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    maildir = args.work / f"Maildir-{args.count}"
    if not maildir.exists():
        subprocess.run([sys.executable, HERE / "make_maildir.py", maildir, "--count",
                        str(args.count)], check=True)
    files = sum(1 for _ in (maildir / "cur").iterdir())
    load_before = load_average()
    # The console script beside this interpreter, not a version manager's shim in front of it.
    beside = Path(sys.executable).with_name("mailthreads")
    mailthreads = str(beside) if beside.exists() else shutil.which("mailthreads")
    if not mailthreads:
        sys.exit("mailthreads is not installed")
    config = args.work / "config.toml"
    # The posts are created by their first replies, as before issue 12 (now a config choice).
    config.write_text('[addresses]\ndomain = "blog.example"\n\n[posts]\n'
                      'create_on_first_reply = true\n')
    database = args.work / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "MAILTHREADS_DB": str(database), "MAILTHREADS_CONFIG": str(config)}
    # Time commands as installed, with their bytecode cached (an editable install writes it on
    # the first run, which is the warm-up run below).
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    rows = []
    seconds, peak, cpu = run_cpu([mailthreads, "ingest", "--quiet", str(maildir)], env)
    stored = sqlite3.connect(database).execute("select count(*) from messages").fetchone()[0]
    rows.append(("mailthreads ingest", seconds, files / seconds, peak, cpu))
    print(f"mailthreads ingest: {files} files, {stored} stored, {seconds:.1f} s, "
          f"{files / seconds:.0f} msg/s, {cpu:.1f} CPU s, peak {peak / 1024:.0f} MiB",
          flush=True)

    if not args.skip_mu and shutil.which("mu"):
        # mu (maildir-utils) indexes the same files into its Xapian database, from scratch.
        muhome = args.work / "mu"
        shutil.rmtree(muhome, ignore_errors=True)
        subprocess.run(["mu", "init", f"--maildir={maildir}", f"--muhome={muhome}"],
                       check=True, stdout=subprocess.DEVNULL)
        seconds, peak, cpu = run_cpu(["mu", "index", f"--muhome={muhome}"])
        rows.append(("mu index", seconds, files / seconds, peak, cpu))
        print(f"mu index: {seconds:.1f} s, {files / seconds:.0f} msg/s, {cpu:.1f} CPU s, "
              f"peak {peak / 1024:.0f} MiB", flush=True)

    notmuch_env = None
    if not args.skip_notmuch and shutil.which("notmuch"):
        shutil.rmtree(maildir / ".notmuch", ignore_errors=True)
        notmuch_config = args.work / "notmuch-config"
        notmuch_config.write_text(f"[database]\npath={maildir}\n[user]\nname=Bench\n"
                                  "primary_email=me@blog.example\n[new]\ntags=inbox;\n"
                                  "[maildir]\nsynchronize_flags=false\n")
        notmuch_env = {**os.environ, "NOTMUCH_CONFIG": str(notmuch_config)}
        seconds, peak, cpu = run_cpu(["notmuch", "new", "--quiet"], notmuch_env)
        rows.append(("notmuch new", seconds, files / seconds, peak, cpu))
        print(f"notmuch new: {seconds:.1f} s, {files / seconds:.0f} msg/s, {cpu:.1f} CPU s, "
              f"peak {peak / 1024:.0f} MiB", flush=True)

    conn = sqlite3.connect(database)
    thread_id, thread_count = conn.execute(
        "select (select id from threads order by last_activity desc limit 1), count(*) "
        "from threads").fetchone()
    message_id = conn.execute("select message_id from messages where thread_id = ? limit 1",
                              (thread_id,)).fetchone()[0]
    reads = [
        ("mailthreads threads", [mailthreads, "threads"], env),
        ("mailthreads threads -n 0", [mailthreads, "threads", "-n", "0"], env),
        (f"mailthreads show {thread_id}", [mailthreads, "show", str(thread_id),
                                           "--keep-unread"], env),
    ]
    if notmuch_env:
        reads += [
            ("notmuch search '*'", ["notmuch", "search", "*"], notmuch_env),
            ("notmuch search --limit=50 '*'", ["notmuch", "search", "--limit=50", "*"],
             notmuch_env),
            ("notmuch show id:...", ["notmuch", "show", f"id:{message_id}"], notmuch_env),
        ]
    timings = [(name, median_time(command, e, args.repeat)) for name, command, e in reads]
    startup = median_time([sys.executable, "-c", "pass"], env, args.repeat)

    load_after = load_average()
    lines = [
        SECTION, "",
        f"`python benchmarks/bulk_ingest.py --count {args.count}`: a maildir of {files:,} "
        "messages built by `make_maildir.py` from the shared corpora (Message-IDs rewritten per",
        "replica so thread structure is kept, recipients rewritten to the reply addresses of 300",
        "posts). `mailthreads ingest` runs the whole pipeline (parse, trim, classify, route,",
        "thread, full-text index; analysis in one worker process per core) into a new database;",
        "`mu index` (maildir-utils) and `notmuch new` index the same files into new databases",
        "of their own. Peak memory is the largest resident set of the command or any of its",
        "children; CPU seconds are user + system time of the command and its children.", "",
        f"{stored:,} messages stored ({files - stored:,} are duplicates or quarantined: the "
        f"corpora hold some messages twice); {thread_count:,} threads.", "",
        "| bulk ingest | seconds | messages/s | CPU seconds | peak memory |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {seconds:.1f} | {rate:,.0f} | {cpu:.1f} | {peak / 1024:.0f} MiB |"
          for name, seconds, rate, peak, cpu in rows),
        "",
        *ratios(rows),
        f"Read commands on that database, median of {args.repeat} runs after a warm-up run, "
        "output to /dev/null, Python start-up included (`threads` shows the newest 50 in its "
        f"table; `-n 0` lists all {thread_count:,}). For scale, `python3 -c pass` took "
        f"{startup * 1000:.0f} ms here:", "",
        "| read command | median wall time |",
        "|---|---:|",
        *(f"| `{name}` | {seconds * 1000:.0f} ms |" for name, seconds in timings),
        "",
        recorded(load_before, load_after),
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if not args.no_readme:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
