"""Reply addresses: build them, recognise them, and pick the one a message was sent to.

Pure functions over the ``[addresses]`` config. A reply address is
``<local_part><separator><slug>@<domain>`` (``reply+why-i-blog@blog.example``), optionally with a
signed token (``reply+why-i-blog.k3j...@blog.example``), or ``<slug>@<catch_all_domain>``.
Mail systems may change the case of a local part, so matching is case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


class Addresses(NamedTuple):
    """The [addresses] table (read and checked by ``config``)."""

    domain: str = "localhost"
    local_part: str = "reply"
    separator: str = "+"
    catch_all_domain: str | None = None
    secret: str | None = None


_TOKEN = re.compile(r"^[a-z2-7]{16,64}$")


@dataclass(frozen=True)
class ReplyAddress:
    slug: str
    token: str | None
    address: str


@dataclass(frozen=True)
class AddressRoute:
    reply_address: ReplyAddress
    found_in: str  # "envelope recipient", "Delivered-To", ... for `explain`


def reply_address(slug: str, addresses: Addresses, token: str | None = None) -> str:
    detail = f"{slug}.{token}" if token else slug
    return f"{addresses.local_part}{addresses.separator}{detail}@{addresses.domain}"


def parse_reply_address(address: str, addresses: Addresses) -> ReplyAddress | None:
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at:
        return None
    if domain == addresses.domain:
        prefix = addresses.local_part + addresses.separator
        if not local.startswith(prefix):
            return None
        detail = local[len(prefix):]
    elif addresses.catch_all_domain and domain == addresses.catch_all_domain:
        detail = local
    else:
        return None
    slug, dot, token = detail.partition(".")
    if not SLUG_PATTERN.match(slug) or (dot and not _TOKEN.match(token)):
        return None
    return ReplyAddress(slug=slug, token=token or None, address=address)


def is_own_domain(address: str, addresses: Addresses) -> bool:
    domain = address.rpartition("@")[2].lower()
    return domain in {addresses.domain, addresses.catch_all_domain}


def route_by_address(
    candidates: Iterable[tuple[str, Iterable[str]]], addresses: Addresses
) -> AddressRoute | None:
    """The first reply address among ``(where, addresses)`` groups, in the order given."""
    for found_in, group in candidates:
        for address in group:
            parsed = parse_reply_address(address, addresses)
            if parsed:
                return AddressRoute(parsed, found_in)
    return None
