"""Output formats shared by the listing commands, as in sqlite-utils: a table for people,
``--json``, ``--nl`` (newline-delimited JSON) and ``--csv`` for scripts.

Whatever a command prints that may hold text from mail goes through this module (``echo``,
``styled``, ``confirm``, ``dumps``, ``emit``, ``echo_bytes``), which neutralises it with
``mailthreads.printable``: no sender can send the terminal a control sequence. Plain
``click.echo`` is for the program's own words only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from ..printable import clip_to_width, display_width, json_safe, neutralise


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
    """Text from mail in the program's own colours: neutralised first, then styled line by
    line (as git does), so that a pager showing a block from its middle still colours it."""
    text = neutralise(text, multiline=multiline)
    return per_line(text, **style) if style else text


def per_line(text: str, **style: Any) -> str:
    return "\n".join(click.style(line, **style) if line else line for line in text.split("\n"))


def colour_wanted() -> bool:
    """--color always/never (the global option), else NO_COLOR, else whether standard output
    is a terminal. ``click.echo`` strips the styles by the same rule."""
    context = click.get_current_context(silent=True)
    if context is not None and context.color is not None:
        return context.color
    return not os.environ.get("NO_COLOR") and sys.stdout.isatty()


def page(text: str) -> None:
    """Text on a terminal through the pager, as git does: ``$MAILTHREADS_PAGER``, ``$PAGER``,
    else ``less``; with ``LESS=FRX`` unless ``$LESS`` is set, so that text that fits the screen
    is printed and stays there, and a longer text stays on screen after quitting."""
    import subprocess

    command = os.environ.get("MAILTHREADS_PAGER") or os.environ.get("PAGER") or "less"
    if not sys.stdout.isatty() or command.strip() in ("", "cat"):
        click.echo(text)
        return
    if not colour_wanted():
        text = click.unstyle(text)
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"),
           "LV": os.environ.get("LV", "-c")}
    sys.stdout.flush()
    try:
        pager = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        click.echo(text)
        return
    encoding = sys.stdout.encoding or "utf-8"
    try:
        pager.stdin.write((text + "\n").encode(encoding, "replace"))
        pager.stdin.close()
    except BrokenPipeError:  # quit before reading it all
        pass
    while True:
        try:
            pager.wait()
            break
        except KeyboardInterrupt:  # less handles ^C itself; wait for it to finish
            continue
    if pager.returncode == 127:  # the shell found no such pager: the text is still owed
        click.echo(text)


def confirm(question: str) -> None:
    """Ask on standard error (the question may quote mail); abort unless the answer is yes."""
    click.confirm(neutralise(question, multiline=False), abort=True, err=True)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """JSON as readable as ``ensure_ascii=False`` makes it, but with control, bidi and
    invisible characters as ``\\uXXXX`` escapes (loading it gives back the exact text)."""
    import json  # here, not at the top: the table path starts faster without it

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
         *, empty: str = "Nothing to show.", shrink: Sequence[tuple[str, int]] = (),
         highlight: Sequence[str] = (), bold: Callable[[dict[str, Any]], bool] | None = None,
         headers: dict[str, str] | None = None) -> None:
    """Rows in the chosen format. For the table: times (``*_at``, ``since``, ``last_activity``)
    in the user's zone, relative; ``shrink`` names the columns truncated (in
    that order, down to a minimum width) to fit the terminal (80 columns when not one);
    ``highlight`` columns keep their first [highlight] whole; ``bold`` rows are bold;
    ``headers`` shorter titles for the table."""
    if fmt == "json":
        click.echo(dumps(list(rows)))
    elif fmt == "nl":
        for row in rows:
            click.echo(dumps(row, indent=None))
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: neutralise(value) if isinstance(value, str) else value
                          for key, value in row.items()} for row in rows)
    elif not rows:
        click.echo(empty)
    else:
        from ..localtime import relative

        titles = [(headers or {}).get(column, column) for column in columns]
        # Times are relative in tables ("2 h ago", "Mon 14:05"); JSON and CSV keep ISO 8601.
        cells = [[neutralise(relative(row.get(c)) if _is_time(c) else str(_cell(row.get(c))))
                  for c in columns] for row in rows]
        text = fitted_table(cells, titles,
                            shrink=[(columns.index(c), minimum) for c, minimum in shrink
                                    if c in columns],
                            highlight=[columns.index(c) for c in highlight])
        lines = text.split("\n")
        for index, row in enumerate(rows, start=2):
            if bold and bold(row):
                lines[index] = click.style(lines[index], bold=True)
        click.echo("\n".join(lines))


def _is_time(column: str) -> bool:
    return column.endswith("_at") or column in ("since", "last_activity")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def terminal_width() -> int:
    """The terminal's width, or 80 columns when output is not one (COLUMNS overrides)."""
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def fitted_table(rows: list[list[str]], headers: Sequence[str], *,
                 shrink: Sequence[tuple[int, int]] = (), highlight: Sequence[int] = (),
                 max_width: int = 50) -> str:
    """A table as wide as the terminal at most (80 columns when output is not one), measured
    in display columns (a CJK character takes two): the ``shrink`` columns (index, minimum
    width) are truncated, in order, never left out. Without ``shrink``, the widest columns
    give way first, down to their titles' width; numbers (ids people type, counts) never."""
    width = terminal_width()
    fitted = {index for index, _ in shrink} | set(highlight)
    rows = [[" ".join(cell.split()) if index in fitted else _clip(cell, max_width)
             for index, cell in enumerate(row)] for row in rows]
    widths = [max(map(display_width, column)) for column in zip(headers, *rows, strict=True)]
    if not shrink:
        numbers = {index for index in range(len(headers))
                   if all(row[index].isdigit() or not row[index] for row in rows)}
        shrink = sorted(((index, display_width(title)) for index, title in enumerate(headers)
                         if index not in numbers), key=lambda column: -widths[column[0]])
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    for index, minimum in shrink:
        if excess <= 0:
            break
        cut = min(excess, max(0, widths[index] - max(minimum, display_width(headers[index]))))
        widths[index] -= cut
        excess -= cut
    for row in rows:
        for index, cell in enumerate(row):
            if display_width(cell) > widths[index]:
                row[index] = (_clip_around(cell, widths[index]) if index in highlight
                              else _clip(cell, widths[index]))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell + " " * (w - display_width(cell))
                         for cell, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(headers), "  ".join("-" * w for w in widths)]
    lines.extend(line(row) for row in rows)
    return "\n".join(lines)


def _clip_around(text: str, width: int) -> str:
    """``text`` cut to ``width`` so that its first [highlight] stays whole when it fits."""
    start, end = text.find("["), text.find("]")
    if 0 <= start < end and display_width(text[:end + 1]) >= width - 1:
        offset = max(0, min(start - 2, end + 2 - width))
        text = "…" + text[offset + 1:] if offset else text
    return _clip(text, width)


def _clip(text: str, width: int) -> str:
    if "\n" in text or "\t" in text or "\r" in text or display_width(text) > width:
        text = " ".join(text.split())
    return clip_to_width(text, width)


def committed_counts(counts: dict[str, int]) -> str:
    """'1200 messages in (1190 stored, 10 duplicate, 0 quarantined)': what a stopped run kept,
    from ``store.delivery_counts_since``."""
    from ..ingest.values import held_and_blocked

    detail = ", ".join(f"{counts.get(status, 0)} {status}"
                       for status in ("stored", "duplicate", "quarantined"))
    detail += "".join(f", {part}" for part in held_and_blocked(counts.get("held", 0),
                                                                counts.get("blocked", 0)))
    if counts.get("spam"):
        detail += f", {counts['spam']} spam"
    return f"{sum(counts.values())} messages in ({detail})"
