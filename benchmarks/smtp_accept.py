"""SMTP listener benchmark: `mailthreads serve` against Postfix's own smtpd, same load.

    python benchmarks/smtp_accept.py                     # 10,000 messages, 3 rounds
    python benchmarks/smtp_accept.py --count 2000 --repeat 1 --no-readme

Postfix's `smtp-source` drives both servers the same way: 20 parallel sessions, 12 KB
messages, one message per connection (its default), HELO, MAIL, RCPT, DATA, QUIT. Each round
runs both servers, in alternating order, on loopback:

- Postfix: a private instance (tests/smtp_support.py: `postfix -c DIR`, no chroot), relaying the
  reply domain and putting every message on hold in its queue: smtpd and cleanup write and
  fsync the queue file before the 250, as for any mail; nothing is delivered.
- mailthreads: `mailthreads serve` on a new database: 250 once the raw message and its pending
  delivery are committed (synchronous=FULL, group commit); its filer process files them.

Two workloads: "one thread", the recipient `reply+bench@blog.example` for every message (all
10,000 land in one thread); "spread" (smtp-source -N on the catch-all domain), a new post and
thread for every message, which is closer to a blog's mail. Each run is preceded by 500
messages of warm-up (Postfix starts its smtpd processes on demand; Python warms its caches).

Measured: messages per second (smtp-source's wall time for the N messages), the ratio to
Postfix, the server's peak memory (the peak of the summed PSS of its processes, sampled every
0.1 s; for mailthreads also each process's VmHWM), CPU per message, and the machine's load
(load average, and the share of CPU time used by other processes during the run). Nothing
lost: smtp-source stops at the first reply that is not 2xx; afterwards every message must be in
the database or in Postfix's hold queue, and the filer must have filed each one once (the
wait for it is bounded by --filing-wait: with "one thread" the pipeline's per-message work
grows with the thread, so filing 10,000 messages into one thread takes minutes).

The median of the rounds goes to benchmarks/README.md under "## SMTP listener" (only that
section is replaced), all runs to benchmarks/smtp_accept.json (neither with --no-readme).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from smtp_support import PostfixInstance, Serve, query, wait_for, write_config  # noqa: E402

sys.path.insert(0, str(HERE))
from readme_section import write_section  # noqa: E402

SECTION = "## SMTP listener"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
WORKLOADS = {
    "one thread": ["-t", "reply+bench@blog.example"],
    "spread": ["-N", "-t", "bench@replies.blog.example"],
}
WARMUP = 500
HEADER = (
    "| workload | mailthreads msg/s | Postfix msg/s | ratio | mailthreads peak memory "
    "| Postfix peak memory | mailthreads CPU ms/msg (listener + filer) | Postfix CPU ms/msg "
    "| filing done after the run |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    server: str
    workload: str
    messages: int
    seconds: float
    per_second: float
    peak_memory_mb: float
    machine_busy: float  # share of all CPUs busy during the run, 0..1
    others_busy: float  # of which not the server under test nor smtp-source
    server_cpu_ms: float  # per message, all the server's processes
    detail: dict = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=12_288, help="message body bytes")
    parser.add_argument("--workload", choices=[*WORKLOADS, "both"], default="both")
    parser.add_argument("--filing-wait", type=float, default=120,
                        help="seconds to wait for the filer to finish after a run")
    parser.add_argument("--no-readme", action="store_true",
                        help="Print the figures only; leave benchmarks/README.md alone")
    parser.add_argument("--readme-only", action="store_true",
                        help="Write the README section again from benchmarks/smtp_accept.json")
    args = parser.parse_args()
    if args.readme_only:
        recorded = json.loads((HERE / "smtp_accept.json").read_text())
        write_section(SECTION, section(recorded["summary"]))
        return
    if os.geteuid() != 0:
        sys.exit("run as root: the Postfix baseline needs a private Postfix instance")
    for tool in (SMTP_SOURCE, "postfix"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: apt-get install postfix")

    workloads = list(WORKLOADS) if args.workload == "both" else [args.workload]
    runs: list[Run] = []
    load_before = loadavg()
    for workload in workloads:
        for round_number in range(args.repeat):
            order = ["postfix", "mailthreads"] if round_number % 2 == 0 else \
                ["mailthreads", "postfix"]
            for server in order:
                run = (run_postfix if server == "postfix" else run_mailthreads)(workload, args)
                print(json.dumps(asdict(run)), flush=True)
                runs.append(run)
    load_after = loadavg()

    result = summarise(runs, workloads, args, load_before, load_after)
    print(json.dumps(result, indent=2))
    if not args.no_readme:
        (HERE / "smtp_accept.json").write_text(json.dumps(
            {"summary": result, "runs": [asdict(r) for r in runs]}, indent=2) + "\n")
        write_section(SECTION, section(result))
        print(f"figures written to {HERE / 'README.md'}")


# -- the two servers --------------------------------------------------------------------------


def run_postfix(workload: str, args: argparse.Namespace) -> Run:
    with PostfixInstance() as postfix:
        source(postfix.port, WARMUP, workload, args)
        wait_for(lambda: postfix.queue_count("hold") == WARMUP, "the warm-up to be held", 60)
        tree = ProcessTree(lambda: descendants(postfix.master_pid()))
        seconds, busy, source_cpu = measured(tree, lambda: source(
            postfix.port, args.count, workload, args))
        held = wait_for(lambda: postfix.queue_count("hold") == WARMUP + args.count and
                        postfix.queue_count("hold"), "every message to be held", 120)
        assert held == WARMUP + args.count, f"Postfix holds {held} messages"
        server_cpu = tree.cpu_delta()
    return Run("postfix", workload, args.count, round(seconds, 2),
               round(args.count / seconds), round(tree.peak_pss / 1e6, 1), round(busy, 2),
               round(max(0.0, busy - (server_cpu + source_cpu) / seconds / ncpu()), 2),
               round(server_cpu / args.count * 1000, 3))


def run_mailthreads(workload: str, args: argparse.Namespace) -> Run:
    work = Path(tempfile.mkdtemp(prefix="mailthreads-smtp-bench-"))
    try:
        database = work / "bench.db"
        with Serve(database, write_config(work, listener={"max_connections": 100})) as serve:
            source(serve.port, WARMUP, workload, args)
            wait_for(lambda: filed(database) == WARMUP, "the warm-up to be filed", 600)
            [filer] = serve.children()
            tree = ProcessTree(lambda: [serve.pid, filer])
            seconds, busy, source_cpu = measured(tree, lambda: source(
                serve.port, args.count, workload, args))
            cpu = {pid: tree.cpu_delta(pid) for pid in (serve.pid, filer)}
            high_water = {pid: vm_hwm(pid) for pid in (serve.pid, filer)}
            total = WARMUP + args.count
            # Every accepted message is in the database the moment it got its 250...
            deliveries = query(database, "SELECT COUNT(*) FROM deliveries")[0][0]
            assert deliveries == total, f"{deliveries} deliveries for {total} messages"
            # ...and the filer files each of them once, in the background.
            started = time.monotonic()
            try:
                wait_for(lambda: filed(database) == total, "every message to be filed",
                         args.filing_wait)
                filing_lag: float | None = time.monotonic() - started
            except AssertionError:
                filing_lag = None
            rows = query(database, "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages")[0]
            stored = query(database, "SELECT COUNT(*) FROM deliveries WHERE status = 'stored'")
            assert rows[0] == rows[1] == stored[0][0], f"messages, distinct ids: {rows}"
            assert filing_lag is None or rows[0] == total, f"{rows[0]} of {total} filed"
            filed_in_wait = rows[0]
            serve.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    server_cpu = sum(cpu.values())
    return Run("mailthreads", workload, args.count, round(seconds, 2),
               round(args.count / seconds), round(tree.peak_pss / 1e6, 1), round(busy, 2),
               round(max(0.0, busy - (server_cpu + source_cpu) / seconds / ncpu()), 2),
               round(server_cpu / args.count * 1000, 3),
               {"listener_peak_rss_mb": round(high_water[serve.pid] / 1e6, 1),
                "filer_peak_rss_mb": round(high_water[filer] / 1e6, 1),
                "listener_cpu_ms": round(cpu[serve.pid] / args.count * 1000, 3),
                "filer_cpu_ms_during_run": round(cpu[filer] / args.count * 1000, 3),
                "filing_done_seconds_after_run": None if filing_lag is None
                else round(filing_lag, 1),
                "filed_when_measured": filed_in_wait, "accepted": total})


def filed(database: Path) -> int:
    return query(database, "SELECT COUNT(*) FROM deliveries WHERE status != 'pending'")[0][0]


def source(port: int, count: int, workload: str, args: argparse.Namespace) -> None:
    result = subprocess.run(
        [SMTP_SOURCE, "-s", str(args.sessions), "-m", str(count), "-l", str(args.size),
         "-f", "reader@example.com", *WORKLOADS[workload], f"127.0.0.1:{port}"],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"smtp-source failed ({result.returncode}): {result.stderr.strip()}")


def measured(tree: ProcessTree, work) -> tuple[float, float, float]:
    """Wall seconds, machine busy share, smtp-source CPU seconds for ``work()``."""
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = cpu_times()
    tree.start()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    tree.stop()
    busy_after = cpu_times()
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    source_cpu = (after_children.ru_utime + after_children.ru_stime
                  - before_children.ru_utime - before_children.ru_stime)
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return seconds, busy, source_cpu


# -- /proc ------------------------------------------------------------------------------------


class ProcessTree:
    """CPU time and summed PSS of a set of processes, sampled while the load runs.

    CPU counts each process's own time and that of its children it has reaped (Postfix's
    smtpd and cleanup processes exit after a hundred uses and new ones start): the sum over
    the processes alive at the end, less the sum over those alive at the start.
    """

    def __init__(self, pids):
        self.pids = pids
        self.peak_pss = 0
        self._start_cpu: dict[int, float] = {}
        self._end_cpu: dict[int, float] = {}
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._start_cpu = {pid: proc_cpu(pid) for pid in self.pids()}
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        assert self._thread is not None
        self._thread.join()
        self._end_cpu = {pid: proc_cpu(pid) for pid in self.pids()}
        self._record()

    def _sample(self) -> None:
        while self._running:
            self._record()
            time.sleep(0.1)

    def _record(self) -> None:
        self.peak_pss = max(self.peak_pss, sum(proc_pss(pid) for pid in self.pids()))

    def cpu_delta(self, pid: int | None = None) -> float:
        if pid is not None:
            return self._end_cpu.get(pid, 0.0) - self._start_cpu.get(pid, 0.0)
        return sum(self._end_cpu.values()) - sum(self._start_cpu.values())


def descendants(root: int | None) -> list[int]:
    if root is None:
        return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def proc_cpu(pid: int) -> float:
    """Seconds of CPU: the process's own (utime, stime) and its reaped children's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / TICK


def proc_pss(pid: int) -> int:
    """Proportional set size: shared pages (libraries, Postfix's many smtpd) counted once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ncpu() -> int:
    return os.cpu_count() or 1


# -- the figures ------------------------------------------------------------------------------


def summarise(runs: list[Run], workloads: list[str], args: argparse.Namespace,
              load_before: str, load_after: str) -> dict:
    def median(server: str, workload: str, key: str) -> float:
        return statistics.median(getattr(r, key) for r in runs
                                 if r.server == server and r.workload == workload)

    def median_detail(workload: str, key: str) -> float:
        return statistics.median(r.detail[key] for r in runs
                                 if r.server == "mailthreads" and r.workload == workload)

    def filing(workload: str) -> str:
        """Median seconds the filer needed after a run, or how far it got in the wait."""
        ours = [r.detail for r in runs if r.server == "mailthreads" and r.workload == workload]
        done = [d["filing_done_seconds_after_run"] for d in ours
                if d["filing_done_seconds_after_run"] is not None]
        if len(done) == len(ours):
            return f"{statistics.median(done)} s"
        worst = min(ours, key=lambda d: d["filed_when_measured"])
        return (f"not within {args.filing_wait:.0f} s (at least "
                f"{worst['filed_when_measured']:,} of {worst['accepted']:,} filed)")

    table = {}
    for workload in workloads:
        ours, theirs = (median("mailthreads", workload, "per_second"),
                        median("postfix", workload, "per_second"))
        table[workload] = {
            "mailthreads_per_second": round(ours),
            "postfix_per_second": round(theirs),
            "ratio": round(ours / theirs, 2),
            "mailthreads_peak_memory_mb": median("mailthreads", workload, "peak_memory_mb"),
            "postfix_peak_memory_mb": median("postfix", workload, "peak_memory_mb"),
            "mailthreads_cpu_ms_per_message": median("mailthreads", workload, "server_cpu_ms"),
            "postfix_cpu_ms_per_message": median("postfix", workload, "server_cpu_ms"),
            "listener_peak_rss_mb": median_detail(workload, "listener_peak_rss_mb"),
            "filer_peak_rss_mb": median_detail(workload, "filer_peak_rss_mb"),
            "listener_cpu_ms": median_detail(workload, "listener_cpu_ms"),
            "filer_cpu_ms_during_run": median_detail(workload, "filer_cpu_ms_during_run"),
            "filing_done_seconds_after_run": filing(workload),
            "machine_busy": median("mailthreads", workload, "machine_busy"),
            "others_busy_mailthreads_runs": median("mailthreads", workload, "others_busy"),
            "others_busy_postfix_runs": median("postfix", workload, "others_busy"),
            "all_mailthreads_per_second": [r.per_second for r in runs if
                                           r.server == "mailthreads" and r.workload == workload],
            "all_postfix_per_second": [r.per_second for r in runs if
                                       r.server == "postfix" and r.workload == workload],
        }
    postconf = subprocess.run(["postconf", "-h", "mail_version"], capture_output=True,
                              text=True).stdout.strip()
    return {
        "messages": args.count, "sessions": args.sessions, "body_bytes": args.size,
        "rounds": args.repeat, "workloads": table, "load_before": load_before,
        "load_after": load_after, "cpus": ncpu(), "postfix": postconf,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
    }


def section(result: dict) -> str:
    rows = []
    for workload, w in result["workloads"].items():
        rows.append(f"| {workload} | {w['mailthreads_per_second']:,} | "
                    f"{w['postfix_per_second']:,} | **{w['ratio']}x** | "
                    f"{w['mailthreads_peak_memory_mb']} MB | {w['postfix_peak_memory_mb']} MB | "
                    f"{w['listener_cpu_ms']} + {w['filer_cpu_ms_during_run']} | "
                    f"{w['postfix_cpu_ms_per_message']} | "
                    f"{w['filing_done_seconds_after_run']} |")
    runs = "; ".join(f"{workload}: mailthreads {w['all_mailthreads_per_second']}, Postfix "
                     f"{w['all_postfix_per_second']}"
                     for workload, w in result["workloads"].items())
    peaks = "; ".join(f"{workload}: listener {w['listener_peak_rss_mb']} MB, filer "
                      f"{w['filer_peak_rss_mb']} MB" for workload, w in result["workloads"].items())
    others = "; ".join(f"{workload}: {round(w['others_busy_mailthreads_runs'] * 100)}% during "
                       f"mailthreads runs, {round(w['others_busy_postfix_runs'] * 100)}% during "
                       f"Postfix runs" for workload, w in result["workloads"].items())
    return f"""{SECTION}

`python benchmarks/smtp_accept.py` (as root; defaults: {result['messages']:,} messages per run,
median of {result['rounds']} rounds, both workloads): Postfix's `smtp-source` with
{result['sessions']} parallel sessions and {result['body_bytes']:,}-byte bodies, one message per
connection, against `mailthreads serve` (250 after a durable SQLite commit, synchronous=FULL,
shared by concurrent sessions) and, in the same round, a private Postfix whose smtpd and
cleanup write and fsync each message into its queue (on hold, nothing delivered). "one thread":
every message to `reply+bench@blog.example`, so all of them land in one thread; "spread":
`smtp-source -N` on the catch-all domain, a new post and thread per message. Nothing lost:
smtp-source stops at the first non-2xx reply; after each run every accepted message was in the
database (its raw bytes and delivery, committed before the 250) or in Postfix's hold queue, and
every message the filer had filed was filed once.

{HEADER}
{chr(10).join(rows)}

Peak memory: the peak of the summed proportional set size (PSS: shared pages counted once) of
the server's processes, sampled every 0.1 s: mailthreads' listener and filer; Postfix's
master, smtpd, cleanup and the rest of its instance. Peak RSS (VmHWM) of mailthreads'
processes alone: {peaks}.
The filer files in the background at the same time (parsing, threading, full-text index) and
catches up after the run ("filing done after the run"); accepting does not wait for it.
Filing costs the same per message however long the thread grows (the thread's counters are
updated incrementally).

Recorded {result['date']} on {result['cpus']} cores ({platform.machine()}, Python
{result['python']}, Postfix {result['postfix']}), load generator on the same cores. Load
average before {result['load_before']}, after {result['load_after']}; CPU used by other
processes (not the server under test, not smtp-source): {others}. All runs, msg/s: {runs}.
"""


if __name__ == "__main__":
    main()
