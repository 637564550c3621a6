"""The poller's parts that need no server: batching, summaries, secrets, config, the lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailthreads.config import ConfigError, ImapAccount, load
from mailthreads.lock import LockHeld, hold
from mailthreads.transport.imap.connection import SettingsProblem, account_secret
from mailthreads.transport.imap.sync import BATCH_MESSAGES, FolderReport, _batches


def test_batches_keep_uid_order_and_respect_count_and_bytes():
    uids = list(range(1, 2 * BATCH_MESSAGES + 6))
    batches = list(_batches(uids, {}, limit=100))
    assert [uid for batch in batches for uid in batch] == uids
    assert [len(batch) for batch in batches] == [BATCH_MESSAGES, BATCH_MESSAGES, 5]

    sizes = {1: 20_000_000, 2: 20_000_000, 3: 10}
    assert list(_batches([1, 2, 3], sizes, limit=25_000_000)) == [[1], [2, 3]]


def test_a_message_over_the_limit_is_a_batch_of_its_own():
    sizes = {1: 10, 2: 500, 3: 10, 4: 10}
    assert list(_batches([1, 2, 3, 4], sizes, limit=100)) == [[1], [2], [3, 4]]


def test_summary_lines():
    report = FolderReport("fastmail", "INBOX", "inbox", new=5, stored=2, duplicate=1,
                          quarantined=1, ignored=1, handled_on_server=4,
                          rescan="UIDVALIDITY changed: folder read again, nothing stored twice")
    assert report.line("move:Archive") == (
        "fastmail INBOX: 5 new: 2 stored, 1 duplicate, 1 quarantined, 1 left alone; "
        "4 moved to Archive (UIDVALIDITY changed: folder read again, nothing stored twice)")
    assert FolderReport("a", "Sent", "sent").line() == "a Sent: nothing new"
    rescan = FolderReport("a", "INBOX", "inbox", new=1, stored=2, ignored=1, deleted=1,
                          read_again=3, filed_before=7, rescan="read again as asked (--rescan)")
    assert rescan.line() == (
        "a INBOX: 1 new, 3 read again: 2 stored, 0 duplicate, 0 quarantined, 1 left alone, "
        "1 deleted by you before, not filed again (read again as asked (--rescan); 7 filed "
        "before, not fetched again)")


def test_routing_settings_change_with_what_decides_which_mail_is_ours():
    from mailthreads.config import Addresses, Author, Config, Limits, Posts
    from mailthreads.transport.imap.sync import _changed_settings, routing_settings

    base = Config(addresses=Addresses(domain="blog.example"),
                  author=Author(addresses=("me@blog.example",)))
    same = [base._replace(addresses=base.addresses._replace(secret="s3cret")),
            base._replace(posts=Posts(create_on_first_reply=True)),
            base._replace(limits=Limits(max_message_size=1000)),
            base._replace(author=Author(name="Ada", addresses=("ME@blog.example",)))]
    for config in same:
        assert routing_settings(config) == routing_settings(base)
    changes = {
        "[addresses] domain": base.addresses._replace(domain="example.org"),
        "[addresses] local_part": base.addresses._replace(local_part="comments"),
        "[addresses] separator": base.addresses._replace(separator="-"),
        "[addresses] catch_all_domain": base.addresses._replace(catch_all_domain="r.example"),
    }
    for name, addresses in changes.items():
        changed = routing_settings(base._replace(addresses=addresses))
        assert _changed_settings(routing_settings(base), changed) == [name]
    more = base._replace(author=Author(addresses=("me@blog.example", "me@home.example")))
    assert _changed_settings(routing_settings(base), routing_settings(more)) == [
        "[author] addresses"]
    assert "s3cret" not in routing_settings(same[0])


def test_password_command_first_line_and_env(monkeypatch):
    account = ImapAccount(name="a", host="h", password_command="printf 'pw one\\nmore\\n'")
    assert account_secret(account) == "pw one"
    monkeypatch.setenv("MT_TEST_PW", "from-env")
    assert account_secret(ImapAccount(name="a", host="h", password_env="MT_TEST_PW")) \
        == "from-env"
    token = ImapAccount(name="a", host="h", auth="oauth2", oauth2_token_command="echo tok")
    assert account_secret(token) == "tok"


@pytest.mark.parametrize("account, expected", [
    (ImapAccount(name="a", host="h", password_command="exit 4"), "exited with 4"),
    (ImapAccount(name="a", host="h", password_command="true"), "printed nothing"),
    (ImapAccount(name="a", host="h", password_env="MT_TEST_SURELY_UNSET"), "is not set"),
])
def test_secret_failures_are_settings_problems(account, expected):
    with pytest.raises(SettingsProblem, match=expected) as caught:
        account_secret(account)
    assert not caught.value.temporary


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_imap_config_keys(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    config = load(write(tmp_path, f"""
        [[imap]]
        name = "own"
        host = "mail.example"
        security = "starttls"
        username = "me"
        password_command = "pass show mail"
        folders = ["INBOX", "Replies"]
        sent_folder = "Sent Items"
        after = "move:Archive"
        idle_timeout = 60
        poll_interval = 30
        tls_ca_file = "{ca}"
        """))
    account = config.imap[0]
    assert (account.folders, account.sent_folder, account.after) == (
        ("INBOX", "Replies"), "Sent Items", "move:Archive")
    assert (account.idle_timeout, account.poll_interval, account.tls_ca_file) == (60, 30, str(ca))


def test_imap_config_mistakes_are_all_reported(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, """
            [[imap]]
            host = "mail.example"
            port = 70000
            password = "hunter2"
            after = "delete"
            tls_ca_file = "/nonexistent/ca.pem"
            """))
    text = "\n".join(caught.value.problems)
    for expected in ("is not a TCP port", "passwords do not belong in the config",
                     "must be leave, seen or move:FOLDER", "no such file: /nonexistent/ca.pem"):
        assert expected in text


def test_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    path = tmp_path / "db.poll.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from mailthreads.lock import hold
            with hold(Path({str(path)!r}), "test"):
                print("held", flush=True)
                time.sleep(60)
            """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=f"pid {holder.pid}"), hold(path, "poller"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        # The kernel dropped the killed holder's lock; held again, it still excludes others.
        with hold(path, "poller"), pytest.raises(LockHeld), hold(path, "poller"):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()
