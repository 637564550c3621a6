"""Check that a change to the analysis (parse, trim, classify, ancestry) changes no output.

    git archive main | tar -x -C /tmp/analysis-base        # the code to compare against
    python benchmarks/analysis_equivalence.py /tmp/analysis-base \\
        --maildir /tmp/mailthreads-bench/Maildir-20000

Every file under the shared corpora ($MAILTHREADS_CORPORA, default ../shared/corpora; all of
them, whatever their suffix, since mail is whatever arrives) and every message of the
``--maildir`` goes through the whole analysis the ingest workers run
(``ingest.analysed.analyse_or_unparsed``, default configuration) twice: with the code of
``BASE`` and with this checkout's, each in a subprocess of its own (PYTHONPATH set to the
checkout, so each imports its own ``mailthreads``). Each corpus message is analysed with no
envelope sender and again with the null sender ``""``. The .txt and .html files also go
through ``split_reply`` and ``html_to_text`` alone. The results (an ``Analysis``, an
``Unparsed`` reason, or the exception raised) are compared field by field; every difference
is printed with the file and the field, and the exit status is 1 when there is any.

mail-parser names an attachment without a filename (a bare Content-Disposition: attachment, an
RTF part) with random letters, so ``random`` is seeded before each message: otherwise two runs
of the same code differ in those names.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Run in each subprocess: argv[1] lists the jobs (pickled), argv[2] receives the results.
_WORKER = r"""
import pickle, random, sys
from pathlib import Path
from mailthreads.config import Config
from mailthreads.ingest.analysed import analyse_or_unparsed
from mailthreads.mail.cleanup import html_to_text, split_reply

def outcome(run):
    try:
        result = run()
    except Exception as error:
        return ("raised", type(error).__name__, str(error))
    if hasattr(result, "__dataclass_fields__"):
        return (type(result).__name__,
                {name: getattr(result, name) for name in result.__dataclass_fields__})
    return ("value", result)

config = Config()
jobs = pickle.loads(Path(sys.argv[1]).read_bytes())
with open(sys.argv[2], "wb") as out:
    for step, path, sender in jobs:
        raw = Path(path).read_bytes()
        random.seed(0)  # mail-parser names some unnamed attachments at random
        if step == "analyse":
            result = outcome(lambda: analyse_or_unparsed(raw, config, sender))
        elif step == "split_reply":
            result = outcome(lambda: split_reply(raw.decode("utf-8", "replace")))
        else:
            result = outcome(lambda: html_to_text(raw.decode("utf-8", "replace")))
        pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
"""


def corpora() -> Path:
    return Path(os.environ.get("MAILTHREADS_CORPORA") or HERE.parent.parent / "shared/corpora")


def jobs(maildir: Path | None) -> list[tuple[str, str, str | None]]:
    """(step, file, envelope sender) for every check."""
    result: list[tuple[str, str, str | None]] = []
    for path in sorted(p for p in corpora().rglob("*") if p.is_file()):
        result.append(("analyse", str(path), None))
        result.append(("analyse", str(path), ""))
        if path.suffix == ".txt":
            result.append(("split_reply", str(path), None))
        elif path.suffix == ".html":
            result.append(("html_to_text", str(path), None))
    if maildir is not None:
        for folder in ("cur", "new"):
            for path in sorted((maildir / folder).iterdir()):
                result.append(("analyse", str(path), None))
    return result


def run(code: Path, job_file: Path, out: Path) -> list[object]:
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, "-c", _WORKER, str(job_file), str(out)], env=env,
                   check=True, cwd=code)
    results = []
    with out.open("rb") as stream:
        while True:
            try:
                results.append(pickle.load(stream))
            except EOFError:
                return results


def differences(base: object, ours: object) -> list[str]:
    """The fields in which two outcomes differ ("kind" for a different kind of outcome)."""
    if base == ours:
        return []
    if not (isinstance(base, tuple) and isinstance(ours, tuple) and base[0] == ours[0]
            and isinstance(base[1], dict)):
        return ["outcome"]
    return [name for name in base[1] if base[1][name] != ours[1].get(name)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="a checkout of the code to compare against")
    parser.add_argument("--maildir", type=Path)
    args = parser.parse_args()
    todo = jobs(args.maildir)
    with tempfile.TemporaryDirectory(prefix="analysis-equivalence-") as work:
        job_file = Path(work) / "jobs.pickle"
        job_file.write_bytes(pickle.dumps(todo))
        base = run(args.base.resolve(), job_file, Path(work) / "base.pickle")
        ours = run(HERE.parent, job_file, Path(work) / "ours.pickle")
    assert len(base) == len(ours) == len(todo)
    different = 0
    for (step, path, sender), before, after in zip(todo, base, ours, strict=True):
        fields = differences(before, after)
        if fields:
            different += 1
            print(f"DIFFERENT {step} {path} sender={sender!r}: {', '.join(fields)}")
    counts = {step: sum(1 for job in todo if job[0] == step)
              for step in ("analyse", "split_reply", "html_to_text")}
    print(f"{len(todo):,} checks ({', '.join(f'{n:,} {s}' for s, n in counts.items())}): "
          f"{different:,} different")
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()
