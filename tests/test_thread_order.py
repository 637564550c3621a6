"""`threads` orders discussions by when mail arrived, never by a sender's clock."""

from __future__ import annotations

import json
import sqlite3
import time
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from click.testing import CliRunner
from mailfactory import message
from test_cli import env, run, run_json  # noqa: F401  (env: the config and database fixture)

from mailthreads.cli import cli
from mailthreads.timestamps import now

pytestmark = pytest.mark.usefixtures("env")


def arrive(tmp_path, raw: bytes) -> None:
    path = tmp_path / "reply.eml"
    path.write_bytes(raw)
    assert "1 stored" in run("ingest", str(path))
    # Arrival times have whole seconds: the next message must arrive in a later one.
    time.sleep(1.05)


def dated(year: int, **fields) -> bytes:
    raw = message(**fields)
    date = format_datetime(parsedate_to_datetime("Sun, 1 Nov 2026 09:00:00 +0000")
                           .replace(year=year))
    return raw.replace(b"Date: Sun, 01 Nov 2026 09:00:00 +0000", f"Date: {date}".encode())


def test_threads_are_ordered_by_arrival_not_by_the_date_header(tmp_path):
    arrive(tmp_path, dated(2026, sender="carol@example.org", message_id="<c1@x>",
                           to="reply+c@blog.example"))
    arrive(tmp_path, dated(2099, sender="jane@example.com", message_id="<j1@x>",
                           to="reply+j@blog.example"))
    arrive(tmp_path, dated(2026, sender="bob@example.org", message_id="<b1@x>",
                           to="reply+b@blog.example"))
    # Carol writes again with her clock twenty years behind: hers is the newest discussion.
    arrive(tmp_path, dated(2006, sender="carol@example.org", message_id="<c2@x>",
                           to="reply+c@blog.example"))
    threads = run_json("threads")
    assert [t["post"] for t in threads] == ["c", "b", "j"]
    assert all(t["last_activity"] <= now() for t in threads)
    first_page = CliRunner().invoke(cli, ["threads", "-n", "1", "--json"])
    assert [t["post"] for t in json.loads(first_page.stdout)] == ["c"]
    assert [p["slug"] for p in run_json("posts", "list")
            if p["last_activity"] == threads[0]["last_activity"]] == ["c"]
    # The message itself still shows the date its sender wrote.
    [jane] = [t for t in threads if t["post"] == "j"]
    assert run_json("show", str(jane["id"]))["messages"][0]["date"].startswith("2099-")


def test_a_database_dated_by_headers_is_reordered_on_upgrade(tmp_path):
    arrive(tmp_path, dated(2099, sender="jane@example.com", message_id="<j1@x>",
                           to="reply+j@blog.example"))
    arrive(tmp_path, dated(2026, sender="bob@example.org", message_id="<b1@x>",
                           to="reply+b@blog.example"))
    # As the previous version left it: last_activity from the Date header, schema version 1.
    conn = sqlite3.connect(tmp_path / "mail.db")
    with conn:
        conn.execute("UPDATE threads SET last_activity = (SELECT MAX(date) FROM messages "
                     "WHERE thread_id = threads.id)")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_arrival_order'")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    assert [t["post"] for t in run_json("threads")] == ["b", "j"]
