"""`mailthreads backup` of a big database while a real `serve` takes mail the whole time.

    python benchmarks/make_maildir.py /tmp/bench/Maildir --count 20000
    MAILTHREADS_DB=/tmp/bench/mail.db mailthreads ingest /tmp/bench/Maildir
    python benchmarks/backup_live.py /tmp/bench/mail.db --config /tmp/bench/config.toml

Prints, for each step size, the backup's wall time and how many messages serve accepted
(every one must be: a refusal stops the run with an error).
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from smtp_support import Serve, message  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--pages", type=int, nargs="+", default=[1000, 100])
    args = parser.parse_args()
    copy = args.database.with_name("backup-benchmark-copy.db")
    server = Serve(args.database, args.config).start()
    try:
        for pages in args.pages:
            started = time.monotonic()
            backup = subprocess.Popen(
                [sys.executable, "-m", "mailthreads", "-d", str(args.database), "-c",
                 str(args.config), "backup", str(copy), "--pages", str(pages)],
                stdout=subprocess.PIPE, text=True)
            accepted = 0
            with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as smtp:
                while backup.poll() is None:
                    refused = smtp.sendmail(
                        "bench@example.net", ["reply+live@blog.example"],
                        message(sender=f"Bench <b{accepted}@example.net>",
                                to="reply+live@blog.example",
                                message_id=f"bench-{pages}-{accepted}-{time.time()}@example"))
                    if refused:
                        raise SystemExit(f"serve refused a message: {refused}")
                    accepted += 1
            output = backup.communicate()[0].strip()
            print(f"--pages {pages}: {time.monotonic() - started:.2f} s wall, {accepted} "
                  f"messages accepted meanwhile; {output}")
    finally:
        server.close()
        copy.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
