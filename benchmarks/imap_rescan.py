"""IMAP rescan benchmark: reading a folder again, against a first poll of the same folder.

    python benchmarks/imap_rescan.py                 # 2,000 messages, 3 runs each
    python benchmarks/imap_rescan.py --count 500 --repeat 1 --no-readme

A private Dovecot (tests/dovecot.py) holds N messages to reply addresses, made from the shared
corpora as in imap_poll.py. Each run, timed as whole `mailthreads poll` commands:

- first poll: a new database, the whole folder fetched and filed;
- default domain: a new database whose config still has `[addresses] domain` at its default,
  so every message is fetched and left alone (the poll before the config was right);
- rescan after the fix: the same database with the domain set: the poller sees the changed
  routing settings, reads every message again and files it (the worst case: nothing known);
- rescan, all filed: `poll --rescan` on the first poll's database: every UID was filed
  already, so nothing is fetched (the best case, and a no-op `--rescan`).

The figures go to benchmarks/README.md under "## IMAP rescan" (only that section is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from dovecot import remove, start_dovecot  # noqa: E402
from imap_poll import CONFIG, loadavg, messages, timed  # noqa: E402
from readme_section import write_section  # noqa: E402

SECTION = "## IMAP rescan"
STEPS = ("first poll", "default domain", "rescan after the fix", "rescan, all filed")


def run_once(work: Path, config: Path, env: dict[str, str]) -> dict[str, tuple[float, str]]:
    def poll(database: Path, *args: str) -> tuple[float, str]:
        return timed([sys.executable, "-m", "mailthreads", "-c", str(config), "-d",
                      str(database), "poll", *args], env)

    text = config.read_text()
    unconfigured = text.replace('domain = "blog.example"\n', "")
    results = {}
    filed, left_alone = work / "filed.db", work / "left-alone.db"
    results["first poll"] = poll(filed)
    config.write_text(unconfigured)
    results["default domain"] = poll(left_alone)
    config.write_text(text)
    results["rescan after the fix"] = poll(left_alone)
    results["rescan, all filed"] = poll(filed, "--rescan")
    for database in (filed, left_alone):
        database.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpora", type=Path, default=Path(os.environ.get(
        "MAILTHREADS_CORPORA", ROOT.parent / "shared" / "corpora")))
    parser.add_argument("--no-readme", action="store_true",
                        help="Print the figures only; leave benchmarks/README.md alone")
    args = parser.parse_args()

    mail = messages(args.count, args.corpora)
    work = Path(tempfile.mkdtemp(prefix="mailthreads-rescan-bench-"))
    server = start_dovecot()
    try:
        mailbox = server.add_user()
        mailbox.append_many(mail)
        config = work / "config.toml"
        config.write_text(CONFIG.format(host=mailbox.host, port=mailbox.port,
                                        username=mailbox.username))
        env = {**os.environ, "MAILTHREADS_BENCH_PASSWORD": mailbox.password}
        load_before = loadavg()
        runs = [run_once(work, config, env) for _ in range(args.repeat)]
        load_after = loadavg()
    finally:
        remove(server)
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "messages": args.count,
        "runs": args.repeat,
        "median_seconds": {step: round(statistics.median(run[step][0] for run in runs), 2)
                           for step in STEPS},
        "all_seconds": {step: [round(run[step][0], 2) for run in runs] for step in STEPS},
        "summaries": {step: runs[-1][step][1].strip().splitlines()[0] for step in STEPS},
        "load_before": load_before,
        "load_after": load_after,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if not args.no_readme:
        write_section(SECTION, section(result))
        print(f"figures written to {HERE / 'README.md'}")


def section(result: dict) -> str:
    r = result
    first = r["median_seconds"]["first poll"]
    rows = "\n".join(
        f"| {step} | {r['median_seconds'][step]} | {r['median_seconds'][step] / first:.2f}x "
        f"| `{r['summaries'][step]}` |" for step in STEPS)
    return f"""{SECTION}

`python benchmarks/imap_rescan.py` (defaults: 2,000 messages, 3 runs): one private Dovecot
folder of {r['messages']:,} messages to reply addresses (made as in imap_poll.py). Per run, whole
`mailthreads poll` commands, start-up included: a first poll into a new database; a poll with
`[addresses] domain` still at its default (everything fetched, left alone); the next poll after
setting the domain, which notices the changed routing settings and reads the folder again (the
worst case: no UID filed yet, so every message is fetched and filed); `poll --rescan` on the
first poll's database (the best case: every UID filed already, nothing fetched).

| step | median s | vs first poll | what it printed |
|---|---:|---:|---|
{rows}

Recorded {time.strftime('%Y-%m-%d')} on {r['cpus']} cores ({platform.machine()}, Python
{platform.python_version()}); load average {r['load_before']} before, {r['load_after']} after
(the machine was shared, so single runs vary); all runs in seconds: {r['all_seconds']}.
"""


if __name__ == "__main__":
    main()
