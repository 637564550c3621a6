"""Output formats shared by the listing commands, as in sqlite-utils: a table for people,
``--json``, ``--nl`` (newline-delimited JSON) and ``--csv`` for scripts.

Whatever a command prints that may hold text from mail goes through this module (``echo``,
``styled``, ``confirm``, ``dumps``, ``emit``, ``echo_bytes``), which neutralises it with
``mailthreads.printable``: no sender can send the terminal a control sequence. Plain
``click.echo`` is for the program's own words only.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from ..printable import json_safe, neutralise


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


def echo(text: str = "", *, multiline: bool = True, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` for text that may hold anything from mail. ``multiline`` keeps its tabs
    and newlines (a body); without it they are escaped too (a line of ``key: value``)."""
    click.echo(neutralise(text, multiline=multiline), err=err, nl=nl)


def styled(text: str, *, multiline: bool = True, **style: Any) -> str:
    """Text from mail in the program's own colours: neutralised first, then styled."""
    text = neutralise(text, multiline=multiline)
    return click.style(text, **style) if style else text


def confirm(question: str) -> None:
    """Ask on standard error (the question may quote mail); abort unless the answer is yes."""
    click.confirm(neutralise(question, multiline=False), abort=True, err=True)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """JSON as readable as ``ensure_ascii=False`` makes it, but with control, bidi and
    invisible characters as ``\\uXXXX`` escapes (loading it gives back the exact text)."""
    return json_safe(json.dumps(value, indent=indent, ensure_ascii=False, default=str))


def echo_bytes(data: bytes) -> None:
    """Bytes exactly as they are for a pipe or a file; neutralised text for a terminal."""
    if sys.stdout.isatty():
        echo(data.decode("utf-8", "replace"), nl=False)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def show_kept_message(entry: dict[str, Any], raw: bool, as_json: bool,
                      keys: Sequence[str]) -> None:
    """A message kept apart (quarantine, spam) with its ``raw`` bytes: the exact bytes
    (``--raw``), JSON without them, or ``keys`` one per line and the start of the message."""
    raw_bytes = entry.pop("raw")
    if raw:
        echo_bytes(raw_bytes)
        return
    if as_json:
        entry["size"] = len(raw_bytes)
        click.echo(dumps(entry))
        return
    width = max(len(key) for key in (*keys, "size")) + 2
    for key in keys:
        if entry.get(key) is not None:
            echo(f"{key.replace('_', ' ') + ':':{width}}{entry[key]}", multiline=False)
    click.echo(f"{'size:':{width}}{len(raw_bytes):,} bytes\n")
    echo(raw_bytes[:4096].decode("utf-8", "replace"))


def emit(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str],
         *, empty: str = "Nothing to show.") -> None:
    if fmt == "json":
        click.echo(dumps(list(rows)))
    elif fmt == "nl":
        for row in rows:
            click.echo(dumps(row, indent=None))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: neutralise(value) if isinstance(value, str) else value
                          for key, value in row.items()} for row in rows)
    elif not rows:
        click.echo(empty)
    else:
        click.echo(table(([neutralise(str(_cell(row.get(c)))) for c in columns] for row in rows),
                         columns))


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
    if counts.get("spam"):
        detail += f", {counts['spam']} spam"
    return f"{sum(counts.values())} messages in ({detail})"
