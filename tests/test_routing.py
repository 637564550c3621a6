import pytest

from mailthreads.config import Addresses
from mailthreads.mail.routing import parse_reply_address, reply_address, route_by_address

ADDRESSES = Addresses(domain="blog.example", catch_all_domain="replies.blog.example")


@pytest.mark.parametrize("address, slug, token", [
    ("reply+why-i-blog@blog.example", "why-i-blog", None),
    ("REPLY+Why-I-Blog@BLOG.EXAMPLE", "why-i-blog", None),
    ("why-i-blog@replies.blog.example", "why-i-blog", None),
    ("reply+why-i-blog.abcdefghijklmnop234567@blog.example", "why-i-blog",
     "abcdefghijklmnop234567"),
])
def test_reply_addresses_are_recognised(address, slug, token):
    parsed = parse_reply_address(address, ADDRESSES)
    assert (parsed.slug, parsed.token) == (slug, token)


@pytest.mark.parametrize("address", [
    "me@blog.example",                        # not a reply address
    "reply+why-i-blog@other.example",         # another domain
    "reply+Why_I_Blog!@blog.example",         # not a slug
    "reply+post.short@blog.example",          # token too short
    "reply+-post@blog.example",               # slug cannot start with a hyphen
    "reply+post@blog.example.evil.example",   # suffix trick
    "no-at-sign",
])
def test_other_addresses_are_not_reply_addresses(address):
    assert parse_reply_address(address, ADDRESSES) is None


def test_reply_address_round_trips():
    for token in (None, "abcdefghijklmnopqrstuvwxyz"):
        address = reply_address("on-typewriters", ADDRESSES, token)
        parsed = parse_reply_address(address, ADDRESSES)
        assert (parsed.slug, parsed.token) == ("on-typewriters", token)


def test_custom_local_part_and_separator():
    addresses = Addresses(domain="example.org", local_part="comments", separator="-")
    assert reply_address("post", addresses) == "comments-post@example.org"
    assert parse_reply_address("comments-post@example.org", addresses).slug == "post"
    assert parse_reply_address("reply+post@example.org", addresses) is None


def test_route_by_address_keeps_the_order_of_groups():
    route = route_by_address([("envelope recipient", []),
                              ("To", ["me@blog.example", "reply+first@blog.example"]),
                              ("Cc", ["reply+second@blog.example"])], ADDRESSES)
    assert (route.reply_address.slug, route.found_in) == ("first", "To")
