"""Output formats shared by the listing commands, as in sqlite-utils: a table for people,
``--json``, ``--nl`` (newline-delimited JSON) and ``--csv`` for scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click


def output_options(fn: Callable) -> Callable:
    for decorator in reversed((
        click.option("--json", "as_json", is_flag=True, help="Output a JSON array"),
        click.option("--nl", "as_nl", is_flag=True, help="Output one JSON object per line"),
        click.option("--csv", "as_csv", is_flag=True, help="Output CSV"),
    )):
        fn = decorator(fn)
    return fn


def chosen_format(as_json: bool, as_nl: bool, as_csv: bool = False) -> str:
    if sum((as_json, as_nl, as_csv)) > 1:
        raise click.UsageError("choose one of --json, --nl, --csv")
    return "json" if as_json else "nl" if as_nl else "csv" if as_csv else "table"


def emit(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str],
         *, empty: str = "Nothing to show.") -> None:
    if fmt == "json":
        click.echo(json.dumps(list(rows), indent=2, ensure_ascii=False, default=str))
    elif fmt == "nl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    elif not rows:
        click.echo(empty)
    else:
        click.echo(table(([str(_cell(row.get(c))) for c in columns] for row in rows), columns))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def table(rows: Iterable[Sequence[str]], headers: Sequence[str], max_width: int = 50) -> str:
    rows = [[_clip(cell, max_width) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in rows)
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
