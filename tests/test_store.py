"""Store invariants on a real SQLite file."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailthreads.db import open_database, store

_ids = itertools.count()


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    db = open_database(tmp_path_factory.mktemp("store") / "store.db", durable=False)
    store.save_raw(db.conn, "0" * 64, b"raw")
    yield db.conn
    db.conn.close()


def _stamp(minute: int) -> str:
    return f"2026-11-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z"


message_strategy = st.tuples(
    st.sampled_from(["reply", "reply", "reply", "auto_reply", "bounce"]),
    st.sampled_from(["in", "out"]),
    st.booleans(),                     # read
    st.integers(0, 2000),              # Date header, in minutes
    st.integers(0, 2000),              # arrival, in minutes
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(message_strategy, min_size=1, max_size=12), st.booleans())
def test_incremental_thread_update_agrees_with_full_recomputation(conn, messages, archive):
    post = store.create_post(conn, f"post-{next(_ids)}")
    person = store.correspondent_for(conn, "", f"p{next(_ids)}@example.org")
    thread = store.thread_for(conn, post, person, "subject")
    if archive:
        store.set_archived(conn, thread, True)
    for kind, direction, read, date, arrival in messages:
        is_read = read or direction == "out" or kind != "reply"
        store.insert_message(conn, store.NewMessage(
            message_id=f"m{next(_ids)}@x", synthetic_message_id=False, message_id_reused=False,
            thread_id=thread, post_id=post, parent_message_id=None, direction=direction,
            kind=kind, kind_reasons=(), from_name="", from_address="a@x", to_addresses=(),
            cc_addresses=(), subject="s", date=_stamp(date), in_reply_to=None, references=(),
            visible_text="", quoted_text="", signature="", body_text="", body_html="",
            source="file", raw_sha256="0" * 64, identity_sha256=f"{next(_ids)}",
            is_read=is_read), _stamp(arrival))
        store.file_in_thread(conn, thread, kind=kind, direction=direction, is_read=is_read,
                             date=_stamp(date), received_at=_stamp(arrival))
    columns = "state, unread, message_count, last_activity, last_reply_at"
    incremental = conn.execute(f"SELECT {columns} FROM threads WHERE id = ?",
                               (thread,)).fetchone()
    store.refresh_thread(conn, thread, new_reply=False)
    recomputed = conn.execute(f"SELECT {columns} FROM threads WHERE id = ?",
                              (thread,)).fetchone()
    assert incremental == recomputed


def test_the_message_record_has_one_field_per_column(conn):
    # The INSERT is made from NewMessage's fields: a column missing here would never be filled.
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    assert columns - {"id", "received_at"} == set(store.NewMessage._fields)
    assert set(store.MessageRow._fields) <= columns


def _message(conn, thread, post, text: str, direction: str = "in") -> int:
    return store.insert_message(conn, store.NewMessage(
        message_id=f"m{next(_ids)}@x", synthetic_message_id=False, message_id_reused=False,
        thread_id=thread, post_id=post, parent_message_id=None, direction=direction,
        kind="reply", kind_reasons=(), from_name="", from_address="a@x", to_addresses=(),
        cc_addresses=(), subject="s", date=_stamp(1), in_reply_to=None, references=(),
        visible_text=text, quoted_text="", signature="", body_text="", body_html="",
        source="file", raw_sha256="0" * 64, identity_sha256=f"{next(_ids)}",
        is_read=False), _stamp(1))


def test_updating_columns_outside_the_full_text_index_leaves_it_alone(conn):
    # Re-indexing a message's text on every update (a verdict, a parent found later, is_read,
    # a thread merge) made FTS5 write out its pending index each time: filing got slower.
    post = store.create_post(conn, f"post-{next(_ids)}")
    person = store.correspondent_for(conn, "", f"p{next(_ids)}@example.org")
    thread = store.thread_for(conn, post, person, "subject")
    row = _message(conn, thread, post, "a quokka smiles")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        store.mark_thread_read(conn, thread)
        store.set_message_verdict(conn, "0" * 64, "ham", None, "test")
        assert [s for s in statements if "fts" in s.lower() or "TRIGGER" in s] == []
        # The indexed columns still are re-indexed when they change.
        conn.execute("UPDATE messages SET visible_text = 'a wombat digs' WHERE id = ?", (row,))
    finally:
        conn.set_trace_callback(None)
    found = {match: [r[0] for r in conn.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", (match,))]
        for match in ("quokka", "wombat")}
    assert found == {"quokka": [], "wombat": [row]}


def test_trust_is_one_index_look_up_per_thread(conn):
    # Asked for every incoming message: it must not read every message of the sender's threads.
    asked: list[str] = []
    conn.set_trace_callback(asked.append)
    try:
        store.is_trusted_address(conn, "nobody@example.org")
    finally:
        conn.set_trace_callback(None)
    plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {asked[0]}"))
    assert "SEARCH messages USING INDEX messages_out_thread (thread_id=?)" in plan
    post = store.create_post(conn, f"post-{next(_ids)}")
    person = store.correspondent_for(conn, "", f"t{next(_ids)}@example.org")
    thread = store.thread_for(conn, post, person, "subject")
    address = store.correspondent_addresses(conn, person)[0]
    _message(conn, thread, post, "hello")
    assert not store.is_trusted_address(conn, address)
    _message(conn, thread, post, "an answer", direction="out")
    assert store.is_trusted_address(conn, address)
