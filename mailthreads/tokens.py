"""Signed reply tokens: ``reply+<post>.<token>@domain`` names one thread.

The token is an HMAC-SHA256 of (post slug, correspondent id) under the configured secret, in
lowercase base32 (mail systems may change the case of a local part), 26 characters (130 bits).
Rotating the secret invalidates every address handed out before.

Threads are found by ``token_key``, stored in ``threads.reply_token_sha256``, and the token is
then checked against its HMAC: one look-up and one HMAC per address, however many threads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

TOKEN_LENGTH = 26


def make_token(secret: str, post_slug: str, correspondent_id: int) -> str:
    digest = hmac.new(secret.encode(), f"{post_slug}\0{correspondent_id}".encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:TOKEN_LENGTH]


def token_matches(secret: str, post_slug: str, correspondent_id: int, token: str) -> bool:
    expected = make_token(secret, post_slug, correspondent_id)
    return hmac.compare_digest(expected.encode(), token.lower().encode())


def token_key(token: str) -> str:
    """What a thread is found by: the token's SHA-256, not the token itself.

    An index look-up compares keys byte by byte; comparing digests tells a forger timing
    nothing about how much of a token they got right.
    """
    return hashlib.sha256(token.lower().encode()).hexdigest()
