"""The README's "The database" table and the schema the code creates agree, both ways.

The table is parsed as written (the table names, and in each row the backticked column names
outside parentheses, before any prose after ": " or ". "), a fresh database is made by
``open_database``, and every table and column of one must be in the other. Exempt, because
mailthreads does not define them: sqlite-utils' ``_sqlite_migrations`` bookkeeping table and
the shadow tables SQLite's FTS5 keeps for each full-text index (``messages_fts_data`` and so on;
the index itself, ``messages_fts``, is documented).
"""

from __future__ import annotations

import re
from pathlib import Path

from mailthreads.db import open_database

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## The database"
NOT_OURS = {"_sqlite_migrations"}
FTS5_SHADOWS = ("data", "idx", "content", "docsize", "config")
_BACKTICKED = re.compile(r"`([^`]+)`")


def documented_schema(readme: str) -> dict[str, set[str]]:
    """{table: columns} from the README's "The database" section."""
    assert f"\n{HEADING}\n" in readme, f"no {HEADING!r} section in the README"
    section = readme.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, f"no table rows under {HEADING!r} in the README"
    schema: dict[str, set[str]] = {}
    for row in rows:
        table_cell, columns_cell = (cell.strip() for cell in row.strip("|").split("|", 1))
        [table] = _BACKTICKED.fullmatch(table_cell).groups()
        schema[table] = set(_BACKTICKED.findall(column_list(columns_cell)))
    return schema


def column_list(cell: str) -> str:
    """The cell without parenthesised remarks and without the prose after the list."""
    outside, depth = [], 0
    for character in cell:
        depth += character == "("
        if depth == 0:
            outside.append(character)
        depth -= character == ")" and depth > 0
    return re.split(r"[:.] ", "".join(outside), maxsplit=1)[0]


def actual_schema(database: Path) -> dict[str, set[str]]:
    """{table: columns} of a fresh database, without the tables mailthreads does not define."""
    db = open_database(database)
    try:
        tables = set(db.table_names())
        full_text = {name for name in tables
                     if re.search(r"\bUSING\s+FTS5\b", db[name].schema or "", re.IGNORECASE)}
        shadows = {f"{index}_{suffix}" for index in full_text for suffix in FTS5_SHADOWS}
        return {name: {column.name for column in db[name].columns}
                for name in tables - NOT_OURS - shadows}
    finally:
        db.close()


def test_the_readme_documents_every_table_and_column_and_nothing_else(tmp_path):
    documented = documented_schema(README.read_text(encoding="utf-8"))
    actual = actual_schema(tmp_path / "mail.db")
    assert set(actual) - set(documented) == set(), "tables missing from the README's table"
    assert set(documented) - set(actual) == set(), "tables in the README that do not exist"
    for table in sorted(actual):
        assert actual[table] - documented[table] == set(), f"{table}: columns not documented"
        assert documented[table] - actual[table] == set(), f"{table}: documented, not created"


def test_the_parser_reads_names_not_values_or_prose():
    """The parser itself: values in parentheses, references and trailing prose are not columns
    (so the comparison above cannot pass by reading too little or too much)."""
    readme = (f"# Title\n{HEADING}\n\n| table | columns |\n|---|---|\n"
              "| `t` | `id`, `state` (`a`, `b`: (nested) `c`), `ref` (→ `u.id`), `x`: see `y`. |\n"
              "| `u` | `id`, `z`. The `w` of it |\n\n## Next\n\n| `v` | `q` |\n")
    assert documented_schema(readme) == {"t": {"id", "state", "ref", "x"}, "u": {"id", "z"}}
