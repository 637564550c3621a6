"""Everything the pipeline learns from a message's bytes alone: parse, clean up, classify and
read its ancestry. Pure and picklable, so bulk imports can run it in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..timestamps import iso
from .classify import classify
from .cleanup import html_to_text, split_reply
from .limits import Limits
from .parse import Attachment, ParsedMail, parse
from .threader import ancestry


@dataclass(frozen=True)
class Analysis:
    message_id: str
    synthetic_message_id: bool
    identity_sha256: str
    subject: str
    from_name: str
    from_address: str
    to: tuple[str, ...]
    to_names: tuple[str, ...]
    cc: tuple[str, ...]
    delivered_to: tuple[str, ...]
    x_original_to: tuple[str, ...]
    date: str | None  # ISO 8601 UTC
    in_reply_to: str
    parent: str | None
    chain: tuple[str, ...]  # ancestors, oldest first, ending with the parent
    body_text: str
    body_html: str
    visible_text: str
    quoted_text: str
    signature: str
    kind: str
    kind_reasons: tuple[str, ...]
    about_message_id: str | None  # for machine mail: the message it reports on
    failed_recipients: tuple[str, ...]
    attachments: tuple[Attachment, ...]


def analyse(raw: bytes, limits: Limits | None = None,
            envelope_sender: str | None = None) -> Analysis:
    """Raises ``parse.Unparseable`` with the quarantine reason."""
    limits = limits or Limits()
    parsed = parse(raw, limits)
    return analysis_of(parsed, envelope_sender, limits.max_mime_parts)


def analysis_of(parsed: ParsedMail, envelope_sender: str | None = None,
                max_parts: int = Limits().max_mime_parts) -> Analysis:
    text = parsed.text or (html_to_text(parsed.html) if parsed.html else "")
    parts = split_reply(text)
    classification = classify(parsed.message, envelope_sender, max_parts)
    lineage = ancestry(parsed.message_id, parsed.in_reply_to, parsed.references)
    return Analysis(
        message_id=parsed.message_id,
        synthetic_message_id=parsed.synthetic_message_id,
        identity_sha256=parsed.identity_sha256,
        subject=parsed.subject,
        from_name=parsed.sender.name if parsed.sender else "",
        from_address=parsed.sender.address if parsed.sender else "",
        to=tuple(a.address for a in parsed.to),
        to_names=tuple(a.name for a in parsed.to),
        cc=tuple(a.address for a in parsed.cc),
        delivered_to=parsed.delivered_to,
        x_original_to=parsed.x_original_to,
        date=iso(parsed.date) if parsed.date else None,
        in_reply_to=parsed.in_reply_to,
        parent=lineage.parent,
        chain=lineage.chain,
        body_text=text,
        body_html=parsed.html,
        visible_text=parts.visible,
        quoted_text=parts.quoted,
        signature=parts.signature,
        kind=classification.kind,
        kind_reasons=classification.reasons,
        about_message_id=classification.original_message_id,
        failed_recipients=classification.failed_recipients,
        attachments=parsed.attachments,
    )
