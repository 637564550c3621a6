"""The pipeline against a real SQLite file: routing, threading, de-duplication, quarantine."""

from __future__ import annotations

import json

import pytest
from mailfactory import bounce_of, message

from mailthreads.config import Addresses, Author, Config, Posts
from mailthreads.db import open_database, store
from mailthreads.ingest import Envelope, Pipeline

AUTHOR = "Blog Author <me@blog.example>"


@pytest.fixture
def config() -> Config:
    return Config(
        addresses=Addresses(domain="blog.example", catch_all_domain="replies.blog.example"),
        author=Author(name="Blog Author", addresses=("me@blog.example", "me@personal.example")),
        posts=Posts(create_on_first_reply=True),  # the default holds them (test_trust.py)
    )


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "mail.db")
    yield database
    database.conn.close()


@pytest.fixture
def pipeline(db, config) -> Pipeline:
    return Pipeline(db.conn, config)


def rows(db, sql, params=()):
    return [dict(row) for row in db.query(sql, params)]


def test_reply_to_post_address_starts_a_thread(pipeline, db):
    outcome = pipeline.accept(message(to="Reply <reply+why-i-blog@blog.example>"), "file")
    assert outcome.status == "stored"
    assert outcome.post == "why-i-blog"
    assert outcome.kind == "reply"
    assert outcome.direction == "in"
    [thread] = store.list_threads(db.conn)
    assert thread["id"] == outcome.thread
    assert thread["post"] == "why-i-blog"
    assert thread["correspondent_address"] == "jane@example.com"
    assert thread["state"] == "needs_reply"
    assert thread["unread"] == 1
    [msg] = rows(db, "select * from messages")
    assert msg["message_id"] == "m1@example.com"
    assert msg["visible_text"] == "I enjoyed this post."
    assert msg["direction"] == "in"


@pytest.mark.parametrize("recipient", [
    "REPLY+Why-I-Blog@Blog.Example",
    "why-i-blog@replies.blog.example",
    "Why-I-Blog@REPLIES.blog.example",
])
def test_plus_and_catch_all_addresses_route_case_insensitively(pipeline, recipient):
    outcome = pipeline.accept(message(to=recipient), "file")
    assert (outcome.status, outcome.post) == ("stored", "why-i-blog")


def test_envelope_recipient_wins_over_headers(pipeline):
    raw = message(to="reply+header-post@blog.example",
                  headers={"Delivered-To": "reply+delivered-post@blog.example"})
    outcome = pipeline.accept(raw, "smtp", Envelope("jane@example.com",
                                                     ("reply+envelope-post@blog.example",)))
    assert outcome.post == "envelope-post"
    assert pipeline.accept(message(message_id="<m2@x>", to="reply+header-post@blog.example",
                                   headers={"Delivered-To": "reply+delivered-post@blog.example"}),
                           "imap").post == "delivered-post"


def test_same_message_twice_is_stored_once_even_with_other_transport_headers(pipeline, db):
    first = message(headers={"Received": "from a by b", "Delivered-To": "x@blog.example"})
    second = message(headers={"Received": "from c by d", "X-Spam": "no",
                              "Return-Path": "<jane@example.com>"})
    assert pipeline.accept(first, "smtp").status == "stored"
    again = pipeline.accept(second, "imap")
    assert again.status == "duplicate"
    assert again.thread is not None
    assert db["messages"].count == 1
    assert db["raw_messages"].count == 2  # both copies kept raw, once each
    assert pipeline.accept(first, "file").status == "duplicate"
    assert db["raw_messages"].count == 2


def test_reused_message_id_with_other_body_is_kept_and_flagged(pipeline, db):
    pipeline.accept(message(body="first text\n"), "file")
    outcome = pipeline.accept(message(body="a different text\n"), "file")
    assert outcome.status == "stored"
    assert any("already used" in reason for reason in outcome.reasons)
    flags = [r["message_id_reused"] for r in rows(db, "select * from messages order by id")]
    assert flags == [0, 1]


def test_message_without_message_id_gets_a_stable_synthetic_one(pipeline, db):
    raw = message(message_id=None)
    outcome = pipeline.accept(raw, "file")
    assert outcome.message_id.endswith("@synthetic.mailthreads.invalid")
    assert pipeline.accept(raw, "file").status == "duplicate"
    assert rows(db, "select synthetic_message_id from messages")[0]["synthetic_message_id"] == 1


def test_unknown_post_is_created_when_enabled_and_quarantined_when_disabled(db, config):
    assert Pipeline(db.conn, config).accept(message(), "file").status == "stored"
    strict = config._replace(posts=Posts(create_on_first_reply=False))
    outcome = Pipeline(db.conn, strict).accept(
        message(message_id="<m2@x>", to="reply+unknown-post@blog.example"), "file")
    assert outcome.status == "quarantined"
    [entry] = store.list_quarantine(db.conn)
    assert "unknown post 'unknown-post'" in entry["reason"]
    assert b"unknown-post" in store.raw_message(db.conn, entry["raw_sha256"])


def test_message_with_no_route_is_quarantined_raw_with_reason(pipeline, db):
    outcome = pipeline.accept(message(to="someone@elsewhere.example"), "file")
    assert outcome.status == "quarantined"
    [entry] = store.list_quarantine(db.conn)
    assert "no reply address" in entry["reason"]
    assert db["messages"].count == 0


def test_unparseable_message_is_quarantined_with_its_bytes(db, config):
    tiny = config._replace(limits=config.limits._replace(max_message_size=100))
    raw = message(body="x" * 500)
    outcome = Pipeline(db.conn, tiny).accept(raw, "file")
    assert outcome.status == "quarantined"
    [entry] = store.list_quarantine(db.conn)
    assert "byte limit" in entry["reason"]
    assert store.raw_message(db.conn, entry["raw_sha256"]) == raw


def test_post_hint_files_messages_without_reply_address(db, config):
    pipeline = Pipeline(db.conn, config)
    outcome = pipeline.accept(message(to="me@blog.example"), "file", post_hint="old-post")
    assert (outcome.status, outcome.post) == ("stored", "old-post")


def test_correspondent_thread_is_reused_and_new_post_gets_new_thread(pipeline, db):
    first = pipeline.accept(message(message_id="<a@x>"), "file")
    second = pipeline.accept(message(message_id="<b@x>", minutes=5), "file")
    other = pipeline.accept(message(message_id="<c@x>", to="reply+other@blog.example"), "file")
    assert first.thread == second.thread != other.thread
    assert store.get_thread(db.conn, first.thread).messages == 2


def test_author_answer_is_out_in_thread_of_answered_message_and_marks_answered(pipeline, db):
    reply = pipeline.accept(message(message_id="<r1@example.com>"), "file")
    answer = pipeline.accept(message(
        sender=AUTHOR, to="Jane Reader <jane@example.com>", subject="Re: Why I blog",
        message_id="<a1@blog.example>", in_reply_to="<r1@example.com>",
        references="<r1@example.com>", minutes=10), "imap")
    assert answer.direction == "out"
    assert answer.thread == reply.thread
    thread = store.get_thread(db.conn, reply.thread)
    assert thread.state == "answered"
    assert thread.unread == 1  # the author's own message is not unread
    # The correspondent's next reply makes it need a reply again.
    pipeline.accept(message(message_id="<r2@example.com>", in_reply_to="<a1@blog.example>",
                            minutes=20), "file")
    assert store.get_thread(db.conn, reply.thread).state == "needs_reply"


def test_author_message_cc_reply_address_goes_to_first_recipient_thread(pipeline, db):
    outcome = pipeline.accept(message(
        sender=AUTHOR, to="New Reader <new@example.org>", message_id="<a2@blog.example>",
        headers={"Cc": "reply+why-i-blog@blog.example"}), "smtp")
    assert outcome.status == "stored"
    assert outcome.direction == "out"
    thread = store.get_thread(db.conn, outcome.thread)
    assert thread.correspondent_address == "new@example.org"
    assert thread.state == "answered"


def test_auto_reply_is_stored_but_not_counted_as_discussion(pipeline, db):
    reply = pipeline.accept(message(message_id="<r1@example.com>"), "file")
    auto = pipeline.accept(message(
        message_id="<ooo@example.com>", subject="Out of office: Re: Why I blog",
        body="I am away until Monday.\n", headers={"Auto-Submitted": "auto-replied"},
        minutes=3), "file")
    assert auto.status == "stored"
    assert auto.kind == "auto_reply"
    assert auto.thread == reply.thread
    thread = store.get_thread(db.conn, reply.thread)
    assert thread.messages == 1
    assert thread.unread == 1


def test_machine_mail_never_starts_a_thread(pipeline, db):
    auto = pipeline.accept(message(headers={"Auto-Submitted": "auto-replied"}), "file")
    assert auto.status == "stored"
    assert auto.thread is None
    assert store.list_threads(db.conn) == []


def test_bounce_of_author_answer_is_filed_in_that_thread(pipeline, db):
    reply = pipeline.accept(message(message_id="<r1@example.com>"), "file")
    pipeline.accept(message(sender=AUTHOR, to="jane@example.com",
                            message_id="<a1@blog.example>", in_reply_to="<r1@example.com>",
                            minutes=10), "imap")
    bounce = pipeline.accept(bounce_of("a1@blog.example"), "imap", Envelope("", ()))
    assert bounce.status == "stored"
    assert bounce.kind == "bounce"
    assert bounce.thread == reply.thread
    thread = store.get_thread(db.conn, reply.thread)
    assert thread.messages == 2  # the bounce is not discussion
    assert thread.state == "answered"


def test_unrouted_mail_is_ignored_when_asked(db, config):
    outcome = Pipeline(db.conn, config, unrouted="ignore").accept(
        message(to="me@blog.example"), "imap")
    assert outcome.status == "ignored"
    assert db["messages"].count == 0
    assert store.list_quarantine(db.conn) == []


def test_reply_found_by_reference_only_joins_the_thread(pipeline, db):
    reply = pipeline.accept(message(message_id="<r1@example.com>"), "file")
    pipeline.accept(message(sender=AUTHOR, to="jane@example.com", message_id="<a1@blog.example>",
                            in_reply_to="<r1@example.com>", minutes=10), "imap")
    follow_up = pipeline.accept(message(to="me@blog.example", message_id="<r2@example.com>",
                                        in_reply_to="<a1@blog.example>", minutes=20), "imap")
    assert follow_up.status == "stored"
    assert follow_up.thread == reply.thread
    assert follow_up.post == "why-i-blog"


def test_ghost_parents_join_replies_to_the_same_missing_message(pipeline, db):
    pipeline.accept(message(message_id="<c1@x>", in_reply_to="<missing@x>",
                            references="<root@x> <missing@x>"), "file")
    pipeline.accept(message(sender="Bob <bob@example.net>", message_id="<c2@x>",
                            in_reply_to="<missing@x>"), "file")
    parents = {r["message_id"]: r["parent_message_id"]
               for r in rows(db, "select message_id, parent_message_id from messages")}
    assert parents == {"c1@x": "missing@x", "c2@x": "missing@x"}
    ghosts = {r["message_id"]: r["parent_message_id"] for r in rows(db, "select * from ghosts")}
    assert ghosts == {"root@x": None, "missing@x": "root@x"}
    # When the missing message arrives it stops being a ghost.
    pipeline.accept(message(message_id="<missing@x>", in_reply_to="<root@x>"), "file")
    assert {r["message_id"] for r in rows(db, "select * from ghosts")} == {"root@x"}


def test_reply_loop_is_broken(pipeline, db):
    pipeline.accept(message(message_id="<l1@x>", in_reply_to="<l2@x>"), "file")
    outcome = pipeline.accept(message(message_id="<l2@x>", in_reply_to="<l1@x>"), "file")
    assert any("loop" in reason for reason in outcome.reasons)
    parents = {r["message_id"]: r["parent_message_id"]
               for r in rows(db, "select message_id, parent_message_id from messages")}
    assert parents == {"l1@x": "l2@x", "l2@x": None}


def test_html_only_reply_becomes_readable_text(pipeline, db):
    raw = message(body="", html="<p>Hello <b>there</b>, lovely post.</p>")
    pipeline.accept(raw, "file")
    [msg] = rows(db, "select visible_text, body_html from messages")
    assert "lovely post" in msg["visible_text"]
    assert "<b>" not in msg["visible_text"]


def test_signed_address_routes_its_correspondent_and_keeps_a_new_address_apart(db, config):
    from mailthreads.tokens import make_token

    config = config._replace(addresses=config.addresses._replace(secret="s" * 32))
    pipeline = Pipeline(db.conn, config)
    first = pipeline.accept(message(message_id="<r1@example.com>"), "file")
    thread = store.get_thread(db.conn, first.thread)
    token = make_token("s" * 32, "why-i-blog", thread.correspondent_id)
    signed = f"reply+why-i-blog.{token}@blog.example"
    again = pipeline.accept(message(to=signed, message_id="<r2@example.com>", minutes=20),
                            "smtp")
    assert again.thread == first.thread
    # A new address at the signed address may be Jane at work, or anyone Jane forwarded the
    # answer to: a thread of its own, marked, and nothing merged.
    other = pipeline.accept(message(sender="Jane at work <jane@work.example>", to=signed,
                                    message_id="<r3@work.example>", minutes=30), "smtp")
    assert other.status == "stored" and other.thread not in (None, first.thread)
    assert other.reasons[-1] == "marked: same person as Jane Reader <jane@example.com>?"
    assert store.correspondent_addresses(db.conn, thread.correspondent_id) == [
        "jane@example.com"]
    marked = store.get_thread(db.conn, other.thread)
    assert marked.possibly_same_as == thread.correspondent_id
    assert marked.correspondent_id != thread.correspondent_id
    assert store.get_thread(db.conn, first.thread).messages == 2
    forged = pipeline.accept(message(to=f"reply+why-i-blog.{'a' * 26}@blog.example",
                                     message_id="<r4@evil.example>"), "smtp")
    assert forged.status == "quarantined"
    assert "does not verify" in forged.reasons[-1]


def test_received_but_unprocessed_delivery_is_finished_later(pipeline, db, config):
    from mailthreads.ingest.filer import Filer

    delivery_id, _ = pipeline.receive(message(), "smtp", Envelope("jane@example.com",
                                                                   ("reply+p@blog.example",)))
    assert db["messages"].count == 0
    outcomes = Filer(db.conn, config).file_pending()
    assert [o.status for o in outcomes] == ["stored"]
    assert outcomes[0].post == "p"
    assert rows(db, "select status from deliveries")[0]["status"] == "stored"
    assert Filer(db.conn, config).file_pending() == []


def test_full_text_search_finds_visible_text_subject_and_correspondent(pipeline, db):
    pipeline.accept(message(body="The typewriter story moved me.\n"), "file")
    assert len(store.find_messages(db.conn, match="typewriter")) == 1
    assert len(store.find_messages(db.conn, match="jane")) == 1
    assert len(store.find_messages(db.conn, match="blog")) == 1
    assert store.find_messages(db.conn, match="nonexistentword") == []


def test_kind_reasons_are_recorded_as_json(pipeline, db):
    pipeline.accept(message(headers={"Auto-Submitted": "auto-replied"}), "file")
    [msg] = rows(db, "select kind, kind_reasons from messages")
    assert msg["kind"] == "auto_reply"
    assert json.loads(msg["kind_reasons"])


def test_unparseable_message_ingested_twice_is_quarantined_once(db, config):
    tiny = config._replace(limits=config.limits._replace(max_message_size=100))
    pipeline = Pipeline(db.conn, tiny)
    raw = message(body="x" * 500)
    pipeline.accept(raw, "file")
    pipeline.accept(raw, "file")
    assert len(store.list_quarantine(db.conn)) == 1


def test_deleting_a_quarantine_entry_keeps_bytes_a_pending_delivery_needs(pipeline, db):
    raw = message(to="nobody@elsewhere.example")
    pipeline.accept(raw, "file")
    [entry] = store.list_quarantine(db.conn)
    pipeline.receive(raw, "smtp")  # the same bytes, accepted again, not filed yet
    store.delete_quarantine(db.conn, entry["id"])
    assert store.raw_message(db.conn, entry["raw_sha256"]) == raw


def test_bulk_ingest_interrupted_leaves_no_half_filed_batch(db, config):
    from mailthreads.ingest.bulk import ingest_messages

    def interrupted():
        yield "a", message(message_id="<a@x>")
        yield "b", message(message_id="<b@x>", sender="Bob <bob@example.org>")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_messages(db.conn, config, interrupted(), workers=1)
    # Batches are committed whole (each once it is analysed), never a delivery without its
    # message.
    assert db["messages"].count == db["deliveries"].count <= 2
    assert not store.pending_deliveries(db.conn, 10)
    # Run again: everything goes in once, and the threads count their messages.
    again = [("a", message(message_id="<a@x>")),
             ("b", message(message_id="<b@x>", sender="Bob <bob@example.org>"))]
    summary = ingest_messages(db.conn, config, again, workers=1)
    assert summary.stored + summary.duplicate == 2
    assert [t["messages"] for t in store.list_threads(db.conn)] == [1, 1]


def test_bulk_ingest_commits_in_batches_even_when_analysis_is_the_slower_side(db, config):
    from mailthreads.ingest.bulk import ingest_messages

    def trickle(count: int):
        # Analysing a message costs more than filing it, so the main process keeps waiting
        # for the analysis workers.
        for number in range(count):
            yield str(number), message(message_id=f"<t{number}@x>", minutes=number)

    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    summary = ingest_messages(db.conn, config, trickle(600), workers=2, expected=600)
    db.conn.set_trace_callback(None)
    assert summary.stored == 600
    # One commit (an fsync) per second or per 500 messages, not one per message or two.
    commits = sum(1 for statement in statements if statement.strip().upper() == "COMMIT")
    assert 1 <= commits <= 10


def test_closed_post_takes_no_new_discussion_but_keeps_existing_ones(pipeline, db):
    first = pipeline.accept(message(message_id="<r1@x>"), "file")
    store.set_post_closed(db.conn, "why-i-blog", True)
    again = pipeline.accept(message(message_id="<r2@x>", minutes=5), "file")
    stranger = pipeline.accept(message(message_id="<s1@x>", sender="New <new@example.org>"),
                               "file")
    assert (again.status, again.thread) == ("stored", first.thread)
    assert stranger.status == "quarantined"
    assert "closed to new discussions" in stranger.reasons[-1]
