"""Where bulk ingest spends its CPU: each analysis stage in-process, and the split between the
main process (reading, filing, full-text index, commits) and the analysis workers.

    python benchmarks/profile_stages.py /tmp/mailthreads-bench/Maildir-20000 [--sample 3000]

The stages (parse, HTML to text, trim, classify, ancestry, pickling the result for the trip
back from a worker) are timed on the first ``--sample`` messages of the maildir, in this
process, in CPU milliseconds per message. Then ``mailthreads ingest`` runs on the whole maildir
into a new database, and its CPU seconds are reported for the main process and for its
analysis workers. Prints a Markdown table for benchmarks/README.md.

    python benchmarks/profile_stages.py MAILDIR --compare /tmp/base --rounds 3

only runs the ingest, with the code in /tmp/base (say ``git archive main | tar -x -C
/tmp/base``) and with this checkout in turn, and prints the before/after table of its split.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mailthreads.mail.analysis import analysis_of  # noqa: E402
from mailthreads.mail.classify import classify  # noqa: E402
from mailthreads.mail.cleanup import html_to_text, split_reply  # noqa: E402
from mailthreads.mail.limits import Limits  # noqa: E402
from mailthreads.mail.parse import parse  # noqa: E402
from mailthreads.mail.threader import ancestry  # noqa: E402

STAGES = ("parse", "HTML to text", "trim", "classify", "ancestry", "pickle result")

# Run inside the ingest process: CPU seconds of this process and of its (joined) workers.
_SPLIT = """
import atexit, resource, runpy, sys
def report():
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write("SPLIT %.2f %.2f\\n" % (own.ru_utime + own.ru_stime,
                                             workers.ru_utime + workers.ru_stime))
atexit.register(report)
sys.argv = ["mailthreads", "ingest", "--quiet", sys.argv[1]]
runpy.run_module("mailthreads", run_name="__main__")
"""


def stage_times(raws: list[bytes]) -> dict[str, float]:
    """CPU seconds per stage over ``raws``."""
    limits = Limits()
    spent = dict.fromkeys(STAGES, 0.0)
    clock = time.process_time
    for raw in raws:
        start = clock()
        try:
            parsed = parse(raw, limits)
        except Exception:  # quarantined: only its parse counts
            spent["parse"] += clock() - start
            continue
        parsed_at = clock()
        text = parsed.text or (html_to_text(parsed.html) if parsed.html else "")
        text_at = clock()
        split_reply(text)
        trimmed_at = clock()
        classify(parsed.message, None, limits.max_mime_parts)
        classified_at = clock()
        ancestry(parsed.message_id, parsed.in_reply_to, parsed.references)
        ancestry_at = clock()
        analysis = analysis_of(parsed, None, limits.max_mime_parts)
        pickle_start = clock()
        pickle.dumps(analysis)
        done = clock()
        spent["parse"] += parsed_at - start
        spent["HTML to text"] += text_at - parsed_at
        spent["trim"] += trimmed_at - text_at
        spent["classify"] += classified_at - trimmed_at
        spent["ancestry"] += ancestry_at - classified_at
        spent["pickle result"] += done - pickle_start
    return spent


def ingest_split(maildir: Path, code: Path = HERE.parent) -> tuple[float, float, float]:
    """Wall seconds, main-process CPU seconds and worker CPU seconds of one ingest, with the
    mailthreads in ``code`` (this checkout by default)."""
    with tempfile.TemporaryDirectory(prefix="mailthreads-profile-") as work:
        config = Path(work) / "config.toml"
        # As bulk_ingest.py: posts are created by their first replies, so that messages are
        # filed (with the default, every one would be held for an unknown post).
        config.write_text('[addresses]\ndomain = "blog.example"\n\n[posts]\n'
                          'create_on_first_reply = true\n')
        env = {**os.environ, "MAILTHREADS_DB": str(Path(work) / "bench.db"),
               "MAILTHREADS_CONFIG": str(config),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(code),
                                                           os.environ.get("PYTHONPATH")]))}
        start = time.perf_counter()
        # -P and cwd: the code on PYTHONPATH is imported, not the directory run from.
        done = subprocess.run([sys.executable, "-P", "-c", _SPLIT, str(maildir.absolute())],
                              env=env, cwd=work, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    line = next(line for line in done.stderr.splitlines() if line.startswith("SPLIT "))
    own, workers = (float(value) for value in line.split()[1:])
    return wall, own, workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maildir", type=Path)
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="only the ingest's CPU split, interleaved with the one of this "
                        "checkout (e.g. a `git archive main`), --rounds times each")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.compare:
        compare_split(args.maildir, args.compare, args.rounds)
        return
    files = sorted((args.maildir / "cur").iterdir())
    raws = [path.read_bytes() for path in files[:args.sample]]
    stage_times(raws[:200])  # warm up: imports, regex compilation
    spent = stage_times(raws)
    total = sum(spent.values())
    print(f"Analysis stages, CPU ms per message over {len(raws):,} messages:\n")
    print("| stage | ms/message | share |\n|---|---:|---:|")
    for stage, seconds in spent.items():
        print(f"| {stage} | {seconds * 1000 / len(raws):.3f} | {seconds / total:.0%} |")
    print(f"| all | {total * 1000 / len(raws):.3f} | |")
    if args.no_ingest:
        return
    wall, own, workers = ingest_split(args.maildir)
    print(f"\n`mailthreads ingest` of {len(files):,} messages: {wall:.1f} s wall; CPU "
          f"{own:.1f} s in the main process (reading, IPC, filing, full-text index, commits), "
          f"{workers:.1f} s in the analysis workers; "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB here.")


def compare_split(maildir: Path, before: Path, rounds: int) -> None:
    """Interleaved ingests with the code in ``before`` and with this checkout."""
    sides = {"before": before, "after": HERE.parent}
    runs: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, code in sides.items():
            runs[side].append(ingest_split(maildir, code))
            wall, own, workers = runs[side][-1]
            print(f"{side}: {wall:.1f} s wall, CPU {own:.2f} s main, {workers:.2f} s workers",
                  flush=True)
    print(f"\n| `mailthreads ingest`, {maildir.name} | before | after |\n|---|---:|---:|")
    for label, index, digits in (("wall seconds", 0, 1), ("CPU seconds, main process", 1, 2),
                                 ("CPU seconds, analysis workers", 2, 2)):
        cells = [", ".join(f"{run[index]:.{digits}f}" for run in runs[side]) for side in sides]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    print(f"\nLoad average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
