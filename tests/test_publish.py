"""Publishing with consent (issue 13) through the CLI, on a real SQLite file: ``consent``
(with the question drafted in the outbox and sent to a real relay only when named),
``export`` to Markdown, HTML (with a hostile message), JSON and mbox (read back by Python's
mailbox module), ``posts list --json`` for static sites.
"""

from __future__ import annotations

import json
import mailbox
import re
import stat
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailfactory import message
from relay_support import PASSWORD, running_relay
from test_triage import CONFIG as TRIAGE_CONFIG
from test_triage import ingest, run

from mailthreads.cli import cli

CONFIG = TRIAGE_CONFIG.replace('name = "Author"', 'name = "Zoë Author"')
HOSTILE = (
    'Look: <script>alert("mail")</script> and <img src=x onerror="alert(1)">\n'
    '<a href="javascript:alert(2)" onclick="steal()">click</a> [me](javascript:alert(3))\n'
    "&lt;b&gt;entity&lt;/b&gt; \"quotes' and ]]> --> <!-- </textarea></style>\n"
)


@pytest.fixture
def env(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(CONFIG)
    monkeypatch.setenv("MAILTHREADS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("MAILTHREADS_DB", str(tmp_path / "mail.db"))
    monkeypatch.delenv("MAILTHREADS_SECRET", raising=False)
    yield tmp_path
    monkeypatch.undo()
    time.tzset()  # TZ as it was, for the tests that follow


def jane_thread(env: Path) -> None:
    """Thread 1: Jane writes (signature, quote), the author answers, Jane writes again."""
    ingest(env,
           message(body="I enjoyed this post.\nIt made me think.\n\n> Why I blog, you asked\n"
                        "> in your post.\n\n-- \nJane Reader\nhttps://jane.example\n"),
           message(sender="Zoë Author <me@blog.example>", to="jane@example.com",
                   message_id="<a1@blog.example>", in_reply_to="<m1@example.com>",
                   body="Thank you, Jane.\n", minutes=60),
           message(message_id="<m2@example.com>", in_reply_to="<a1@blog.example>",
                   body="You are welcome.\n", minutes=120))


def test_consent_is_recorded_shown_and_required_by_export(env):
    jane_thread(env)
    [row] = json.loads(run("threads", "--json"))
    assert (row["consent"], row["consent_at"]) == (None, None)

    result = CliRunner().invoke(cli, ["export", "1"])
    assert result.exit_code == 1
    assert "consent to publish never asked" in result.output
    assert "--without-consent" in result.output
    assert "enjoyed" not in result.output

    assert "consent to publish granted on" in run("consent", "1", "granted")
    [row] = json.loads(run("threads", "--json"))
    assert row["consent"] == "granted"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["consent_at"])
    assert json.loads(run("show", "1", "--json"))["consent"] == "granted"
    assert "Consent to publish: granted on " + row["consent_at"][:10] in run(
        "show", "1", "--no-pager")
    assert "I enjoyed this post" in run("export", "1")

    run("consent", "1", "revoked")
    assert CliRunner().invoke(cli, ["export", "1"]).exit_code == 1
    output = run("export", "1", "--without-consent")
    assert "consent to publish revoked" in output and "I enjoyed this post" in output


def test_consent_ask_drafts_a_question_that_only_a_named_send_sends(env, monkeypatch):
    jane_thread(env)
    with running_relay(env, security="starttls") as relay:
        (env / "config.toml").write_text(CONFIG + "\n" + relay.outgoing_toml())
        monkeypatch.setenv("RELAY_TEST_PASSWORD", PASSWORD)
        monkeypatch.setenv("SSL_CERT_FILE", str(relay.cafile))
        output = run("consent", "1", "ask")
        assert "drafted as reply 1 (not sent)" in output
        [entry] = json.loads(run("outbox", "list", "--json"))
        assert (entry["status"], entry["to_address"]) == ("draft", "jane@example.com")
        assert "may I" in entry["body"].lower() or "May I?" in entry["body"]
        assert json.loads(run("threads", "--json"))[0]["consent"] == "asked"

        said = run("outbox", "send")  # what cron runs: never a draft
        assert relay.received == []
        assert "empty" not in said and "1 draft waits" in said, said
        assert "outbox send 1" in said, said
        assert json.loads(run("outbox", "list", "--json"))[0]["status"] == "draft"

        editor = env / "editor.py"
        editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                          "p.write_text('Hello Jane, may I quote you?\\n')\n")
        monkeypatch.setenv("EDITOR", f"python3 {editor}")
        monkeypatch.delenv("VISUAL", raising=False)
        run("outbox", "edit", "1")
        assert json.loads(run("outbox", "list", "--json"))[0]["status"] == "draft"
        run("outbox", "send")
        assert relay.received == []

        assert "sent to jane@example.com" in run("outbox", "send", "1")
        [sent] = relay.received
        assert b"may I quote you?" in sent.content
        assert json.loads(run("outbox", "list", "--all", "--json"))[0]["status"] == "sent"


def test_markdown_reads_as_a_conversation_in_the_author_time_zone(env, monkeypatch):
    jane_thread(env)
    run("consent", "1", "granted")
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    text = run("export", "1")
    assert "**Jane Reader** · Sun 1 Nov 2026 10:00 CET" in text  # 09:00 UTC
    assert "**Zoë Author** · Sun 1 Nov 2026 11:00 CET" in text
    assert "I enjoyed this post.  \nIt made me think." in text
    assert "*(2 quoted lines left out)*" in text
    assert "Why I blog, you asked" not in text
    assert "jane@example.com" not in text and "https://jane.example" not in text

    full = run("export", "1", "--signatures", "--addresses", "--quotes")
    assert "**Jane Reader &lt;jane@example.com&gt;**" in full
    assert "https://jane.example" in full
    assert "> Why I blog, you asked" in full


def test_html_export_is_self_contained_and_nothing_from_mail_is_markup(env):
    ingest(env, message(sender='"Mal <script>x</script> Lory" <mal@example.com>',
                        subject='Re: <b onmouseover="alert(4)">Why</b>',
                        body=HOSTILE + "\n-- \n<script>sig()</script>\n"))
    run("consent", "1", "granted")
    out = env / "thread.html"
    run("export", "1", "--format", "html", "-o", str(out), "--signatures", "--addresses")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    page = out.read_text(encoding="utf-8")

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.attributes, self.text = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.attributes.extend(attrs)

        def handle_data(self, data):
            self.text.append(data)

        def handle_comment(self, data):
            raise AssertionError(f"a comment from mail: {data!r}")

    parsed = Collect()
    parsed.feed(page)
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "style", "body", "section",
                                "h2", "article", "p", "strong", "time", "div", "details",
                                "summary", "em"}
    assert {name for name, _ in parsed.attributes} <= {"charset", "http-equiv", "content",
                                                        "name", "class", "datetime"}
    assert not any("javascript" in (value or "") or "alert" in (value or "")
                   for _, value in parsed.attributes)
    text = "".join(parsed.text)
    for piece in ('<script>alert("mail")</script>', 'onerror="alert(1)"',
                  '<a href="javascript:alert(2)" onclick="steal()">', "&lt;b&gt;entity",
                  "</textarea></style>", "<!--", "<script>sig()</script>",
                  "Mal <script>x</script> Lory <mal@example.com>",
                  '<b onmouseover="alert(4)">Why</b>'):
        assert piece in text, piece
    assert "http" not in page.split("<body>")[0].replace("http-equiv", "")  # nothing fetched


def test_markdown_of_a_hostile_message_has_no_html_and_no_link(env):
    ingest(env, message(body=HOSTILE))
    text = run("export", "1", "--without-consent")
    assert "<" not in text.split("\n", 1)[1]  # every < from mail is &lt;
    assert "\\[me\\](javascript" in text  # shown as text, not a link
    assert not re.search(r"(?<!\\)\]\(", text)


def test_json_export_and_several_threads_of_a_post(env):
    jane_thread(env)
    ingest(env, message(sender="Ann <ann@example.org>", message_id="<ann1@example.org>",
                        body="Another view.\n", minutes=200),
           message(to="reply+other@blog.example", message_id="<o1@example.com>",
                   body="Elsewhere.\n"))
    for thread in ("1", "2", "3"):
        run("consent", thread, "granted")
    document = json.loads(run("export", "--post", "why-i-blog", "--format", "json"))
    assert [t["post"] for t in document["threads"]] == ["why-i-blog", "why-i-blog"]
    jane = document["threads"][0]["messages"]
    assert [m["who"] for m in jane] == ["Jane Reader", "Zoë Author", "Jane Reader"]
    assert "address" not in jane[0] and jane[0]["signature"] == ""
    assert "Elsewhere" not in json.dumps(document)
    assert CliRunner().invoke(cli, ["export", "--post", "nope"]).exit_code == 1


def test_mbox_holds_the_exact_messages_for_any_mail_client(env):
    plain = message(body="No separator here.\n")
    tricky = message(message_id="<m2@example.com>", minutes=5,
                     body="From the start of a line\n>From quoted once\nFrom: not a header\n")
    ingest(env, plain, tricky)
    out = env / "thread.mbox"
    run("export", "1", "--format", "mbox", "-o", str(out), "--without-consent")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    box = mailbox.mbox(str(out))
    read = [box.get_bytes(key) for key in box.iterkeys()]
    assert len(read) == 2
    assert read[0] == plain
    # mboxrd: one '>' was added to every line starting with >*"From "; taking it off again
    # gives back the exact bytes.
    assert b"\n>From the start" in read[1] and b"\n>>From quoted once" in read[1]
    assert re.sub(rb"(?m)^>(>*From )", rb"\1", read[1]) == tricky


def test_posts_list_json_has_what_a_static_site_needs(env):
    run("posts", "add", "why-i-blog", "--title", "Why I blog")
    [post] = json.loads(run("posts", "list", "--json"))
    link = json.loads(run("posts", "link", "why-i-blog", "--json"))
    assert post["reply_address"] == link["address"]
    assert post["mailto"] == link["mailto"]
    assert post["html"] == link["html"]
    assert post["mailto"].startswith("mailto:reply+why-i-blog@blog.example?subject=")


def test_export_never_writes_over_the_database_or_an_existing_file(env):
    jane_thread(env)
    database = env / "mail.db"
    before = database.read_bytes()
    for target in (database, env / "mail.db-wal"):
        result = CliRunner().invoke(cli, ["export", "1", "--without-consent", "-o", str(target)])
        assert result.exit_code == 1 and "is the mailthreads database" in result.output
    assert database.read_bytes() == before
    kept = env / "notes.md"
    kept.write_text("my own notes\n")
    result = CliRunner().invoke(cli, ["export", "1", "--without-consent", "-o", str(kept)])
    assert result.exit_code == 1 and "--force" in result.output
    assert kept.read_text() == "my own notes\n"
    run("export", "1", "--without-consent", "-o", str(kept), "--force")
    assert "I enjoyed this post" in kept.read_text()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_published_text_carries_no_terminal_escapes_or_bidi_overrides(env):
    ingest(env, message(sender="Eve\x1b]0;owned\x07 <eve@example.com>",
                        subject="Hi \u202egnp.exe", body="Read \x1b[2Jthis \u202eplease\n"))
    for fmt in ("markdown", "html", "json"):
        text = run("export", "1", "--without-consent", "-f", fmt)
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text, fmt
    # Made visible (and Markdown-escaped), as on a terminal.
    assert r"\\x1b\[2Jthis" in run("export", "1", "--without-consent")
    run("export", "1", "--without-consent", "-f", "json", "-o", str(env / "x.json"))
    data = json.loads((env / "x.json").read_text())  # the escapes decode to the exact text
    assert data["threads"][0]["messages"][0]["text"] == "Read \x1b[2Jthis \u202eplease"
