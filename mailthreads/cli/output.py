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
    body = [[_clip(cell, max_width) for cell in row] for row in rows]
    widths = [max(map(len, column)) for column in zip(headers, *body, strict=True)]
    line = "  ".join(f"{{:<{width}}}" for width in widths).format
    lines = [line(*headers).rstrip(), "  ".join("-" * width for width in widths)]
    lines.extend(line(*row).rstrip() for row in body)
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    if len(text) > width or "\n" in text or "\t" in text or "\r" in text:
        text = " ".join(text.split())
        if len(text) > width:
            return text[: width - 1] + "…"
    return text


def committed_counts(counts: dict[str, int]) -> str:
    """'1200 messages in (1190 stored, 10 duplicate, 0 quarantined)': what a stopped run kept,
    from ``store.delivery_counts_since``."""
    detail = ", ".join(f"{counts.get(status, 0)} {status}"
                       for status in ("stored", "duplicate", "quarantined"))
    return f"{sum(counts.values())} messages in ({detail})"
