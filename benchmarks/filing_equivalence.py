"""Check that a change to filing leaves the database exactly as before: ingest one maildir with
the base code and with this checkout, then compare every table row by row.

    python benchmarks/filing_equivalence.py /tmp/bench/Maildir-20000 [--base-ref REF]
    python benchmarks/filing_equivalence.py MAILDIR --base /tmp/base-checkout [--keep DIR]

The base code is ``git archive BASE_REF`` unpacked into a temporary directory (by default
the commit this branch started from, ``git merge-base main HEAD``: main may have moved on
with other work since), or a checkout given with ``--base``; each side runs
``mailthreads ingest --quiet MAILDIR`` with PYTHONPATH pointing at its own code, into a new
database, under three configs: ``create`` (``[posts] create_on_first_reply = true``, as
benchmarks/bulk_ingest.py: most messages are stored), ``default`` (unknown posts held in
the quarantine) and ``author`` (as ``create``, with two frequent senders of the corpora as
the author, so that their messages are filed as the author's and their correspondents are
trusted, and a reply-address secret).

The clock is pinned: both sides run with ``mailthreads.timestamps.now`` returning the same
instant, so that the columns stamped at ingest (``received_at``, ``created_at``,
``first_seen``, and what derives from them: a message without a Date takes its arrival time,
a thread's ``last_activity`` and ``last_reply_at``) are compared too, not ignored. The only
columns left out of the comparison:

- ``_sqlite_migrations``, sqlite-utils' record of the schema steps applied (its own clock
  stamps them): a step one side has and the other has not is listed with the schema;
- the FTS5 shadow tables' internal layout (``messages_fts_data``, ``messages_fts_idx``:
  segments and merge history depend on when FTS5 flushed, not on what is indexed). The
  full-text index is compared by its content instead: every (term, message, column, offset)
  of an ``fts5vocab`` instance table, the per-message token counts
  (``messages_fts_docsize``), its config, and FTS5's own integrity check on each side;
- ``attachments.filename`` only where mail-parser made the name up (an attachment without
  one gets ten random letters and its extension: different on every run of the same code).

Tables present on one side only, or with different columns, are reported as differences;
other schema objects that differ (an index, a trigger a migration changed) are listed apart,
as information.
Exit status 0 when there are none, 1 otherwise; every difference found is printed (up to 5
rows per table).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent

CONFIGS = {
    "create": '[addresses]\ndomain = "blog.example"\n\n[posts]\ncreate_on_first_reply = true\n',
    "default": '[addresses]\ndomain = "blog.example"\n',
    # Two frequent senders of the corpora as the author: their messages are filed as the
    # author's ("out"), so their correspondents become trusted; signed reply addresses.
    "author": '[addresses]\ndomain = "blog.example"\nsecret = "filing-equivalence-secret"\n\n'
              '[author]\naddresses = ["cworth@cworth.org", "keithp@keithp.com"]\n\n'
              '[posts]\ncreate_on_first_reply = true\n',
}

# Run as the ingest command, with the clock pinned before any module copies ``now``.
_PINNED = """
import sys
import mailthreads.timestamps as timestamps
fixed = sys.argv.pop(1)
timestamps.now = lambda: fixed
from mailthreads.cli import cli
cli(prog_name="mailthreads")
"""

IGNORED_COLUMNS: dict[str, set[str]] = {}
# mail-parser names an attachment that has no name with ten random letters and its
# extension: different on every run, of the same code too. Other names are compared.
NORMALISED_COLUMNS = {("attachments", "filename"):
                      "CASE WHEN filename GLOB '" + "[a-z]" * 10 + ".*' THEN NULL "
                      "ELSE filename END"}
FTS_LAYOUT_TABLES = {"messages_fts_data", "messages_fts_idx"}


def ingest(code: Path, maildir: Path, database: Path, config_text: str, pinned: str) -> None:
    config = database.with_suffix(".toml")
    database = database.absolute()
    config.write_text(config_text)
    env = {**os.environ, "PYTHONPATH": str(code), "MAILTHREADS_CONFIG": str(config),
           "MAILTHREADS_DB": str(database)}
    # -P and a cwd of its own: the code imported is the one on PYTHONPATH, not the
    # directory this was started from.
    subprocess.run([sys.executable, "-P", "-c", _PINNED, pinned, "ingest", "--quiet",
                    str(maildir.absolute())], env=env, check=True, cwd=database.parent,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tables(conn: sqlite3.Connection, schema: str) -> dict[str, list[str]]:
    names = [row[0] for row in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: [row[1] for row in conn.execute(f'PRAGMA {schema}.table_info("{name}")')]
            for name in names}


def compare(base_db: Path, new_db: Path) -> list[str]:
    """Every difference between the two databases, as lines to print."""
    conn = sqlite3.connect(base_db)
    conn.execute("ATTACH ? AS new", (str(new_db),))
    differences: list[str] = []
    for schema in ("main", "new"):
        check = f'INSERT INTO {schema}.messages_fts(messages_fts) VALUES (\'integrity-check\')'
        try:
            conn.execute(check)
        except sqlite3.DatabaseError as error:
            differences.append(f"{schema}: FTS5 integrity check failed: {error}")
    base, new = tables(conn, "main"), tables(conn, "new")
    for name in sorted(set(base) | set(new)):
        if name in FTS_LAYOUT_TABLES or name in ("messages_fts", "_sqlite_migrations"):
            continue
        if base.get(name) != new.get(name):
            differences.append(f"{name}: columns differ: {base.get(name)} / {new.get(name)}")
            continue
        columns = ", ".join(NORMALISED_COLUMNS.get((name, column), f'"{column}"')
                            for column in base[name]
                            if column not in IGNORED_COLUMNS.get(name, ()))
        differences += _rows_differ(conn, name, f'SELECT {columns} FROM main."{name}"',
                                    f'SELECT {columns} FROM new."{name}"')
    for schema in ("main", "new"):
        conn.execute(f"CREATE VIRTUAL TABLE temp.{schema}_terms USING "
                     f"fts5vocab({schema}, messages_fts, instance)")
    differences += _rows_differ(conn, "messages_fts (term instances)",
                                "SELECT * FROM temp.main_terms", "SELECT * FROM temp.new_terms")
    return differences


def schema_changes(base_db: Path, new_db: Path) -> list[str]:
    """Migration steps, indexes, triggers and views that one side has and the other has not
    (or not alike)."""
    objects = []
    for path in (base_db, new_db):
        with sqlite3.connect(path) as conn:
            objects.append(set(conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE type != 'table' "
                "UNION ALL SELECT 'migration step', name, '' FROM _sqlite_migrations")))
    return ([f"base only: {kind} {name}" for kind, name, _ in sorted(objects[0] - objects[1])]
            + [f"new only: {kind} {name}" for kind, name, _ in sorted(objects[1] - objects[0])])


def _rows_differ(conn: sqlite3.Connection, label: str, base: str, new: str) -> list[str]:
    """Rows in one query's result and not the other's; and the row counts, should a row
    appear twice on one side (every table compared has a primary key, so none should)."""
    found = []
    for side, first, second in (("only in base", base, new), ("only in new", new, base)):
        rows = conn.execute(f"SELECT * FROM ({first}) EXCEPT SELECT * FROM ({second})"
                            ).fetchall()
        for row in rows[:5]:
            found.append(f"{label}: {side}: {_short(row)}")
        if len(rows) > 5:
            found.append(f"{label}: {side}: ... {len(rows) - 5} more")
    counts = [conn.execute(f"SELECT COUNT(*) FROM ({query})").fetchone()[0]
              for query in (base, new)]
    if counts[0] != counts[1]:
        found.append(f"{label}: {counts[0]} rows in base, {counts[1]} in new")
    return found


def _short(row: tuple) -> str:
    return repr(tuple(value[:60] if isinstance(value, str | bytes) else value
                      for value in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maildir", type=Path)
    parser.add_argument("--base", type=Path, help="a checkout of the base code")
    parser.add_argument("--base-ref", help="git ref to archive, without --base (default: "
                        "where this branch left main)")
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append",
                        help="only this config (repeatable; default: all)")
    parser.add_argument("--keep", type=Path, help="keep the databases in this directory")
    args = parser.parse_args()
    pinned = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(prefix="filing-equivalence-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        base_code = args.base
        if base_code is None:
            base_code = Path(scratch) / "base"
            base_code.mkdir()
            ref = args.base_ref or subprocess.run(
                ["git", "-C", str(CHECKOUT), "merge-base", "main", "HEAD"],
                check=True, capture_output=True, text=True).stdout.strip()
            print(f"base: {ref}")
            archive = subprocess.run(["git", "-C", str(CHECKOUT), "archive", ref],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base_code)], input=archive, check=True)
        failed = False
        for name in args.config or sorted(CONFIGS):
            databases = {side: work / f"{name}-{side}.db" for side in ("base", "new")}
            for side, code in (("base", base_code), ("new", CHECKOUT)):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{databases[side]}{suffix}").unlink(missing_ok=True)
                ingest(code, args.maildir, databases[side], CONFIGS[name], pinned)
            differences = compare(databases["base"], databases["new"])
            stats = sqlite3.connect(databases["new"]).execute(
                "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM threads), "
                "(SELECT COUNT(*) FROM quarantine), (SELECT COUNT(*) FROM deliveries)").fetchone()
            print(f"config {name}: {stats[0]:,} messages, {stats[1]:,} threads, "
                  f"{stats[2]:,} quarantined, {stats[3]:,} deliveries: "
                  f"{len(differences)} differences")
            for line in differences:
                print("  " + line)
            for line in schema_changes(databases["base"], databases["new"]):
                print("  schema (not a difference in content): " + line)
            failed = failed or bool(differences)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
