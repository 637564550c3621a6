"""One MIME part cap: the classifier walks as many parts as [limits] max_mime_parts lets the
parser accept, so a report's evidence late in a long message is not missed."""

import pytest

from mailthreads.config import Limits
from mailthreads.mail.analysis import analyse


def report_after(fillers: int) -> bytes:
    parts = [f"--B\r\nContent-Type: text/plain\r\n\r\nfiller {i}\r\n" for i in range(fillers)]
    status = ("--B\r\nContent-Type: message/delivery-status\r\n\r\n"
              "Reporting-MTA: dns; mx.example\r\n\r\n"
              "Final-Recipient: rfc822; ada@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n")
    return ("From: Ada <ada@example.org>\r\nTo: me@blog.example\r\nSubject: hello\r\n"
            "Message-ID: <x@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
            + "".join(parts) + status + "--B--\r\n").encode()


@pytest.mark.parametrize("limits", [None, Limits(max_mime_parts=260)])
def test_the_classifier_reads_every_part_the_parser_accepts(limits):
    analysis = analyse(report_after(250), limits)
    assert analysis.kind == "bounce", analysis.kind_reasons
