"""Quarantine entries keep their id and date, and leave once their message is stored."""

from __future__ import annotations

import time

import pytest
from mailfactory import message
from test_cli import env, run, run_json  # noqa: F401  (env: the config and database fixture)

pytestmark = pytest.mark.usefixtures("env")


def test_an_entry_quarantined_again_keeps_its_id_and_date(tmp_path):
    path = tmp_path / "stray.eml"
    path.write_bytes(message(to="me@blog.example", message_id="<stray@x>"))
    assert "1 quarantined" in run("ingest", str(path))
    other = tmp_path / "other.eml"
    other.write_bytes(message(to="me@blog.example", message_id="<other@x>"))
    assert "1 quarantined" in run("ingest", str(other))
    first, second = run_json("quarantine", "list")
    time.sleep(1.05)  # dates have whole seconds: a new date would show
    out = run("quarantine", "release", str(first["id"]))
    assert f"{first['id']}: quarantined (no reply address" in out
    out = run("quarantine", "release", str(first["id"]), "--post", "Not A Slug")
    assert "is not a valid post slug" in out
    again, _ = run_json("quarantine", "list")
    assert (again["id"], again["created_at"]) == (first["id"], first["created_at"])
    assert "is not a valid post slug" in again["reason"]
    assert "stray@x" in run("quarantine", "show", str(first["id"]))
    # The same bytes arriving once more are still one entry.
    assert "1 quarantined" in run("ingest", str(path))
    entries = run_json("quarantine", "list")
    assert [e["id"] for e in entries] == [first["id"], second["id"]]
    assert "stored in thread" in run("quarantine", "release", str(first["id"]), "--post", "misc")
    assert [e["id"] for e in run_json("quarantine", "list")] == [second["id"]]


def test_an_entry_leaves_the_quarantine_once_its_message_is_stored_another_way(tmp_path):
    run("posts", "add", "why-i-blog")
    run("posts", "close", "why-i-blog")
    path = tmp_path / "late.eml"
    path.write_bytes(message(message_id="<late@x>"))
    assert "1 quarantined" in run("ingest", str(path))
    [entry] = run_json("quarantine", "list")
    assert "closed to new discussions" in entry["reason"]
    run("posts", "reopen", "why-i-blog")
    assert "1 stored" in run("ingest", str(path))
    assert run_json("quarantine", "list") == []
    assert run_json("stats")["quarantined"] == 0
    # Released after all, it is found stored: nothing left behind, nothing twice.
    assert "no quarantine entry" in run("quarantine", "release", str(entry["id"]), code=1)
    assert run_json("stats")["messages"] == 1
