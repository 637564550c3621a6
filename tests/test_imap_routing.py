"""Which mail in an everyday mailbox is for mailthreads: the routing rules the poller relies on.

The pipeline with ``unrouted="ignore"`` (as the poller runs it) against a real SQLite file:
mail with no reply address and no reference to a stored message is still filed when it comes
from a known correspondent to one of the author's addresses, or when the author writes to a
known correspondent about a known post. Everything else is ``ignored``.
"""

from __future__ import annotations

import pytest
from mailfactory import message

from mailthreads.config import Addresses, Author, Config, Posts
from mailthreads.db import open_database, store
from mailthreads.ingest import Pipeline

AUTHOR = "Blog Author <me@blog.example>"
JANE = "Jane Reader <jane@example.com>"


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "mail.db")
    yield database.conn
    database.conn.close()


@pytest.fixture
def pipeline(db) -> Pipeline:
    config = Config(addresses=Addresses(domain="blog.example"),
                    author=Author(name="Blog Author",
                                  addresses=("me@blog.example", "me@personal.example")),
                    posts=Posts(create_on_first_reply=True))  # the default holds them
    return Pipeline(db, config, unrouted="ignore")


@pytest.fixture
def jane_thread(pipeline, db) -> int:
    """Jane replied to two posts; the second discussion is the more recent one."""
    store.upsert_post(db, "why-i-blog", "Why I blog", "https://blog.example/why-i-blog/")
    store.upsert_post(db, "on-rss", "On RSS", "https://blog.example/on-rss/")
    db.commit()
    pipeline.accept(message(sender=JANE, message_id="<j1@example.com>"), "imap")
    latest = pipeline.accept(message(sender=JANE, to="reply+on-rss@blog.example",
                                     subject="Re: On RSS", message_id="<j2@example.com>",
                                     minutes=10), "imap")
    return latest.thread


def test_known_correspondent_to_the_authors_address_joins_their_latest_discussion(
        pipeline, jane_thread):
    outcome = pipeline.accept(message(sender=JANE, to="me@personal.example",
                                      subject="Another thought", message_id="<j3@example.com>",
                                      minutes=20), "imap")
    assert (outcome.status, outcome.post, outcome.thread) == ("stored", "on-rss", jane_thread)
    assert any("known correspondent" in reason for reason in outcome.reasons)


@pytest.mark.parametrize("fields", [
    # A stranger writing to the author.
    {"sender": "Bob <bob@example.net>", "to": "me@personal.example"},
    # Jane, but to someone else (the author is only Bcc'd or it is a list).
    {"sender": JANE, "to": "list@lists.example"},
    # Jane's out-of-office: machine mail does not start or join a discussion by this rule.
    {"sender": JANE, "to": "me@personal.example", "subject": "Out of office",
     "headers": {"Auto-Submitted": "auto-replied"}},
])
def test_other_mail_in_the_inbox_is_ignored(pipeline, db, jane_thread, fields):
    outcome = pipeline.accept(message(message_id="<other@example.net>", **fields), "imap")
    assert outcome.status == "ignored"
    assert not store.message_id_known(db, "other@example.net")


def test_authors_message_with_the_subject_of_a_discussion_joins_it(pipeline, jane_thread):
    outcome = pipeline.accept(message(sender=AUTHOR, to=JANE, subject="RE: Re: On RSS",
                                      message_id="<a1@blog.example>", minutes=30), "imap")
    assert (outcome.status, outcome.direction, outcome.thread) == ("stored", "out", jane_thread)


def test_authors_message_naming_a_post_by_url_goes_to_that_post(pipeline, db, jane_thread):
    outcome = pipeline.accept(message(
        sender=AUTHOR, to=JANE, subject="A question", message_id="<a2@blog.example>",
        body="About https://blog.example/why-i-blog/ -- may I quote you?\n", minutes=30), "imap")
    assert (outcome.status, outcome.direction, outcome.post) == ("stored", "out", "why-i-blog")
    assert outcome.thread != jane_thread
    assert store.get_thread(db, outcome.thread).correspondent_address == "jane@example.com"


def test_authors_message_naming_a_post_by_title_in_the_subject(pipeline, jane_thread):
    outcome = pipeline.accept(message(sender=AUTHOR, to=JANE, subject="Why I blog, part two",
                                      message_id="<a3@blog.example>", minutes=30), "imap")
    assert (outcome.status, outcome.post) == ("stored", "why-i-blog")


@pytest.mark.parametrize("fields", [
    # To Jane, about nothing mailthreads knows.
    {"to": JANE, "subject": "Lunch?", "body": "Free on Friday?\n"},
    # About a post, but to someone who never wrote in.
    {"to": "Editor <ed@magazine.example>", "subject": "Why I blog",
     "body": "https://blog.example/why-i-blog/\n"},
])
def test_authors_other_mail_is_ignored(pipeline, db, jane_thread, fields):
    outcome = pipeline.accept(message(sender=AUTHOR, message_id="<private@blog.example>",
                                      **fields), "imap")
    assert outcome.status == "ignored"
