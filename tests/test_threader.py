from hypothesis import given
from hypothesis import strategies as st

from mailthreads.mail.threader import ancestry, bare_message_id


def test_in_reply_to_with_one_clean_id_wins_over_references():
    result = ancestry("c@x", "<p@x>", "<root@x> <typo@x>")
    assert result.parent == "p@x"
    assert result.chain == ("root@x", "typo@x", "p@x")


def test_free_text_in_reply_to_loses_to_references():
    assert ancestry("c@x", "Your message of Dec 31 <bar@baz>", "<foo@two>").parent == "foo@two"
    assert ancestry("c@x", "<baz@four> (RFC822 4lyfe)", "<baz@four> <foo@four>").parent \
        == "foo@four"


def test_broken_in_reply_to_falls_back_to_last_reference():
    assert ancestry("c@x", "mumble", "<a@x> <b@x>").parent == "b@x"


def test_free_text_in_reply_to_is_used_when_nothing_else():
    assert ancestry("c@x", "Message of today <p@x> and <q@x>", "").parent == "p@x"


def test_garbage_after_references_is_ignored():
    assert ancestry("c@x", "", "<foo@five.com> (garbage)").parent == "foo@five.com"


def test_truncated_in_reply_to_gives_no_parent():
    assert ancestry("c@x", "<truncated@exam", "").parent is None


def test_message_is_never_its_own_parent():
    result = ancestry("c@x", "<c@x>", "<c@x>")
    assert result.parent is None
    assert result.chain == ()


def test_duplicate_references_are_folded():
    assert ancestry("c@x", "", "<a@x> <b@x> <a@x>").chain == ("a@x", "b@x")


@given(st.text(), st.text())
def test_ancestry_never_raises_and_chain_ends_with_parent(in_reply_to, references):
    result = ancestry("self@x", in_reply_to, references)
    if result.parent is not None:
        assert result.chain[-1] == result.parent
    assert "self@x" not in result.chain


def test_bare_message_id():
    assert bare_message_id(" <abc@example.com> ") == "abc@example.com"
    assert bare_message_id("abc@example.com") == "abc@example.com"
    assert bare_message_id("not an id") == ""
    assert bare_message_id("") == ""


def test_bare_message_id_reads_ids_with_junk_around_them():
    # The classifier's cases, now read by the same function.
    assert bare_message_id("< abc@example.com >") == "abc@example.com"
    assert bare_message_id("abc@example.com (the original)") == "abc@example.com"
    assert bare_message_id("Your message <abc@example.com> of Monday") == "abc@example.com"
