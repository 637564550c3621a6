"""How long `mailthreads forget` takes on a big database (issue 13).

    python benchmarks/forget.py --count 20000 --work /tmp/mailthreads-forget

Builds a maildir of --count messages (benchmarks/make_maildir.py), ingests it into a fresh
database once (kept in --work for later runs), then forgets, each on a fresh copy of that
database, the correspondent with the most messages and one with the fewest, and prints
the seconds `forget --yes --json` reports (the transaction, the full-text merge and the WAL
checkpoint) and the wall time of the whole command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mailthreads(database: Path, *args: str) -> str:
    config = database.parent / "config.toml"  # as bulk_ingest.py: the maildir's domain
    config.write_text('[addresses]\ndomain = "blog.example"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAILTHREADS_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "mailthreads", "-d", str(database), *args],
                          env=env, check=True, capture_output=True, text=True).stdout


def build(work: Path, count: int) -> Path:
    database = work / f"source-{count}.db"
    if database.exists():
        return database
    maildir = work / f"Maildir-{count}"
    if not maildir.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_maildir.py"),
                        str(maildir), "--count", str(count)], check=True)
    started = time.monotonic()
    mailthreads(database, "ingest", str(maildir), "--quiet")
    print(f"ingested {count} messages in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return database


def candidates(database: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(database)
    rows = conn.execute(
        """SELECT (SELECT address FROM correspondent_addresses
                    WHERE correspondent_id = threads.correspondent_id LIMIT 1),
                  SUM(message_count) AS messages
           FROM threads GROUP BY correspondent_id ORDER BY messages DESC""").fetchall()
    conn.close()
    return [rows[0], rows[-1]]  # the most messages, and the fewest


def forget_once(source: Path, work: Path, address: str) -> tuple[dict, float]:
    copy = work / "forget.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{copy}{suffix}")
    started = time.monotonic()
    result = json.loads(mailthreads(copy, "forget", address, "--yes", "--json"))
    return result, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mailthreads-forget"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source = build(args.work, args.count)
    size = source.stat().st_size / 2**20
    for address, messages in candidates(source):
        result, wall = forget_once(source, args.work, address)
        print(f"{args.count} messages ({size:.0f} MiB): forget of a correspondent with "
              f"{messages} messages in {len(result['threads'])} threads "
              f"({result['messages_deleted']} deleted): {result['seconds']:.2f} s "
              f"(whole command {wall:.2f} s)")


if __name__ == "__main__":
    main()
