"""IMAP poller benchmark: `mailthreads poll` against Debian's `mbsync` (isync), same folder.

    python benchmarks/imap_poll.py                  # 10,000 messages, 5 runs each
    python benchmarks/imap_poll.py --count 2000 --repeat 1 --no-readme

Starts a private Dovecot on 127.0.0.1 (tests/dovecot.py, so run as root or as a user that can
run Dovecot), APPENDs N messages made from the shared corpora ($MAILTHREADS_CORPORA, default
../shared/corpora; never copied into the repository) with make_maildir.py's rewriting: new
Message-IDs per replica (threads kept), To rewritten to reply addresses. Then, on that one
folder, each run from scratch:

- `mailthreads poll --once` into a fresh database: connect, UID SEARCH, BODY.PEEK[] in batches,
  the whole pipeline per message (parse, trim, classify, route, thread, FTS), checkpoint commits;
- `mbsync` pulling the same folder into a fresh maildir (its defaults, FSync included).

Both are timed as whole commands, start-up included, and the median of the runs is reported
with the rate, the ratio and the machine's load. The figures go to benchmarks/README.md, under
"## IMAP poller" (only that section is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from dovecot import remove, start_dovecot  # noqa: E402
from make_maildir import corpus_messages, rewrite  # noqa: E402
from readme_section import write_section  # noqa: E402

SECTION = "## IMAP poller"
CONFIG = """\
[addresses]
domain = "blog.example"

[author]
name = "Blog Author"
addresses = ["me@blog.example"]

[posts]
create_on_first_reply = true

[[imap]]
name = "bench"
host = "{host}"
port = {port}
security = "none"
username = "{username}"
password_env = "MAILTHREADS_BENCH_PASSWORD"
folders = ["INBOX"]
sent_folder = ""
"""
MBSYNC = """\
IMAPAccount bench
Host {host}
Port {port}
User {username}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :remote:INBOX
Near :local:INBOX
Sync Pull
Create Near
Expunge None
SyncState *
"""


def messages(count: int, corpora: Path, posts: int = 300) -> list[bytes]:
    base = [raw for raw in corpus_messages(corpora) if b"\0" not in raw]
    made: list[bytes] = []
    replica = 0
    while len(made) < count:
        for raw in base:
            if len(made) == count:
                break
            # IMAP wants CRLF line ends in APPEND literals.
            made.append(re.sub(rb"\r?\n", b"\r\n", rewrite(raw, replica, posts)))
        replica += 1
    return made


CPU_SECONDS: dict[str, list[float]] = {}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str], name: str = "",
          cwd: Path | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of a command; its CPU seconds (its children's included) go to
    CPU_SECONDS[name]."""
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    CPU_SECONDS.setdefault(name, []).append(round(children_cpu() - cpu, 2))
    return elapsed, done.stdout


def loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpora", type=Path, default=Path(os.environ.get(
        "MAILTHREADS_CORPORA", ROOT.parent / "shared" / "corpora")))
    parser.add_argument("--no-readme", action="store_true",
                        help="Print the figures only; leave benchmarks/README.md alone")
    parser.add_argument("--old", type=Path, help="also time `mailthreads poll` from this "
                        "checkout (e.g. a `git archive` of main), interleaved with the others")
    args = parser.parse_args()
    if not shutil.which("mbsync"):
        sys.exit("mbsync is not installed: apt-get install isync")

    mail = messages(args.count, args.corpora)
    size = sum(len(raw) for raw in mail)
    work = Path(tempfile.mkdtemp(prefix="mailthreads-imap-bench-"))
    server = start_dovecot()
    try:
        mailbox = server.add_user()
        start = time.perf_counter()
        mailbox.append_many(mail)
        append_seconds = time.perf_counter() - start
        assert len(mailbox.uids()) == args.count

        (work / "config.toml").write_text(CONFIG.format(
            host=mailbox.host, port=mailbox.port, username=mailbox.username))
        env = {**os.environ, "MAILTHREADS_BENCH_PASSWORD": mailbox.password}
        load_before = loadavg()
        ours, theirs, olds, summary = [], [], [], ""
        for run in range(args.repeat):
            for code, times in [(ROOT, ours), *([(args.old, olds)] if args.old else [])]:
                database = work / f"run{run}.db"
                # -P and a cwd of its own: the code on PYTHONPATH runs (-m would put the
                # directory this runs from first on sys.path, and --old would time it again).
                seconds, out = timed([sys.executable, "-P", "-m", "mailthreads", "-c",
                                      str(work / "config.toml"), "-d", str(database), "poll"],
                                     {**env, "PYTHONPATH": str(code)}, str(code), cwd=work)
                summary = summary or out
                times.append(seconds)
                database.unlink()
                print(f"{code}: {seconds:.2f} s, {CPU_SECONDS[str(code)][-1]} CPU s", flush=True)
            maildir = work / f"maildir{run}"
            maildir.mkdir()
            (work / "mbsyncrc").write_text(MBSYNC.format(
                host=mailbox.host, port=mailbox.port, username=mailbox.username,
                password=mailbox.password, maildir=maildir))
            seconds, _ = timed(["mbsync", "-q", "-c", str(work / "mbsyncrc"), "bench"], env,
                               "mbsync")
            theirs.append(seconds)
            print(f"mbsync: {seconds:.2f} s, {CPU_SECONDS['mbsync'][-1]} CPU s", flush=True)
            synced = sum(1 for _ in (maildir / "INBOX" / "new").iterdir()) + \
                sum(1 for _ in (maildir / "INBOX" / "cur").iterdir())
            assert synced == args.count, f"mbsync synced {synced} of {args.count}"
            shutil.rmtree(maildir)
        load_after = loadavg()
    finally:
        remove(server)
        shutil.rmtree(work, ignore_errors=True)

    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    result = {
        "messages": args.count,
        "megabytes": round(size / 1e6, 1),
        "runs": args.repeat,
        "mailthreads_median_seconds": round(ours_s, 2),
        "mailthreads_median_per_second": round(args.count / ours_s),
        "mailthreads_best_per_second": round(args.count / min(ours)),
        "mbsync_median_seconds": round(theirs_s, 2),
        "mbsync_median_per_second": round(args.count / theirs_s),
        "mbsync_best_per_second": round(args.count / min(theirs)),
        "ratio_median": round(ours_s / theirs_s, 1),
        "ratio_best": round(min(ours) / min(theirs), 1),
        "append_seconds": round(append_seconds, 1),
        "summary": summary.strip().splitlines()[0] if summary.strip() else "",
        "load_before": load_before,
        "load_after": load_after,
        "cpus": os.cpu_count(),
        "all_mailthreads_seconds": [round(s, 2) for s in ours],
        "all_mbsync_seconds": [round(s, 2) for s in theirs],
        "all_old_seconds": [round(s, 2) for s in olds],
        "cpu_seconds": CPU_SECONDS,
    }
    print(json.dumps(result, indent=2))
    if not args.no_readme:
        write_section(SECTION, section(result))
        print(f"figures written to {HERE / 'README.md'}")


def section(result: dict) -> str:
    r = result
    dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
    mbsync = subprocess.run(["mbsync", "--version"], capture_output=True, text=True).stdout
    return f"""{SECTION}

`python benchmarks/imap_poll.py --count {r['messages']} --repeat {r['runs']}` ({r['runs']} runs of \
each tool, interleaved): a private Dovecot on 127.0.0.1 holds {r['messages']:,} messages
({r['megabytes']} MB) in INBOX, made from the shared corpora with make_maildir.py's rewriting
(new Message-IDs per replica, reply-address recipients). Every run starts from scratch:

- `mailthreads poll --once` into a new database: UID SEARCH, BODY.PEEK[] in batches of 200,
  the whole pipeline on every message (parse, trim, classify, route, thread, full-text index;
  the analysis in one worker process per core, one batch analysed while the next is fetched
  and the last one filed), one SQLite commit (synchronous=FULL) per batch with its checkpoint;
- `mbsync` (isync) pulling the same folder into a new maildir, with its defaults (FSync on).

Whole commands are timed, start-up included.

| tool | median s | median msg/s | best msg/s |
|---|---:|---:|---:|
| `mailthreads poll --once` | {r['mailthreads_median_seconds']} \
| {r['mailthreads_median_per_second']:,} | {r['mailthreads_best_per_second']:,} |
| `mbsync` to a maildir | {r['mbsync_median_seconds']} \
| {r['mbsync_median_per_second']:,} | {r['mbsync_best_per_second']:,} |

The poller takes {r['ratio_median']}x mbsync's time by the medians ({r['ratio_best']}x by the
best runs): mbsync only copies bytes into files, the poller does the whole ingest. The poll printed
`{r['summary']}` (the duplicates are corpus messages present twice with the same Message-ID,
sender and body, e.g. notmuch's In-Reply-To and References variants of one thread).

Recorded {time.strftime('%Y-%m-%d')} on {r['cpus']} cores ({platform.machine()}, Python
{platform.python_version()}, Dovecot {dovecot.split(' (')[0].strip()}, {mbsync.strip()}). The
machine was shared with other work: load average {r['load_before']} before,
{r['load_after']} after, so single runs vary; all runs in seconds: mailthreads
{r['all_mailthreads_seconds']}, mbsync {r['all_mbsync_seconds']}. APPENDing the messages took
{r['append_seconds']} s (not part of the figures). CPU seconds (user + system, the command and
its children; Dovecot's not included): {cpu_lines(r)}.
"""


def cpu_lines(result: dict) -> str:
    cpu = result.get("cpu_seconds", {})
    named = [("mailthreads", cpu.get(str(ROOT), [])), ("mbsync", cpu.get("mbsync", []))]
    olds = [times for code, times in cpu.items() if code not in (str(ROOT), "mbsync")]
    if olds:
        named.append((f"the checkout before (`--old`: {result['all_old_seconds']} s wall)",
                      olds[0]))
    return "; ".join(f"{name} {times}" for name, times in named if times)


if __name__ == "__main__":
    main()
