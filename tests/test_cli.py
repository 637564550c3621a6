"""The CLI end to end on a real database file: what a user types, what they see."""

from __future__ import annotations

import json
import mailbox
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from mailfactory import message

from mailthreads.cli import cli
from mailthreads.db import open_database


@pytest.fixture
def env(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[addresses]\ndomain = "blog.example"\n\n[author]\nname = "Author"\n'
                      'addresses = ["me@blog.example"]\n'
                      '\n[posts]\ncreate_on_first_reply = true\n')  # held otherwise
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
    monkeypatch.setenv("MAILTHREADS_DB", str(tmp_path / "mail.db"))
    return tmp_path


def run(*args: str, input: bytes | str | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def run_json(*args: str):
    return json.loads(run(*args, "--json"))


def write_maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for raw in messages:
        box.add(raw)
    return path


def all_commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_every_command_has_help_with_an_example():
    """Every command and subcommand (found by walking the CLI, so new ones are included) has
    help; every one but the groups shows an example that runs it, and every example line in
    any help parses as a command line of this CLI (its command, options and arguments exist)."""
    commands = dict(all_commands(cli))
    assert {("threads",), ("show",), ("ingest",), ("explain",), ("posts", "sync"),
            ("quarantine", "release"), ("review",), ("correspondents", "merge"),
            ("correspondents", "separate"), ("outbox", "send"), ("config", "path")} <= set(commands)
    for path, command in commands.items():
        output = run(*path, "--help")
        assert command.help, path
        examples = example_commands(output)
        for words in examples:
            try:
                assert parse_command_line(words[1:]), words
            except click.UsageError as error:
                pytest.fail(f"mailthreads {' '.join(path)} --help: {shlex.join(words)}: {error}")
        if not isinstance(command, click.Group):
            assert "Example" in output, f"mailthreads {' '.join(path)} --help has no example"
            assert any(parse_command_line(words[1:]) == path for words in examples), (
                f"no example in mailthreads {' '.join(path)} --help runs that command")


def test_an_example_that_does_not_parse_is_caught():
    merge = ["correspondents", "merge", "5", "--json"]
    assert parse_command_line(["-c", "config.toml", *merge]) == ("correspondents", "merge")
    for wrong in (["threads", "--no-such-option"], ["posts", "add"], ["no-such-command"],
                  ["show", "3", "4", "5"]):
        with pytest.raises(click.UsageError):
            parse_command_line(wrong)


def example_commands(help_text: str) -> list[list[str]]:
    """The words of each line of a --help that runs mailthreads, up to any shell operator
    (a pipe, a redirection, ``&&``) or comment."""
    commands = []
    for line in help_text.splitlines():
        if not line.strip().startswith("mailthreads "):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        operators = [i for i, word in enumerate(words) if set(word) <= set("|&;<>()")]
        commands.append(words[: min(operators, default=len(words))])
    return commands


def parse_command_line(words: list[str]) -> tuple[str, ...]:
    """Parse ``mailthreads WORDS`` as click does, without running anything: the command's path.
    Raises click.UsageError for an unknown command or option, or wrong arguments."""
    command: click.Command = cli
    context = cli.make_context("mailthreads", list(words))
    path: tuple[str, ...] = ()
    while isinstance(command, click.Group):
        # click 8.2 renamed protected_args (the subcommand's name) to _protected_args.
        protected = vars(context).get("_protected_args")
        rest = [*(context.protected_args if protected is None else protected), *context.args]
        if not rest:
            break
        name, command, arguments = command.resolve_command(context, rest)
        path = (*path, name)
        context = command.make_context(name, arguments, parent=context)
    return path


def test_first_session_from_the_readme(env):
    out = run("init")
    assert "Wrote config" in out or "Config exists" in out
    run("posts", "add", "why-i-blog", "--title", "Why I blog", "--url",
        "https://blog.example/why-i-blog")
    link = run_json("posts", "link", "why-i-blog")
    assert link["address"] == "reply+why-i-blog@blog.example"
    assert link["mailto"].startswith("mailto:reply+why-i-blog@blog.example")
    assert "Reply by email" in link["html"]

    maildir = write_maildir(env / "Maildir", [
        message(message_id="<r1@x>",
                body="First thoughts.\n\n"
                     "On Mon, Nov 2, 2026 at 9:00 AM Author <me@blog.example> wrote:\n"
                     "> post\n> more post\n"),
        message(message_id="<r2@x>", sender="Bob <bob@example.org>", minutes=5),
    ])
    out = run("ingest", str(maildir))
    assert "2 messages: 2 stored, 0 duplicate, 0 quarantined" in out
    lines = [json.loads(line) for line in run("ingest", str(maildir), "--nl").splitlines()]
    assert [line["status"] for line in lines] == ["duplicate", "duplicate"]
    assert {"message_id", "status", "thread", "post", "kind"} <= set(lines[0])

    threads = run_json("threads")
    assert [t["correspondent_address"] for t in threads] == ["bob@example.org",
                                                              "jane@example.com"]
    assert {"id", "post", "correspondent", "state", "unread", "last_activity"} <= set(threads[0])
    assert threads[0]["state"] == "needs_reply" and threads[0]["unread"] == 1
    assert threads[0]["last_activity"].endswith("Z")

    jane = threads[1]["id"]
    shown = run("show", str(jane))
    assert "First thoughts." in shown
    assert "3 quoted lines hidden" in shown
    assert "> post" not in shown
    assert "> post" in run("show", str(jane), "--quotes")
    detail = run_json("show", str(jane))
    assert detail["messages"][0]["message_id"] == "r1@x"
    assert detail["unread"] == 0  # shown once already: marked read
    assert [t["unread"] for t in run_json("threads", "--unread")] == [1]


def test_threads_filters_and_archive(env):
    path = env / "r.eml"
    path.write_bytes(message(to="reply+one@blog.example"))
    run("ingest", str(path))
    path.write_bytes(message(message_id="<o2@x>", to="reply+two@blog.example"))
    run("ingest", str(path))
    assert [t["post"] for t in run_json("threads", "--post", "one")] == ["one"]
    [thread] = run_json("threads", "--post", "two")
    run("archive", str(thread["id"]))
    assert [t["post"] for t in run_json("threads")] == ["one"]
    assert [t["post"] for t in run_json("threads", "--state", "archived")] == ["two"]
    run("unarchive", str(thread["id"]))
    assert len(run_json("threads", "--state", "needs-reply")) == 2
    nl = run("threads", "--nl").splitlines()
    assert len(nl) == 2 and json.loads(nl[0])["id"]
    assert run("threads", "--csv").splitlines()[0].startswith("id,post,correspondent")


def test_ingest_mbox_eml_and_stdin_with_post_hint(env):
    box = mailbox.mbox(env / "old.mbox")
    box.add(message(to="me@blog.example", message_id="<old1@x>",
                    body="From the archive.\nFrom here on, a line starting with From.\n"))
    box.flush()
    out = json.loads(run("ingest", str(env / "old.mbox"), "--post", "old-post", "--json"))
    assert out["summary"]["stored"] == 1
    assert out["messages"][0]["post"] == "old-post"
    detail = run_json("show", str(out["messages"][0]["thread"]))
    assert "From here on, a line starting with From." in detail["messages"][0]["visible_text"]
    out = run("ingest", "-", "--nl", input=message(message_id="<stdin@x>"))
    assert json.loads(out)["status"] == "stored"


def test_explain_reports_without_storing(env):
    path = env / "ooo.eml"
    path.write_bytes(message(subject="Automatic reply: Why I blog",
                             headers={"Auto-Submitted": "auto-replied"}))
    open_database(env / "mail.db").conn.close()  # explain reads the database, never makes it
    result = run_json("explain", str(path))
    assert result["kind"] == "auto_reply"
    assert result["post"] == "why-i-blog"
    assert result["thread"] is None
    assert any("auto-replied" in reason.lower() for reason in result["reasons"])
    assert {"visible_text", "quoted_text", "signature"} <= set(result)
    assert run_json("stats")["messages"] == 0
    from_stdin = json.loads(run("explain", "-", "--json", input=path.read_bytes()))
    assert from_stdin["kind"] == "auto_reply"


def test_quarantine_list_show_release_delete(env):
    path = env / "stray.eml"
    path.write_bytes(message(to="someone@else.example", message_id="<stray@x>"))
    assert "1 quarantined" in run("ingest", str(path))
    [entry] = run_json("quarantine", "list")
    assert "no reply address" in entry["reason"]
    assert "stray@x" in run("quarantine", "show", str(entry["id"]))
    assert b"stray@x" in CliRunner().invoke(
        cli, ["quarantine", "show", str(entry["id"]), "--raw"]).stdout_bytes
    # Released without a route it stays quarantined; with --post it is filed.
    assert "quarantined" in run("quarantine", "release", str(entry["id"]))
    [entry] = run_json("quarantine", "list")
    assert "stored in thread" in run("quarantine", "release", str(entry["id"]), "--post", "misc")
    assert run_json("quarantine", "list") == []
    path.write_bytes(message(to="someone@else.example", message_id="<stray2@x>"))
    run("ingest", str(path))
    [entry] = run_json("quarantine", "list")
    run("quarantine", "delete", str(entry["id"]))
    assert run_json("quarantine", "list") == []


def test_search_and_stats(env):
    path = env / "r.eml"
    path.write_bytes(message(body="The typewriter anecdote was great.\n"))
    run("ingest", str(path))
    [hit] = run_json("search", "typewriter")
    assert hit["post"] == "why-i-blog"
    assert "[typewriter]" in hit["snippet"]
    stats = run_json("stats")
    assert stats["messages"] == 1 and stats["threads"] == 1


def test_posts_sync_from_an_atom_file(env):
    feed = env / "atom.xml"
    feed.write_text("""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><id>urn:blog</id>
<updated>2026-11-01T00:00:00Z</updated>
<entry><title>Why I blog</title><link href="https://blog.example/posts/why-i-blog/"/>
<id>urn:1</id><updated>2026-11-01T00:00:00Z</updated></entry>
<entry><title>On Typewriters</title><link href="https://blog.example/2026/on-typewriters.html"/>
<id>urn:2</id><updated>2026-11-02T00:00:00Z</updated></entry></feed>""")
    results = run_json("posts", "sync", str(feed))["entries"]
    assert [(r["post"], r["result"]) for r in results] == [("why-i-blog", "added"),
                                                           ("on-typewriters", "added")]
    again = run_json("posts", "sync", str(feed))["entries"]
    assert [r["result"] for r in again] == ["unchanged"] * 2
    slugs = {p["slug"]: p for p in run_json("posts", "list")}
    assert slugs["on-typewriters"]["title"] == "On Typewriters"


@pytest.mark.parametrize("args, text", [
    (("show", "99"), "no thread 99"),
    (("ingest", "/nonexistent/path"), "no such file or directory"),
    (("quarantine", "show", "5"), "no quarantine entry 5"),
    (("posts", "show", "nope"), "no post with slug 'nope'"),
    (("search", "--fts", '"unbalanced'), "bad search query"),
])
def test_user_errors_are_one_line_without_traceback(env, args, text):
    open_database(env / "mail.db").conn.close()
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1, result.output
    assert text in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_not_a_mailbox_is_a_clear_error(env):
    path = env / "notes.bin"
    path.write_bytes(b"\x00\x01binary junk that is no mail\n")
    result = CliRunner().invoke(cli, ["ingest", str(path)])
    assert result.exit_code == 1
    assert "not an email message, an mbox or a maildir" in result.output


def test_broken_config_names_file_and_key(env, monkeypatch):
    bad = env / "bad.toml"
    bad.write_text('[addresses]\ndomain = "not a domain"\nseparator = "/"\n'
                   '[listener]\nport = "eight"\n[[imap]]\nhost = "imap.example"\n'
                   'password = "hunter2"\n')
    result = CliRunner().invoke(cli, ["-c", str(bad), "config", "check"])
    assert result.exit_code == 1
    for expected in ("addresses.domain", "addresses.separator", "listener.port",
                     "imap[0].password"):
        assert f"{bad}: {expected}" in result.output
    result = CliRunner().invoke(cli, ["-c", str(bad), "threads"])
    assert result.exit_code == 1
    assert f"{bad}: addresses.domain" in result.output and "more" in result.output
    assert "Traceback" not in result.output
    syntax = env / "syntax.toml"
    syntax.write_text("[addresses\n")
    result = CliRunner().invoke(cli, ["-c", str(syntax), "config", "check"])
    assert result.exit_code == 1 and "not valid TOML" in result.output


def test_config_check_finds_what_reply_would_refuse(env):
    path = env / "sending.toml"
    path.write_text('[addresses]\nsecret = "0123456789abcdefghij"\n\n[author]\n'
                    'addresses = ["me@blog.example"]\n\n[outgoing]\nhost = "smtp.blog.example"\n'
                    'security = "none"\nusername = "me@blog.example"\n'
                    'password_command = "pass show smtp"\n')
    result = CliRunner().invoke(cli, ["-c", str(path), "config", "check"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f'{path}: [outgoing] security = "none" would send the password unencrypted; use tls '
        "or starttls (mailthreads reply would refuse)",
        f"Error: 1 problem(s) in {path}"]
    refused = CliRunner().invoke(cli, ["-c", str(path), "reply", "1", "-m", "Hello"])
    assert refused.exit_code == 1 and "would send the password unencrypted" in refused.stderr


def test_config_check_warns_about_unset_password_variables_and_a_localhost_domain(
        env, monkeypatch):
    path = env / "polling.toml"
    path.write_text('[[imap]]\nname = "fastmail"\nhost = "imap.fastmail.com"\n'
                    'username = "me@fastmail.com"\npassword_env = "MAILTHREADS_TEST_NO_SUCH_VAR"\n')
    monkeypatch.delenv("MAILTHREADS_TEST_NO_SUCH_VAR", raising=False)
    result = CliRunner().invoke(cli, ["-c", str(path), "config", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: OK (2 warnings)\n"
    [domain, variable] = result.stderr.splitlines()
    assert domain.startswith(f'Warning: {path}: addresses.domain: still "localhost" while '
                             "[[imap]] accounts are set")
    assert variable == (f"Warning: {path}: imap[0].password_env: MAILTHREADS_TEST_NO_SUCH_VAR "
                        "is not set in this environment: poll fails unless it is set where it "
                        "runs")

    monkeypatch.setenv("MAILTHREADS_TEST_NO_SUCH_VAR", "app-password")
    path.write_text('[addresses]\ndomain = "blog.example"\n\n' + path.read_text())
    result = CliRunner().invoke(cli, ["-c", str(path), "config", "check"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{path}: OK\n", "")


def test_config_check_warns_about_a_port_that_contradicts_security(env, monkeypatch):
    monkeypatch.delenv("MAILTHREADS_SECRET", raising=False)
    path = env / "ports.toml"
    path.write_text('[addresses]\ndomain = "blog.example"\n\n[[imap]]\nhost = "imap.example"\n'
                    'port = 993\nsecurity = "starttls"\npassword_command = "pass imap"\n\n'
                    '[outgoing]\nhost = "smtp.example"\nport = 587\nsecurity = "tls"\n')
    result = CliRunner().invoke(cli, ["-c", str(path), "config", "check"])
    assert result.stderr.splitlines() == [
        f'Warning: {path}: outgoing.security: port 587 (SMTP submission) speaks plain text '
        'first, but security = "tls": set security = "starttls"',
        f'Warning: {path}: imap[0].security: port 993 (IMAP) speaks TLS on connect, but '
        'security = "starttls": set security = "tls"',
        f"{path}: no secret for signed reply addresses: set [addresses] secret ('mailthreads "
        "init' writes one) or MAILTHREADS_SECRET (mailthreads reply would refuse)",
        f"{path}: no [author] addresses in the config: answers go out from the first one "
        "(mailthreads reply would refuse)",
        f"Error: 2 problem(s) in {path}"]


def test_missing_explicit_config_is_an_error_but_default_config_is_optional(env, monkeypatch):
    result = CliRunner().invoke(cli, ["-c", str(env / "absent.toml"), "threads"])
    assert result.exit_code == 1 and "no such config file" in result.output
    monkeypatch.delenv("MAILTHREADS_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env / "xdg"))
    open_database(env / "mail.db").conn.close()
    assert "No threads" in run("threads")


def test_threads_table_is_paged_but_json_is_complete(env):
    for number in range(3):
        path = env / f"r{number}.eml"
        path.write_bytes(message(message_id=f"<p{number}@x>",
                                 to=f"reply+post-{number}@blog.example", minutes=number))
        run("ingest", str(path))
    result = CliRunner().invoke(cli, ["threads", "-n", "2"])
    assert result.exit_code == 0
    assert [line.split()[1] for line in result.stdout.splitlines()[2:]] == ["post-2", "post-1"]
    assert "1 older threads: -n 0 shows all" in result.stderr
    assert len(run_json("threads")) == 3
    assert len(run("threads", "-n", "0").splitlines()) == 2 + 3


def test_files_beside_the_mail_in_a_folder_are_skipped(env):
    maildir = write_maildir(env / "Maildir", [message(message_id="<beside@x>")])
    (maildir / "dovecot-uidlist").write_text("3 V1 N2\n")
    assert "1 messages: 1 stored" in run("ingest", str(env))


def test_init_writes_a_private_config(env, monkeypatch):
    config = env / "fresh" / "config.toml"
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
    run("init")
    assert config.stat().st_mode & 0o777 == 0o600
    assert 'secret = "' in config.read_text()


def test_init_force_keeps_the_secret_backs_up_and_names_what_it_replaced(env, monkeypatch):
    from mailthreads.config import load

    config = env / "fresh" / "config.toml"
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
    run("init", "--domain", "blog.example")
    with config.open("a") as handle:
        handle.write('\n[outgoing]\nhost = "smtp.blog.example"\n')
    before = config.read_text()
    secret = load(config).addresses.secret

    result = CliRunner().invoke(cli, ["init", "--force", "--domain", "blog.example"])
    assert result.exit_code == 0, result.output
    backup = config.with_name("config.toml.bak")
    assert f"Wrote config: {config} (the previous one is in {backup})" in result.stdout
    assert "Kept the token secret" in result.stdout
    assert result.stderr == ("Warning: not carried over from the previous config (it is in the "
                             "backup): [outgoing]\n")
    assert load(config).addresses.secret == secret  # signed Reply-Tos handed out still verify
    assert backup.read_text() == before and backup.stat().st_mode & 0o777 == 0o600

    result = CliRunner().invoke(cli, ["init", "--force", "--new-secret"])
    assert result.exit_code == 0, result.output
    assert load(config).addresses.secret != secret
    assert "new token secret: signed reply addresses handed out before no longer verify" \
        in result.stderr and "addresses.domain" in result.stderr
    assert config.with_name("config.toml.bak.2").exists()  # the first backup is not lost
    assert backup.read_text() == before
    run("init", "--new-secret", code=2)  # only with --force


def test_posts_close_and_reopen(env):
    run("posts", "add", "old-post")
    assert "closed to new discussions" in run("posts", "close", "old-post")
    assert "closed" in run("posts", "show", "old-post")
    path = env / "r.eml"
    path.write_bytes(message(to="reply+old-post@blog.example"))
    assert "1 quarantined" in run("ingest", str(path))
    run("posts", "reopen", "old-post")
    [entry] = run_json("quarantine", "list")
    assert "stored" in run("quarantine", "release", str(entry["id"]))
    result = CliRunner().invoke(cli, ["posts", "close", "nope"])
    assert result.exit_code == 1 and "no post with slug 'nope'" in result.output
