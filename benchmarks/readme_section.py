"""Each benchmark script rewrites its own section of benchmarks/README.md, and only that."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(heading: str, text: str, readme: Path = README) -> None:
    """Replace the section that starts with ``heading`` (or add it), leaving the rest alone."""
    current = readme.read_text() if readme.exists() else "# Benchmarks\n"
    start = current.find(f"\n{heading}\n")
    if start == -1:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(heading) + 2)
        rest = current[following:] if following != -1 else "\n"
        updated = current[:start + 1] + text.rstrip("\n") + "\n" + rest
    readme.write_text(updated)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def recorded(load_before: str, load_after: str) -> str:
    """The closing line of a section: when, on what, and how busy the machine was."""
    return (f"Recorded {datetime.date.today()} on {os.cpu_count()} cores ({platform.machine()}, "
            f"Python {platform.python_version()}); load average before {load_before}, after "
            f"{load_after}.")
