"""The schema, one function per step, applied in order on open (sqlite-utils Migrations).

Never edit a step that has shipped: add a new one, and raise ``db.SCHEMA_VERSION`` to the
number of steps. That number is written to
``PRAGMA user_version`` after the steps run, so that read-only commands can check that the
schema is current without importing sqlite-utils.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("mailthreads")


@migrations()
def m001_initial(db: Database) -> None:
    db["posts"].create(
        {
            "id": int,
            "slug": str,
            "title": str,
            "url": str,
            "closed": int,
            "aliases": str,  # JSON array of other slugs that route here
            "created_at": str,
        },
        pk="id",
        not_null={"slug", "closed", "created_at"},
        defaults={"closed": 0, "aliases": "[]"},
    )
    db["posts"].create_index(["slug"], unique=True)

    db["correspondents"].create(
        {"id": int, "name": str, "created_at": str}, pk="id", not_null={"created_at"}
    )
    db["correspondent_addresses"].create(
        {"address": str, "correspondent_id": int, "created_at": str},
        pk="address",
        foreign_keys=[("correspondent_id", "correspondents", "id")],
    )
    db["correspondent_addresses"].create_index(["correspondent_id"])

    db["threads"].create(
        {
            "id": int,
            "post_id": int,
            "correspondent_id": int,
            "subject": str,
            "state": str,  # needs_reply, answered, archived
            "unread": int,  # incoming replies not yet shown
            "message_count": int,  # human messages, both directions
            "last_activity": str,  # ISO 8601 UTC of the newest message
            "last_reply_at": str,  # when the newest human message was written (or arrived)
            "created_at": str,
        },
        pk="id",
        not_null={"post_id", "correspondent_id", "state", "unread", "message_count"},
        defaults={"unread": 0, "message_count": 0, "state": "needs_reply"},
        foreign_keys=[("post_id", "posts", "id"), ("correspondent_id", "correspondents", "id")],
    )
    db["threads"].create_index(["post_id", "correspondent_id"], unique=True)
    db["threads"].create_index(["last_activity"])

    db["raw_messages"].create(
        {
            "sha256": str,
            "size": int,
            "raw": bytes,
            "first_seen": str,
        },
        pk="sha256",
        not_null={"size", "raw", "first_seen"},
    )

    # Every delivery of raw bytes, in arrival order. The SMTP listener commits one of these
    # before it answers 250; the pipeline picks up the ones still pending.
    db["deliveries"].create(
        {
            "id": int,
            "raw_sha256": str,
            "source": str,  # smtp, imap, file, cli
            "envelope_from": str,
            "envelope_to": str,  # JSON array
            "origin": str,  # file path, IMAP account/folder/uid, peer address
            "post_hint": str,  # ingest --post SLUG
            "received_at": str,
            "status": str,  # pending, stored, duplicate, quarantined, ignored
            "message_id": str,
        },
        pk="id",
        not_null={"raw_sha256", "source", "received_at", "status"},
        foreign_keys=[("raw_sha256", "raw_messages", "sha256")],
    )
    db["deliveries"].create_index(["status"])

    db["messages"].create(
        {
            "id": int,
            "message_id": str,  # bare id, no angle brackets
            "synthetic_message_id": int,  # 1 when the message had none and we derived one
            "message_id_reused": int,  # 1 when another, different message had this id first
            "thread_id": int,
            "post_id": int,
            "parent_message_id": str,  # nearest known or ghost ancestor
            "direction": str,  # in, out
            "kind": str,  # reply, auto_reply, bounce, feedback_report, other
            "kind_reasons": str,  # JSON array
            "from_name": str,
            "from_address": str,
            "to_addresses": str,  # JSON array
            "cc_addresses": str,  # JSON array
            "subject": str,
            "date": str,  # ISO 8601 UTC, from the Date header (or arrival when absent)
            "in_reply_to": str,
            "references": str,  # JSON array of bare ids
            "visible_text": str,
            "quoted_text": str,
            "signature": str,
            "body_text": str,
            "body_html": str,
            "source": str,
            "raw_sha256": str,
            "identity_sha256": str,  # Message-ID + sender + body: what makes two copies one
            "is_read": int,
            "received_at": str,
        },
        pk="id",
        not_null={"message_id", "direction", "kind", "source", "raw_sha256", "identity_sha256",
                  "received_at"},
        defaults={"is_read": 0, "synthetic_message_id": 0, "message_id_reused": 0},
        foreign_keys=[
            ("thread_id", "threads", "id"),
            ("post_id", "posts", "id"),
            ("raw_sha256", "raw_messages", "sha256"),
        ],
    )
    db["messages"].create_index(["message_id"])
    db["messages"].create_index(["identity_sha256"], unique=True)
    db["messages"].create_index(["thread_id", "date"])
    db["messages"].create_index(["parent_message_id"])
    db["messages"].enable_fts(
        ["subject", "visible_text", "from_name", "from_address"],
        fts_version="FTS5",
        create_triggers=True,
        tokenize="porter unicode61",
    )

    # Ancestors named in References or In-Reply-To that were never received. They keep the
    # tree together: two replies to the same missing message share it as parent.
    db["ghosts"].create(
        {"message_id": str, "parent_message_id": str, "first_seen": str}, pk="message_id"
    )

    db["attachments"].create(
        {
            "id": int,
            "message_id": int,  # messages.id
            "filename": str,
            "content_type": str,
            "size": int,
            "sha256": str,
            "content": bytes,
        },
        pk="id",
        foreign_keys=[("message_id", "messages", "id")],
    )
    db["attachments"].create_index(["message_id"])

    db["quarantine"].create(
        {
            "id": int,
            "raw_sha256": str,
            "delivery_id": int,
            "reason": str,
            "source": str,
            "subject": str,
            "from_address": str,
            "created_at": str,
        },
        pk="id",
        not_null={"raw_sha256", "reason", "created_at"},
        foreign_keys=[("raw_sha256", "raw_messages", "sha256"),
                      ("delivery_id", "deliveries", "id")],
    )
    db["quarantine"].create_index(["raw_sha256"])

    db["imap_checkpoints"].create(
        {
            "account": str,
            "folder": str,
            "uidvalidity": int,
            "last_uid": int,
            "updated_at": str,
        },
        pk=("account", "folder"),
    )

    db["outbox"].create(
        {
            "id": int,
            "thread_id": int,
            "message_id": str,
            "in_reply_to": str,
            "to_address": str,
            "subject": str,
            "body": str,
            "raw": bytes,  # the composed message, exactly as it will be sent
            "status": str,  # pending, sending, sent, failed
            "attempts": int,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "saved_to_sent": int,
        },
        pk="id",
        not_null={"thread_id", "message_id", "raw", "status", "attempts", "created_at"},
        defaults={"status": "pending", "attempts": 0, "saved_to_sent": 0},
        foreign_keys=[("thread_id", "threads", "id")],
    )
    db["outbox"].create_index(["status"])


@migrations()
def m002_arrival_order(db: Database) -> None:
    """``threads.last_activity`` is when the newest message arrived, not its Date header."""
    db.execute(
        """UPDATE threads SET last_activity = COALESCE(
               (SELECT MAX(received_at) FROM messages
                 WHERE messages.thread_id = threads.id AND kind = 'reply'),
               (SELECT MAX(received_at) FROM messages WHERE messages.thread_id = threads.id),
               last_activity)"""
    )


@migrations()
def m003_identity_review(db: Database) -> None:
    # A thread started by mail that claimed to be another correspondent's (their signed
    # address, or an answer to the author's message to them) from an address not theirs: held
    # for the author's "same person?" decision, which clears it (``correspondents merge`` or
    # ``separate``). ALTER TABLE keeps the table as it is, unlike a sqlite-utils transform.
    db.execute("ALTER TABLE threads ADD COLUMN possibly_same_as INTEGER "
               "REFERENCES correspondents(id)")
    db.execute("CREATE INDEX idx_threads_possibly_same_as ON threads (possibly_same_as) "
               "WHERE possibly_same_as IS NOT NULL")
    # A correspondent merged into another stays as a row pointing at them: tokens signed for
    # its id keep naming the person's threads, and the id is never reused for someone new.
    db.execute("ALTER TABLE correspondents ADD COLUMN merged_into INTEGER "
               "REFERENCES correspondents(id)")


@migrations()
def m004_thread_tokens(db: Database) -> None:
    # The lookup key of each thread's reply token, so that checking a signed address costs one
    # index look-up instead of an HMAC per thread of the post. Filled by whoever has the secret
    # (the listener at start, the pipeline as it files), never here.
    db["threads"].add_column("reply_token_sha256", str)
    db["threads"].create_index(["reply_token_sha256"])
    # A token signs (post slug, correspondent): a key that no longer matches them goes.
    db.execute("""
        CREATE TRIGGER threads_reply_token_moved AFTER UPDATE OF post_id, correspondent_id
        ON threads
        WHEN OLD.post_id IS NOT NEW.post_id OR OLD.correspondent_id IS NOT NEW.correspondent_id
        BEGIN
            UPDATE threads SET reply_token_sha256 = NULL WHERE id = NEW.id;
        END""")
    db.execute("""
        CREATE TRIGGER posts_reply_token_renamed AFTER UPDATE OF slug ON posts
        WHEN OLD.slug IS NOT NEW.slug
        BEGIN
            UPDATE threads SET reply_token_sha256 = NULL WHERE post_id = NEW.id;
        END""")


@migrations()
def m005_rescan_tombstones(db: Database) -> None:
    # The settings that decided "is this mail for mailthreads?" when a folder was last read
    # (JSON, see imap_sync.routing_settings): when they change, the poller reads the folder
    # again. NULL for checkpoints saved before this was kept.
    db["imap_checkpoints"].add_column("routing_settings", str)

    # What the author deleted or had forgotten, without its content: a message with one of
    # these hashes is not filed again, by any transport, however often it is fetched.
    db["tombstones"].create(
        {
            "id": int,
            "raw_sha256": str,  # the exact bytes
            "identity_sha256": str,  # Message-ID + sender + body, as messages.identity_sha256
            "reason": str,  # the command that deleted it, e.g. "quarantine delete"
            "created_at": str,
        },
        pk="id",
        not_null={"reason", "created_at"},
    )
    db["tombstones"].create_index(["raw_sha256"])
    db["tombstones"].create_index(["identity_sha256"])


@migrations()
def m006_consent(db: Database) -> None:
    # May this discussion be quoted in public? NULL: never asked; 'asked' (a question was
    # drafted), 'granted', 'revoked'; consent_at: when the author recorded it (UTC).
    db["threads"].add_column("consent", str)
    db["threads"].add_column("consent_at", str)


@migrations()
def m007_privacy(db: Database) -> None:
    # New human replies that came by SMTP or IMAP, queued in the transaction that files them:
    # the [notify] command runs for each after the commit (never inside it, so a slow or
    # failing command never holds up filing), and 'mailthreads digest' mails them in batches.
    # No copy of the text: the message row holds it, so forgetting the message forgets this.
    db["digests"].create(
        {
            "id": int,
            "sent_at": str,
            "recipient": str,
            "replies": int,  # how many replies it listed
            "relay_response": str,  # the relay's answer to DATA
        },
        pk="id",
        not_null={"sent_at", "replies"},
    )
    db["notifications"].create(
        {
            "id": int,
            "message_id": int,  # messages.id of the reply
            "created_at": str,
            # pending, done, failed (gave up), expired (a day old before any command ran)
            "command_status": str,
            "attempts": int,
            "last_error": str,
            "next_attempt_at": str,  # ISO 8601 UTC: a failed command is tried again after this
            "notified_at": str,
            "digest_id": int,  # the digest that listed it; NULL until one did
        },
        pk="id",
        not_null={"message_id", "created_at", "command_status", "attempts"},
        defaults={"command_status": "pending", "attempts": 0},
        foreign_keys=[("message_id", "messages", "id"), ("digest_id", "digests", "id")],
    )
    db["notifications"].create_index(["message_id"], unique=True)
    db.execute("CREATE INDEX idx_notifications_pending ON notifications (next_attempt_at) "
               "WHERE command_status = 'pending'")
    db.execute("CREATE INDEX idx_notifications_undigested ON notifications (id) "
               "WHERE digest_id IS NULL")
    # Deleting for good (forget, threads delete --purge) asks, per message, whether another
    # message or delivery still uses its raw bytes: without these, one scan of the table each.
    db["messages"].create_index(["raw_sha256"])
    db["deliveries"].create_index(["raw_sha256"])
    # 'forget ADDRESS' keeps the correspondent's row (tokens sign its id, and an id must never
    # name someone new) but blanks its name and marks it forgotten.
    db.execute("ALTER TABLE correspondents ADD COLUMN forgotten_at TEXT")


@migrations()
def m008_trust(db: Database) -> None:
    # Senders the author blocked (``mailthreads block``): an address or "@domain", lowercase.
    db["blocks"].create({"pattern": str, "created_at": str}, pk="pattern",
                        not_null={"created_at"})
    # One review queue: a quarantined message says why it waits (NULL: could not be parsed or
    # routed; "unknown_post": a reply to a post not known yet, held until the post is added;
    # "blocked": a blocked sender's, not listed; "spam") and, when held for a post, its slug.
    db.execute("ALTER TABLE quarantine ADD COLUMN reason_class TEXT")
    db.execute("ALTER TABLE quarantine ADD COLUMN post_slug TEXT")
    db.execute("CREATE INDEX idx_quarantine_post_slug ON quarantine (post_slug) "
               "WHERE post_slug IS NOT NULL")
    # Whether a sender is trusted is asked for every incoming message: a correspondent's
    # threads, found without scanning them all.
    db["threads"].create_index(["correspondent_id"])


@migrations()
def m009_spam(db: Database) -> None:
    # Spam is kept apart from the discussions: like the quarantine, one row per message's raw
    # bytes, with no post, correspondent or thread (issue 12). Released spam leaves this table
    # and is filed normally; deleted spam leaves a tombstone.
    db["spam"].create(
        {
            "id": int,
            "raw_sha256": str,
            "delivery_id": int,
            "source": str,  # smtp, imap, file, cli
            "message_id": str,
            "subject": str,
            "from_address": str,
            "score": float,  # NULL when the verdict gives none (X-Spam-Flag: YES)
            "threshold": float,
            "verdict_source": str,  # e.g. "spamd 127.0.0.1:783", "upstream X-Spam-Status ..."
            "reasons": str,  # JSON array: rule names, or the DMARC failure
            "created_at": str,
        },
        pk="id",
        not_null={"raw_sha256", "verdict_source", "created_at"},
    )
    db["spam"].create_index(["raw_sha256"])
    # The verdict of each stored incoming message: ham, unscanned (the scanner was off or down:
    # 'mailthreads rescan' scans it) or released (spam the author filed by hand). NULL for
    # the author's own messages and for messages filed before this step.
    db["messages"].add_column("spam_verdict", str)
    db["messages"].add_column("spam_score", float)
    db["messages"].add_column("verdict_source", str)
    db.execute("CREATE INDEX messages_unscanned ON messages (spam_verdict) "
               "WHERE spam_verdict = 'unscanned'")


@migrations()
def m010_bounce_index(db: Database) -> None:
    # Every listing asks which of its threads hold a bounce (to say "your answer was not
    # delivered"). Through the thread index, that read every message of those threads: 1.2 ms
    # for 50 threads of a 83,000-message database; this index answers it in 0.02 ms.
    db.execute("CREATE INDEX messages_bounces ON messages (thread_id) WHERE kind = 'bounce'")


@migrations()
def m011_filing_speed(db: Database) -> None:
    # Is the sender trusted (store.is_trusted_address, asked for every incoming message)? That
    # is: does a thread of theirs hold one of the author's messages. With this index, one
    # look-up per thread instead of reading every message of every thread of theirs.
    db.execute("CREATE INDEX messages_out_thread ON messages (thread_id) "
               "WHERE direction = 'out'")
    # The full-text index holds four columns: updating another one (a parent found later, a
    # thread merge, is_read) no longer deletes and re-adds the message's text, which also made
    # FTS5 write out its pending index, and merge segments, on every such update.
    db.execute("DROP TRIGGER messages_au")
    db.execute("""
        CREATE TRIGGER messages_au
        AFTER UPDATE OF subject, visible_text, from_name, from_address ON messages BEGIN
          INSERT INTO messages_fts (messages_fts, rowid, subject, visible_text, from_name,
                                    from_address)
          VALUES ('delete', old.rowid, old.subject, old.visible_text, old.from_name,
                  old.from_address);
          INSERT INTO messages_fts (rowid, subject, visible_text, from_name, from_address)
          VALUES (new.rowid, new.subject, new.visible_text, new.from_name, new.from_address);
        END""")


def apply(db: Database, schema_version: int) -> None:
    """Run the pending steps and record ``schema_version`` (the caller's ``SCHEMA_VERSION``,
    passed in so that this module does not import the connection module that imports it)."""
    migrations.apply(db)
    db.execute(f"PRAGMA user_version = {schema_version}")

