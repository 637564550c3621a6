"""The signed Reply-To through the SMTP listener: a real ``mailthreads serve`` on 127.0.0.1.

The correspondent's answer to the signed address is accepted; from a new address it waits in a
thread of its own for the author's "same person?" decision; a forged token is refused at RCPT
with 550 5.7.1, before any data.
"""

from __future__ import annotations

import json
import smtplib
from email.utils import getaddresses

import pytest
from mailfactory import message
from relay_support import running_relay
from smtp_support import Serve, wait_filed
from test_answer_cli import Site, ada_writes, at, token_of

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def test_follow_up_over_smtp_lands_in_the_thread_and_forgeries_are_refused_at_rcpt(
        tmp_path, monkeypatch):
    with running_relay(tmp_path, security="starttls") as relay:
        site = Site(tmp_path, monkeypatch, relay)
        thread = site.ingest(ada_writes())["thread"]
        site.run("reply", str(thread), "-m", "Thank you for writing, Ada.")
        sent = site.sent()
    [(_, signed)] = getaddresses([str(sent["Reply-To"])])
    token = token_of(signed)
    follow_up = at(message(sender="Ada L. <ada@work.example>", to=signed,
                           subject="Re: Why I blog", message_id="<ada2@work.example>",
                           in_reply_to=sent["Message-ID"], body="Writing back over SMTP.\n"),
                   0)

    with Serve(tmp_path / "mail.db", site.config) as serve:
        with smtplib.SMTP(serve.host, serve.port, timeout=30) as client:
            refused = client.sendmail("m@evil.example",
                                      [signed, f"reply+why-i-blog.{'a' * len(token)}"
                                               "@blog.example"],
                                      follow_up)
            assert list(refused) == ["reply+why-i-blog.aaaaaaaaaaaaaaaaaaaaaaaaaa@blog.example"]
            assert refused[next(iter(refused))][0] == 550
            assert b"5.7.1" in refused[next(iter(refused))][1]
            with pytest.raises(smtplib.SMTPRecipientsRefused) as error:
                client.sendmail("m@evil.example",
                                [f"reply+why-i-blog.{token[::-1]}@blog.example"], b"x\r\n")
            [(code, text)] = error.value.recipients.values()
            assert code == 550 and text.startswith(b"5.7.1")
        wait_filed(tmp_path / "mail.db", 3)  # Ada's first, the answer, the follow-up

    # Her work address is new: a thread of its own, marked, until the author confirms.
    listed = site.json("threads")
    assert [(row["id"] == thread, row["pending_decision"]) for row in listed] == [
        (False, "same person as Ada Lovelace <ada@example.net>?"), (True, None)]
    assert [m["from_address"] for m in site.json("show", str(thread))["messages"]] == [
        "ada@example.net", "me@blog.example"]
    site.run("correspondents", "merge", str(listed[0]["id"]))
    detail = json.loads(site.run("show", str(thread), "--json").stdout)
    assert [(m["direction"], m["from_address"], m["source"]) for m in detail["messages"]] == [
        ("in", "ada@example.net", "file"), ("out", "me@blog.example", "cli"),
        ("in", "ada@work.example", "smtp")]
    assert detail["state"] == "needs_reply"
