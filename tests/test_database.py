"""The database file itself: who may create it, its permissions, and what the user is told when
it is missing, empty, foreign, damaged or locked (one line, the right exit code)."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mailfactory import message

from mailthreads.cli import cli
from mailthreads.lock import hold, lock_path_for

CONFIG = ('[addresses]\ndomain = "blog.example"\nsecret = "0123456789abcdef0123"\n\n'
          '[author]\nname = "Author"\naddresses = ["me@blog.example"]\n'
          '\n[posts]\ncreate_on_first_reply = true\n')  # replies to new posts are filed


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
    monkeypatch.delenv("MAILTHREADS_DB", raising=False)
    monkeypatch.delenv("MAILTHREADS_BUSY_TIMEOUT", raising=False)
    (tmp_path / "reply.eml").write_bytes(message())
    return tmp_path


def invoke(database: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-d", str(database), *args])


def one_line_error(result: Result, code: int = 1) -> str:
    """The error line of a command that failed as a user error should: no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r}\n{result.output}"
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# Commands that only read (or change what is already there): none of them creates a database.
NOT_CREATING = [
    ("threads",), ("show", "1"), ("search", "blog"), ("stats",), ("posts", "list"),
    ("posts", "show", "why-i-blog"), ("posts", "close", "why-i-blog"), ("quarantine", "list"),
    ("quarantine", "release", "1"), ("outbox",), ("archive", "1"),
    ("reply", "1", "-m", "Hi", "--dry-run"), ("explain", "{reply}"),
]


def _args(env: Path, args: tuple[str, ...]) -> list[str]:
    return [arg.format(reply=env / "reply.eml") for arg in args]


# Creating ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", NOT_CREATING, ids=" ".join)
def test_read_commands_do_not_create_a_missing_database(env, args):
    database = env / "typo" / "x.db"
    line = one_line_error(invoke(database, *_args(env, args)))
    assert str(database) in line and "no such database" in line
    assert "mailthreads init" in line and "ingest" in line and "poll" in line
    assert not database.parent.exists()


def test_new_database_and_its_directory_are_private(env):
    data = env / "data" / "mailthreads"
    database = data / "mail.db"
    assert invoke(database, "ingest", str(env / "reply.eml")).exit_code == 0
    assert mode(data) == 0o700
    assert mode(database) == 0o600
    conn = sqlite3.connect(database)  # open and writing: the WAL and SHM files exist
    conn.execute("UPDATE threads SET unread = 0")
    conn.commit()
    assert mode(Path(f"{database}-wal")) == 0o600
    assert mode(Path(f"{database}-shm")) == 0o600
    conn.close()
    with hold(lock_path_for(database, "poll"), "mailthreads poll"):
        assert mode(lock_path_for(database, "poll")) == 0o600
    assert sorted(p.name for p in data.iterdir() if p.name.startswith(".")) == []


def test_an_existing_directory_keeps_its_mode(env):
    shared = env / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert invoke(shared / "mail.db", "posts", "add", "why-i-blog").exit_code == 0
    assert mode(shared) == 0o755
    assert mode(shared / "mail.db") == 0o600


def test_an_empty_file_is_not_taken_for_a_new_database(env):
    database = env / "mail.db"
    database.touch()
    for args in (("threads",), ("ingest", str(env / "reply.eml")), ("posts", "add", "x")):
        line = one_line_error(invoke(database, *args))
        assert str(database) in line and "empty file (0 bytes)" in line
        assert "restore a backup" in line
    assert database.stat().st_size == 0


def test_a_sqlite_database_of_something_else_is_left_alone(env):
    database = env / "notes.db"
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    for args in (("threads",), ("posts", "add", "x")):
        line = one_line_error(invoke(database, *args))
        assert "not a mailthreads one" in line
    conn = sqlite3.connect(database)
    assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]
    conn.close()


def test_an_empty_sqlite_database_is_set_up(env):
    database = env / "made-by-sqlite3.db"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA journal_mode = WAL")  # writes the header: a valid, empty database
    conn.close()
    result = invoke(database, "threads")
    assert result.exit_code == 0, result.output
    assert "No threads" in result.output


# Locked: temporary, exit 75 -------------------------------------------------------------------


def _database_with_an_unread_thread(env: Path) -> Path:
    database = env / "mail.db"
    result = invoke(database, "ingest", str(env / "reply.eml"))
    assert "1 stored" in result.output, result.output
    return database


@pytest.mark.parametrize("args", [("show", "1", "--no-pager"), ("archive", "1"),
                                  ("posts", "add", "new-post")], ids=" ".join)
def test_a_write_lock_held_too_long_is_exit_75(env, monkeypatch, args):
    database = _database_with_an_unread_thread(env)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # e.g. a sqlite3 shell left in a transaction
    monkeypatch.setenv("MAILTHREADS_BUSY_TIMEOUT", "0.3")
    try:
        line = one_line_error(invoke(database, *args), code=75)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(database) in line and "locked" in line and "try again later" in line
    result = invoke(database, *args)  # the lock is gone: the same command works
    assert result.exit_code == 0, result.output


def test_a_bad_busy_timeout_is_named(env, monkeypatch):
    database = _database_with_an_unread_thread(env)
    monkeypatch.setenv("MAILTHREADS_BUSY_TIMEOUT", "soon")
    line = one_line_error(invoke(database, "threads"))
    assert "MAILTHREADS_BUSY_TIMEOUT" in line and "'soon'" in line


# Damaged: say so, and how to recover ---------------------------------------------------------


def _damage_a_page_of(database: Path, table: str) -> None:
    """Overwrite one b-tree leaf page of ``table`` (``sqlite_schema``: the schema itself)."""
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [row[0] for row in conn.execute(
        "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' AND pageno > 1",
        (table,))]
    conn.close()
    assert pages, f"no leaf page of {table} beyond page 1"
    with open(database, "r+b") as handle:
        handle.seek((pages[-1] - 1) * page_size)
        handle.write(b"\x0d\xff\xff\xff" * (page_size // 4))


def _database_with_some_mail(env: Path) -> Path:
    database = env / "mail.db"
    for number in range(40):
        path = env / f"r{number}.eml"
        path.write_bytes(message(message_id=f"<r{number}@example.com>", minutes=number,
                                 body=f"Reply number {number} about typewriters.\n" * 20))
    result = invoke(database, "ingest", *(str(env / f"r{n}.eml") for n in range(40)))
    assert "40 stored" in result.output, result.output
    return database


READ_COMMANDS = [("threads",), ("show", "1", "--no-pager"), ("search", "typewriters"),
                 ("stats",), ("posts", "list"), ("quarantine", "list"), ("outbox",),
                 ("explain", "{reply}")]


@pytest.mark.parametrize("table, commands", [
    ("sqlite_schema", READ_COMMANDS),
    ("messages", [("show", "1", "--no-pager"), ("search", "typewriters")]),
], ids=["schema page", "messages page"])
def test_read_commands_on_a_damaged_database_say_how_to_recover(env, table, commands):
    database = _database_with_some_mail(env)
    _damage_a_page_of(database, table)
    for args in commands:
        line = one_line_error(invoke(database, *_args(env, args)))
        assert str(database) in line and "damaged" in line, args
        assert ".recover" in line and "restore a backup" in line, args
