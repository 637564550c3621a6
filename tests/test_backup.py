"""``backup`` (issue 13): a consistent 0600 copy made with SQLite's online backup API while a
real ``mailthreads serve`` keeps taking mail, which it must never refuse because of it."""

from __future__ import annotations

import json
import smtplib
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from smtp_support import message, query, wait_filed

from mailthreads.cli import cli

REPO = Path(__file__).resolve().parents[1]
FILLER = "A long considered reply about the post, with a few thoughts in it. " * 20 + "\n"


def fill(directory: Path, database: Path, config: Path, count: int) -> None:
    """``count`` replies from as many correspondents to 20 posts, through ``ingest``."""
    inbox = directory / "inbox"
    inbox.mkdir()
    for number in range(count):
        (inbox / f"{number}.eml").write_bytes(message(
            sender=f"Reader {number} <reader{number}@example.org>",
            to=f"reply+post-{number % 20}@blog.example", message_id=f"fill{number}@example.org",
            body=f"Reply {number}.\n{FILLER}"))
    subprocess.run([sys.executable, "-m", "mailthreads", "-d", str(database), "-c",
                    str(config), "ingest", str(inbox)], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


def mailthreads(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailthreads", *args], capture_output=True,
                          text=True, cwd=REPO)


def test_backup_while_serve_takes_mail(tmp_path, serve):
    server = serve()
    database, config = server.database, server.config
    fill(tmp_path, database, config, 2000)
    before = query(database, "SELECT COUNT(*) FROM messages")[0][0]
    assert before == 2000

    copy = tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    # Small steps with a rest between them: the backup lasts seconds, and mail keeps coming.
    backup = subprocess.Popen(
        [sys.executable, "-m", "mailthreads", "-d", str(database), "-c", str(config),
         "backup", str(copy), "--pages", "20", "--pause", "0.02"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    sent, during = 0, 0
    with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as smtp:
        while backup.poll() is None or sent < 20:
            refused = smtp.sendmail("ann@example.net", ["reply+live@blog.example"],
                                    message(sender=f"Ann <ann{sent}@example.net>",
                                            to="reply+live@blog.example",
                                            message_id=f"live{sent}@example.net"))
            assert refused == {}  # every recipient taken: 250, never 451
            sent += 1
            during += backup.poll() is None
    out, err = backup.communicate()
    assert backup.returncode == 0, err
    assert during >= 5, "the backup ended before mail came in: nothing was tested"
    assert "Backed up" in out
    wait_filed(database, before + sent)
    assert query(database, "SELECT COUNT(*) FROM messages WHERE thread_id IN (SELECT "
                 "threads.id FROM threads JOIN posts ON posts.id = threads.post_id "
                 "WHERE posts.slug = 'live')")[0][0] == sent

    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not list(copy.parent.glob(".*tmp*")), "the temporary copy was left behind"
    listed = mailthreads("-d", str(copy), "-c", str(config), "threads", "--json", "-n", "0")
    assert listed.returncode == 0, listed.stderr
    threads = json.loads(listed.stdout)
    assert sum(thread["messages"] for thread in threads) >= before
    assert query(copy, "PRAGMA integrity_check") == [("ok",)]
    assert query(copy, "PRAGMA journal_mode") == [("delete",)]


def test_backup_refuses_the_database_itself_and_a_missing_directory(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[addresses]\ndomain = "blog.example"\n')
    database = tmp_path / "mail.db"
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
    monkeypatch.setenv("MAILTHREADS_DB", str(database))
    runner = CliRunner()
    assert runner.invoke(cli, ["posts", "add", "why-i-blog"]).exit_code == 0
    result = runner.invoke(cli, ["backup", str(database)])
    assert result.exit_code == 1 and "is the database itself" in result.output
    result = runner.invoke(cli, ["backup", str(tmp_path / "nowhere" / "copy.db")])
    assert result.exit_code == 1 and "no directory" in result.output
    # Neither the database's log nor a file that is not a database is written over.
    result = runner.invoke(cli, ["backup", f"{database}-wal"])
    assert result.exit_code == 1 and "is the database itself" in result.output
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    result = runner.invoke(cli, ["backup", str(notes)])
    assert result.exit_code == 1 and "not a database" in result.output
    assert notes.read_text() == "mine\n"
    # An older backup is replaced, and the copy is private whatever the old file's mode.
    target = tmp_path / "copy.db"
    assert runner.invoke(cli, ["backup", str(target)]).exit_code == 0
    target.chmod(0o644)
    assert runner.invoke(cli, ["posts", "add", "why-i-write"]).exit_code == 0
    result = runner.invoke(cli, ["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert query(target, "SELECT slug FROM posts ORDER BY slug") == [("why-i-blog",),
                                                                     ("why-i-write",)]
