"""Every message of the malformed / hostile MIME set goes in without an exception or a hang:
stored, or quarantined with its raw bytes and a reason."""

from __future__ import annotations

import json

from mailthreads.config import Config
from mailthreads.db import open_database, store
from mailthreads.ingest.bulk import ingest_messages


def test_every_malformed_message_is_stored_or_quarantined(corpora, tmp_path):
    base = corpora / "malformed"
    cases = json.loads((base / "expected.json").read_text())["cases"]
    files = [base / path for path in cases]
    assert len(files) == 123
    db = open_database(tmp_path / "malformed.db", durable=False)
    outcomes = []
    summary = ingest_messages(db.conn, Config(), ((str(f), f.read_bytes()) for f in files),
                              post_hint="malformed", workers=1, on_outcome=outcomes.append)
    assert summary.total == len(files)
    assert {o.status for o in outcomes} <= {"stored", "duplicate", "quarantined"}
    # Every raw message is kept, whatever happened to it.
    assert db["raw_messages"].count == len({f.read_bytes() for f in files})
    for outcome in outcomes:
        if outcome.status == "quarantined":
            assert outcome.reasons, outcome.origin
    quarantined = store.list_quarantine(db.conn)
    assert len(quarantined) == summary.quarantined
    # The set is odd, not unreadable: what is quarantined is so for a reason we chose (a human
    # message without any sender cannot start a thread; the endless enclosure is over the cap).
    reasons = {o.origin.split("malformed/")[1]: o.reasons[-1]
               for o in outcomes if o.status == "quarantined"}
    allowed = ("no sender address", "MIME parts")
    assert all(any(a in r for a in allowed) for r in reasons.values()), reasons
    assert "over the 500 part limit" in reasons["flanker/enclosed-endless.eml"]
    assert summary.stored >= 100
