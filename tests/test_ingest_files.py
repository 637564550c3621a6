"""`ingest` of files as real exports write them: nothing read wrong, nothing skipped silently."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mailfactory import message
from test_cli import env, run, run_json  # noqa: F401  (env: the config and database fixture)

from mailthreads.cli import cli

pytestmark = pytest.mark.usefixtures("env")

BLANK_FIRST = b"\r\n\n" + message(message_id="<blank@x>", body="After a blank line.\n")


def test_a_message_file_starting_with_blank_lines_is_a_message(tmp_path):
    path = tmp_path / "exported.eml"
    path.write_bytes(BLANK_FIRST)
    [outcome] = [json.loads(line) for line in run("ingest", str(path), "--nl").splitlines()]
    assert outcome["status"] == "stored" and outcome["post"] == "why-i-blog"
    assert json.loads(run("explain", str(path), "--json"))["from"] == "jane@example.com"
    [thread] = run_json("threads")
    assert thread["correspondent_address"] == "jane@example.com"
    assert run_json("show", str(thread["id"]))["messages"][0]["visible_text"] \
        == "After a blank line."


def test_an_mbox_starting_with_blank_lines_is_an_mbox(tmp_path):
    path = tmp_path / "export.mbox"
    path.write_bytes(b"\n\nFrom jane@example.com Sun Nov  1 09:00:00 2026\n"
                     + message(message_id="<mbox@x>"))
    assert "1 messages: 1 stored, 0 duplicate, 0 quarantined" in run("ingest", str(path))


def test_a_directory_import_counts_and_names_what_it_skips(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "1.eml").write_bytes(BLANK_FIRST)
    (folder / "2.eml").write_bytes(message(message_id="<plain@x>", minutes=1))
    (folder / "notes.txt").write_text("Remember to answer Jane.\n")
    out = run("ingest", str(folder))
    assert "2 messages: 2 stored, 0 duplicate, 0 quarantined; 1 file skipped, not mail " \
           "(-v names them)" in out
    result = CliRunner().invoke(cli, ["ingest", "-v", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"skipped {folder / 'notes.txt'}: not an email message or an mbox" in result.stderr
    assert "1.eml" not in result.stderr
    summary = run_json("ingest", str(folder))["summary"]
    assert summary["duplicate"] == 2
    assert summary["skipped_files"] == [{"path": str(folder / "notes.txt"),
                                         "reason": "not an email message or an mbox"}]
