"""Tombstones through the SMTP listener: a message the author deleted is dropped again when it
arrives by SMTP (the IMAP poller and file ingest: test_imap_rescan.py)."""

from __future__ import annotations

import smtplib

from smtp_support import Serve, message, query, wait_for, write_config

from mailthreads.db import open_database, store
from mailthreads.mail.analysis import analyse


def test_a_deleted_message_sent_again_by_smtp_is_not_filed(tmp_path):
    database = tmp_path / "mail.db"
    forgotten = message(message_id="forgotten@example.com", body="Please forget this.\n")
    kept = message(message_id="kept@example.com", body="Keep this one.\n")
    db = open_database(database)
    store.add_tombstone(db.conn, "forget", identity_sha256=analyse(forgotten).identity_sha256)
    db.conn.commit()
    db.conn.close()
    with Serve(database, write_config(tmp_path)) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            assert client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                                   forgotten) == {}
            assert client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                                   kept) == {}
        wait_for(lambda: "status=deleted" in server.log() and "status=stored" in server.log(),
                 "both messages to be filed")
        assert query(database, "SELECT message_id FROM messages") == [("kept@example.com",)]
        # Its raw bytes and delivery went again: only the kept message's are left.
        assert query(database, "SELECT COUNT(*) FROM raw_messages") == [(1,)]
        assert query(database, "SELECT status FROM deliveries") == [("stored",)]
