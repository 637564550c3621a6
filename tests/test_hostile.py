"""Hostile senders (issue 8): messages built to be expensive inside the size caps.

Each shape is generated here, small: the caps and budgets are set low in the test config rather
than feeding the 24 MB a real attack would (benchmarks/hostile_parse.py measures those).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import smtplib
import subprocess
import sys
import tracemalloc

import pytest
from mailfactory import (
    message,
    nested_html,
    parts_without_content_type,
    semicolon_content_type,
)
from smtp_support import REPO, Serve, query, wait_for, write_config

from mailthreads.config import Config, Limits
from mailthreads.db import open_database
from mailthreads.ingest import Unparsed, analyse_or_unparsed
from mailthreads.mail.analysis import Analysis, analyse
from mailthreads.mail.parse import Unparseable, parse

_HEADER = (b"From: Jane Reader <jane@example.com>\r\nTo: reply+why-i-blog@blog.example\r\n"
           b"Subject: Re: Why I blog\r\nMessage-ID: <odd@example.com>\r\nMIME-Version: 1.0\r\n")


def _config(**limits: object) -> Config:
    return Config(limits=Limits()._replace(**limits))


# Cheap checks before parsing ----------------------------------------------------------------

def _refused_with_peak_memory(raw: bytes, limits: Limits, reason: str) -> int:
    """``parse`` refuses ``raw``; the peak of what it allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(Unparseable, match=reason):
            parse(raw, limits)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_parts_without_content_type_are_counted_by_boundary_lines_before_parsing():
    raw = parts_without_content_type(1_000_000)  # about 100,000 parts, none with headers
    # Refused from the bytes: nothing was built for the parts (mail-parser needed 35 MB here).
    assert _refused_with_peak_memory(raw, Limits(max_mime_parts=50), "part") < len(raw)


def test_a_boundary_in_rfc2231_form_is_counted_all_the_same():
    raw = parts_without_content_type(200_000).replace(b'boundary="b"', b"boundary*=us-ascii''b")
    assert _refused_with_peak_memory(raw, Limits(max_mime_parts=50), "part") < len(raw)


def test_boundary_lines_of_a_normal_multipart_message_stay_under_the_cap():
    parts = b"".join(b"--B\r\n\r\npart %d\r\n" % i for i in range(9))
    raw = (_HEADER + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts
           + b"--B--\r\n--B is how a closing line starts, but not in here\r\n")
    assert parse(raw, Limits(max_mime_parts=10)).text.startswith("part 0")
    with pytest.raises(Unparseable, match="part"):
        parse(raw, Limits(max_mime_parts=9))


def test_a_content_type_of_semicolons_is_refused_before_its_parameters_are_split():
    with pytest.raises(Unparseable, match="over 100 parameters"):
        parse(semicolon_content_type(20_000))
    # Folded over many lines, and in a part's header rather than the message's, all the same.
    folded = (_HEADER + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
              b"Content-Disposition: attachment" + b";\r\n x=1" * 200
              + b"\r\n\r\nhello\r\n--b--\r\n")
    with pytest.raises(Unparseable, match="parameters"):
        parse(folded)
    # A long RFC 2231 file name is well under the cap.
    long_name = b"".join(b";\r\n filename*%d*=abcdefgh" % i for i in range(30))
    assert parse(_HEADER + b"Content-Type: text/plain" + long_name + b"\r\n\r\nhi\r\n").text


def test_html_nested_past_the_cap_is_quarantined_not_converted():
    deep = "<blockquote>quoted " * 60 + "hi" + "</blockquote>" * 60
    raw = (_HEADER + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + deep.encode())
    assert analyse_or_unparsed(raw, _config(max_html_depth=50), None) == \
        Unparsed("HTML blockquotes and lists nested over 50 deep")
    # Lists count too; closed tags give their depth back.
    lists = ("<ul><li>a" * 40 + "</ul>" * 40) * 3
    analysis = analyse(_HEADER + b"Content-Type: text/html\r\n\r\n" + lists.encode(),
                       Limits(max_html_depth=50))
    assert analysis.body_text.count("a") == 120


def test_the_depth_cap_leaves_html_alone_when_there_is_a_text_part():
    deep = "<blockquote>" * 200 + "hi"
    analysis = analyse(message(body="Plain words.\n", html=deep), Limits(max_html_depth=50))
    assert analysis.visible_text == "Plain words."


# The budget -----------------------------------------------------------------------------------

def test_a_message_over_the_time_budget_is_given_up_and_the_next_one_is_analysed():
    from mailthreads.ingest.budget import Analyser

    config = _config(max_parse_seconds=1, max_html_depth=10**6)
    # <div>s pass every cheap check; html2text takes seconds over 6 MB of them.
    slow = nested_html(6_000_000)
    with Analyser(config) as analyser:
        results = list(analyser.analyse_all([("slow", slow, None), ("normal", message(), None)]))
    assert results[0] == ("slow", Unparsed("analysis took over 1 s ([limits] max_parse_seconds)"))
    assert results[1][0] == "normal" and isinstance(results[1][1], Analysis)


def test_a_message_over_the_memory_budget_is_given_up_and_the_next_one_is_analysed():
    # In a process of its own, as ingest, poll and serve start their workers: a worker forked
    # from this pytest process would inherit the free heap that earlier tests left in its
    # address space, and the cap only stops the address space from growing.
    code = """if True:
        import pickle, sys
        sys.path.insert(0, sys.argv[1])
        from mailfactory import message, quote_lines
        from mailthreads.config import Config, Limits
        from mailthreads.ingest.budget import Analyser
        config = Config(limits=Limits(max_parse_memory=48 * 1024 * 1024))
        # Short quote lines: trimming keeps a few objects per line, over 100 MB for 3 MB.
        with Analyser(config) as analyser:
            done = [analyser.analyse(quote_lines(3_000_000)), analyser.analyse(message())]
        sys.stdout.buffer.write(pickle.dumps(done))
    """
    run = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)],
                         capture_output=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr.decode()
    greedy, normal = pickle.loads(run.stdout)
    assert greedy == Unparsed("analysis needed over 48 MiB of memory ([limits] max_parse_memory)")
    assert isinstance(normal, Analysis) and normal.visible_text == "I enjoyed this post."


def test_analyses_come_back_in_order_from_several_workers():
    from mailthreads.ingest.budget import Analyser

    items = [(i, message(message_id=f"<m{i}@example.com>", body=f"Number {i}.\n"), None)
             for i in range(40)]
    with Analyser(Config(), workers=3) as analyser:
        results = list(analyser.analyse_all(items))
    assert [key for key, _ in results] == list(range(40))
    assert [r.visible_text for _, r in results] == [f"Number {i}." for i in range(40)]


# The standard-library fallback, and line ends -------------------------------------------------

_MIXED_2231 = (b"--b\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Disposition: attachment; filename*=utf-8''notes; filename*1=.txt\r\n"
               b"\r\nnotes\r\n")


def _multipart(*parts: bytes) -> bytes:
    return (_HEADER + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nMy reply.\r\n" + b"".join(parts)
            + b"--b--\r\n")


def test_mixed_rfc2231_continuations_are_filed_by_the_fallback_parser():
    # mail-parser and the standard library both raise TypeError on name* next to name*1.
    analysis = analyse_or_unparsed(_multipart(_MIXED_2231), Config(), None)
    assert isinstance(analysis, Analysis), analysis
    assert analysis.visible_text == "My reply."
    assert [a.content for a in analysis.attachments] == [b"notes"]


def test_an_attached_message_with_8bit_headers_is_filed_by_the_fallback_parser():
    attached = (b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@example.com\r\n"
                b"Subject: caf\xc3\xa9\r\nContent-Type: multipart/mixed; boundary=\"\xc3\xa9\"\r\n"
                b"\r\n--\xc3\xa9\r\n\r\nold words\r\n--\xc3\xa9--\r\n")
    analysis = analyse_or_unparsed(_multipart(_MIXED_2231, attached), Config(), None)
    assert isinstance(analysis, Analysis), analysis
    assert analysis.visible_text == "My reply."
    assert any(b"old words" in a.content for a in analysis.attachments)


def test_lone_cr_line_ends_find_the_end_of_a_short_header():
    raw = (b"From: jane@example.com\rTo: reply+why-i-blog@blog.example\rSubject: Hi\r"
           b"Message-ID: <cr@example.com>\r\r" + b"A line of my reply.\r" * 20_000)
    assert len(raw) > Limits().max_header_size
    analysis = analyse_or_unparsed(raw, Config(), None)
    assert isinstance(analysis, Analysis), analysis
    assert analysis.message_id == "cr@example.com"


# The transports: serve's filer, and bulk ingest next to serve --------------------------------

def test_serve_files_a_normal_reply_while_a_slow_message_sits_in_front_of_it(tmp_path):
    config = write_config(tmp_path, limits={"max_parse_seconds": 1, "max_html_depth": 10**6})
    database = tmp_path / "replies.db"
    normal = message(message_id="<after@example.com>")
    with Serve(database, config) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as client:
            client.sendmail("mallory@example.com", ["reply+why-i-blog@blog.example"],
                            nested_html(8_000_000))
            client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"], normal)
        wait_for(lambda: query(database, "SELECT 1 FROM messages WHERE message_id = ?",
                               ("after@example.com",)), "the normal reply to be filed", 60)
        [(reason,)] = query(database, "SELECT reason FROM quarantine")
    # The filer gave the slow message its budget, no more, then went on to the next.
    assert reason == "analysis took over 1 s ([limits] max_parse_seconds)"


def test_serve_answers_250_while_a_bulk_ingest_waits_on_a_slow_parse(tmp_path):
    # Nested lists cost html2text time with the square of their depth: with the depth cap
    # lifted and a generous budget, this one parses for a minute. Bulk ingest must not hold
    # SQLite's write lock meanwhile (the listener's busy timeout is 30 s, then it answers 451).
    config = write_config(tmp_path, limits={"max_parse_seconds": 600,
                                            "max_html_depth": 10**6})
    database = tmp_path / "replies.db"
    maildir = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    # Enough messages for worker processes (as in a real mailbox), the slow one after the
    # first 32.
    for number in range(70):
        raw = message(message_id=f"<n{number}@example.com>", body=f"Reply {number}.\n",
                      sender=f"Reader {number} <r{number}@example.com>")
        if number == 32:
            raw = _HEADER + b"Content-Type: text/html\r\n\r\n" + b"<ul><li>x" * 20_000
        (maildir / "cur" / f"{number:03d}:2,S").write_bytes(raw)
    with Serve(database, config) as server:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "mailthreads", "-d", str(database), "-c", str(config),
             "ingest", str(maildir), "--nl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=REPO, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            # The first 32 filed: from now on the ingest waits for the slow parse.
            assert ingest.stdout is not None
            filed = [json.loads(ingest.stdout.readline()) for _ in range(32)]
            assert filed[-1]["message_id"] == "n31@example.com"
            with smtplib.SMTP("127.0.0.1", server.port, timeout=120) as client:
                refused = client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                                          message(message_id="<during@example.com>"))
            assert refused == {}  # 250: sendmail raises on 451
            assert ingest.poll() is None, "the slow parse should still be running"
        finally:
            os.killpg(ingest.pid, signal.SIGKILL)
            ingest.wait()
    assert query(database, "SELECT COUNT(*) FROM deliveries WHERE source = 'smtp'") == [(1,)]


def test_explain_reports_a_message_over_budget_as_quarantined(tmp_path):
    config = write_config(tmp_path, limits={"max_parse_seconds": 1, "max_html_depth": 10**6})
    path = tmp_path / "slow.eml"
    path.write_bytes(nested_html(8_000_000))
    open_database(tmp_path / "r.db").conn.close()  # explain reads it; only storing creates it
    result = subprocess.run(
        [sys.executable, "-m", "mailthreads", "-d", str(tmp_path / "r.db"), "-c", str(config),
         "explain", str(path), "--json"], capture_output=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "quarantined"
    assert report["reasons"] == ["analysis took over 1 s ([limits] max_parse_seconds)"]


def test_the_budget_keys_are_read_and_checked(tmp_path):
    from mailthreads.config import ConfigError, load

    good = tmp_path / "good.toml"
    good.write_text("[limits]\nmax_parse_seconds = 2.5\nmax_parse_memory = 268435456\n"
                    "max_header_parameters = 20\nmax_html_depth = 30\n")
    assert load(good).limits[-4:] == (20, 30, 2.5, 268435456)
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nmax_parse_seconds = 0\nmax_parse_memory = "lots"\n')
    with pytest.raises(ConfigError) as caught:
        load(bad)
    text = "\n".join(caught.value.problems)
    assert f"{bad}: limits.max_parse_seconds:" in text
    assert f"{bad}: limits.max_parse_memory:" in text
