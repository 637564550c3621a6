"""Issue 13, the privacy half: ``forget`` a correspondent (nothing of them left in the database
files or the full-text vocabulary), the ``[notify]`` command run for new replies through a real
``serve``, and ``digest`` mailed through a real relay. All through the CLI on a real SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import test_triage
from mailfactory import message
from test_triage import database_bytes, ingest, run, run_json, thread_of

# A config for blog.example, author me@blog.example, and the database mail.db.
env = test_triage.env


# Words that occur nowhere but in what is to be forgotten.
HER_WORD = "zanzibarquokka"
QUOTED_WORD = "marmalisk"  # in her reply, quoted by the author's answer
SECOND_ADDRESS_WORD = "fjordwombat"  # from her second address, merged into her
QUARANTINED_WORD = "quillobrack"  # in mail of hers that could not be filed
HIS_WORD = "keepsakeotter"  # someone else's, which stays


def vocabulary(root: Path) -> set[str]:
    conn = sqlite3.connect(root / "mail.db")
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, messages_fts, 'row')")
        return {row[0] for row in conn.execute("SELECT term FROM temp.v")}
    finally:
        conn.close()


def her_mail() -> dict[str, bytes]:
    return {
        "reply": message(sender="Ann Example <ann@example.com>", message_id="<ann-1@example.com>",
                         body=f"The {HER_WORD} question, and {QUOTED_WORD} too.\n"),
        "answer": message(sender="Author <me@blog.example>", to="Ann <ann@example.com>",
                          message_id="<answer-1@blog.example>", in_reply_to="<ann-1@example.com>",
                          minutes=5, body=f"Thank you.\n\n> The {QUOTED_WORD} part, yes.\n"),
        # From her other address, answering the author: held as "same person?", then merged.
        "second": message(sender="Ann at work <ann@work.example>",
                          message_id="<ann-2@work.example>", in_reply_to="<answer-1@blog.example>",
                          minutes=10, body=f"Also {SECOND_ADDRESS_WORD} from work.\n"),
        # No reply address and no known reference: quarantined.
        "lost": message(sender="Ann Example <ann@example.com>", to="me@elsewhere.example",
                        message_id="<ann-3@example.com>", minutes=15,
                        body=f"A {QUARANTINED_WORD} note.\n"),
    }


def test_forget_leaves_nothing_of_the_person_on_disk(env):
    mail = her_mail()
    ingest(env, mail["reply"], mail["answer"], mail["second"], mail["lost"],
           message(sender="Bob <bob@example.com>", message_id="<bob-1@example.com>",
                   body=f"My {HIS_WORD} story.\n"))
    run("correspondents", "merge", str(thread_of("ann@work.example")))
    assert [q["from_address"] for q in run_json("quarantine", "list")] == ["ann@example.com"]
    for word in (HER_WORD, QUOTED_WORD, SECOND_ADDRESS_WORD, QUARANTINED_WORD):
        assert word.encode() in database_bytes(env)

    # The dry run lists, and changes nothing; so does a "no".
    dry = run_json("forget", "ann@work.example", "--dry-run")
    assert dry["addresses"] == ["ann@example.com", "ann@work.example"]
    assert [t["messages"] for t in dry["threads"]] == [3]
    assert len(dry["quarantine"]) == 1
    assert "Aborted" in run("forget", "ann@example.com", input="n\n", code=1)
    assert len(run_json("threads", "--all")) == 2

    output = run("forget", "ann@work.example", "--yes")
    assert "Forgot ann@example.com, ann@work.example: 1 threads, 3 messages" in output
    assert " s." in output  # how long it took

    on_disk = database_bytes(env)
    for word in (HER_WORD, QUOTED_WORD, SECOND_ADDRESS_WORD, QUARANTINED_WORD):
        assert word.encode() not in on_disk, word
    for address in (b"ann@example.com", b"ann@work.example", b"Ann Example", b"Ann at work"):
        assert address not in on_disk, address
    terms = vocabulary(env)
    # Porter stems: "keepsakeotter" is indexed as "keepsakeott".
    assert not any(term.startswith(("zanzibar", "marmalisk", "fjordwombat", "quillobrack", "ann"))
                   for term in terms)
    assert any(term.startswith("keepsakeott") for term in terms)  # the check can see words

    assert [row["correspondent_address"] for row in run_json("threads", "--all")] \
        == ["bob@example.com"]
    assert run_json("quarantine", "list") == []
    assert [c["addresses"] for c in run_json("correspondents", "list")] == [["bob@example.com"]]
    # The rows stay for id stability, nameless and marked.
    conn = sqlite3.connect(env / "mail.db")
    assert conn.execute("SELECT COUNT(*) FROM correspondents WHERE forgotten_at IS NOT NULL "
                        "AND name IS NULL").fetchone()[0] == 2
    conn.close()

    # A rescan of the same mail does not bring it back.
    ingest(env, *mail.values())
    assert [row["correspondent_address"] for row in run_json("threads", "--all")] \
        == ["bob@example.com"]
    assert run_json("quarantine", "list") == []
    assert HER_WORD.encode() not in database_bytes(env)
    assert "nothing is stored for nobody@example.com" in run(
        "forget", "nobody@example.com", "--yes", code=1)


# [notify] command: through a real serve ------------------------------------------------------

NOTIFY_SCRIPT = """import pathlib, sys
here = pathlib.Path(sys.argv[1])
if (here / "fail").exists():
    sys.stderr.write("cannot reach the phone\\n")
    sys.exit(3)
with open(here / "notified.jsonl", "a", encoding="utf-8") as out:
    out.write(sys.stdin.read().replace("\\n", " ") + "\\n")
"""


def live_reply(sender: str, message_id: str, body: str) -> bytes:
    """A reply written just now (old mail found late is not news)."""
    from mailfactory import _BASE

    return message(sender=sender, message_id=message_id, body=body,
                   minutes=int((datetime.now(UTC) - _BASE).total_seconds() // 60))


def notified(root: Path) -> list[dict]:
    path = root / "notified.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_notify_runs_once_per_live_reply_after_filing_and_retries_a_failure(env):
    from smtp_support import Serve, query, wait_for, write_config

    script = env / "notify.py"
    script.write_text(NOTIFY_SCRIPT)
    config = write_config(env, extra=f'\n[notify]\ncommand = "{sys.executable} {script} {env}"'
                                     "\ntimeout = 20\n")
    database = env / "mail.db"
    (env / "fail").write_text("")
    with Serve(database, config) as serve:
        send(serve.port, live_reply("Ann <ann@example.com>", "<n1@example.com>",
                                    "First, while the phone is off.\n"))
        # Filed at once; the command failed, was logged, and waits for a retry.
        wait_for(lambda: query(database, "SELECT attempts, last_error FROM notifications "
                                         "WHERE attempts > 0"), "a failed notification")
        [(status, attempts, error, retry_at)] = query(
            database, "SELECT command_status, attempts, last_error, next_attempt_at "
                      "FROM notifications")
        assert (status, attempts) == ("pending", 1) and "exit status 3" in error
        assert "cannot reach the phone" in error and retry_at
        assert query(database, "SELECT COUNT(*) FROM messages")[0][0] == 1
        assert "notify command failed" in serve.log()

        (env / "fail").unlink()
        # Time passes (the retry is due); the next reply wakes the runner, which runs both.
        conn = sqlite3.connect(database)
        with conn:
            conn.execute("UPDATE notifications SET next_attempt_at = '2000-01-01T00:00:00Z'")
        conn.close()
        send(serve.port, live_reply("Bea <bea@example.com>", "<n2@example.com>",
                                    "Second, with the phone on.\n"))
        wait_for(lambda: len(notified(env)) == 2, "two notifications")

        # A bulk ingest never notifies; old mail arriving late neither.
        ingest(env, live_reply("Cy <cy@example.com>", "<n3@example.com>", "Imported.\n"))
        send(serve.port, message(sender="Dee <dee@example.com>", message_id="<old@example.com>",
                                 body="Written long ago.\n"))
        send(serve.port, live_reply("Eve <eve@example.com>", "<n4@example.com>", "Third.\n"))
        wait_for(lambda: query(database, "SELECT COUNT(*) FROM notifications "
                                         "WHERE command_status = 'done'")[0][0] == 3,
                 "the third notification")
    lines = notified(env)
    assert [line["from"] for line in lines] == ["ann@example.com", "bea@example.com",
                                                 "eve@example.com"]
    first = lines[0]
    assert first["visible_text"] == "First, while the phone is off."
    assert first["post"] == "why-i-blog" and first["subject"] == "Re: Why I blog"
    assert first["from_name"] == "Ann" and first["received_at"].endswith("Z")
    assert first["thread"] == query(database, "SELECT thread_id FROM messages "
                                              "WHERE message_id = 'n1@example.com'")[0][0]
    assert query(database, "SELECT command_status, COUNT(*) FROM notifications "
                           "GROUP BY command_status") == [("done", 3)]
    # Forgetting a person takes their queued notifications with their messages.
    run("forget", "ann@example.com", "--yes")
    assert query(database, "SELECT COUNT(*) FROM notifications")[0][0] == 2


def send(port: int, raw: bytes) -> None:
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("sender@example.com", ["reply+why-i-blog@blog.example"], raw)


# digest: through a real relay ----------------------------------------------------------------


def test_digest_mails_new_replies_once_and_nothing_when_nothing_is_new(env, monkeypatch):
    from email import message_from_bytes, policy

    from relay_support import PASSWORD, running_relay
    from smtp_support import Serve, query, wait_for, write_config

    with running_relay(env, security="starttls") as relay:
        monkeypatch.setenv("RELAY_TEST_PASSWORD", PASSWORD)
        monkeypatch.setenv("SSL_CERT_FILE", str(relay.cafile))
        config = write_config(env, extra="\n[notify]\ndigest = true\n\n"
                                         + relay.outgoing_toml())
        monkeypatch.setenv("MAILTHREADS_CONFIG", str(config))
        database = env / "mail.db"
        with Serve(database, config) as serve:
            send(serve.port, live_reply("Ann <ann@example.com>", "<d1@example.com>",
                                        f"About the {HER_WORD} garden.\n"))
            send(serve.port, live_reply("Bob <bob@example.com>", "<d2@example.com>",
                                        "Nice post.\n"))
            wait_for(lambda: query(database, "SELECT COUNT(*) FROM notifications")[0][0] == 2,
                     "two filed replies")
            ingest(env, live_reply("Cy <cy@example.com>", "<d3@example.com>", "Imported.\n"))

            assert "Mailed 2 new replies to me@blog.example" in run("digest")
            [mail] = relay.received
            assert mail.rcpt_tos == ["me@blog.example"]
            parsed = message_from_bytes(mail.content, policy=policy.default)
            assert parsed["Subject"] == "mailthreads: 2 new replies in 2 discussions"
            assert parsed["Auto-Submitted"] == "auto-generated"
            body = parsed.get_content()
            assert f"About the {HER_WORD} garden." in body and "Nice post." in body
            assert "Imported." not in body  # a bulk ingest is not news
            assert "Ann <ann@example.com>" in body

            # Nothing new: nothing sent.
            assert "nothing sent" in run("digest")
            assert len(relay.received) == 1

            # The relay is down: exit 75, nothing recorded; the next run sends the same reply.
            send(serve.port, live_reply("Ann <ann@example.com>", "<d4@example.com>",
                                        "A second thought.\n"))
            wait_for(lambda: query(database, "SELECT COUNT(*) FROM notifications")[0][0] == 3,
                     "the third reply")
        relay.stop()
        run("digest", code=75)
        relay.start()
        assert "Mailed 1 new replies" in run("digest")
        body = message_from_bytes(relay.received[-1].content, policy=policy.default) \
            .get_content()
        assert "A second thought." in body and "Nice post." not in body
        assert query(database, "SELECT replies FROM digests ORDER BY id") == [(2,), (1,)]


def test_digest_needs_its_settings(env):
    ingest(env, message())
    assert "no [notify] digest in the config" in run("digest", code=1)
    assert "nothing sent" in run("digest", "--dry-run")
