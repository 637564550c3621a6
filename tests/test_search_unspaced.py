"""Search in the scripts written without spaces (issue 11, "find anything"): a Japanese or
Chinese word inside a sentence is found, though the full-text index holds the whole sentence
as one token; through the real command on a database filled by ``mailthreads ingest``."""

from __future__ import annotations

import mailbox

import pytest
from mailfactory import message
from test_reading import Site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    root = tmp_path_factory.mktemp("unspaced")
    (root / "config.toml").write_text('[addresses]\ndomain = "blog.example"\n')
    box = mailbox.Maildir(root / "Maildir", create=True)
    for raw in (
        message(sender="山田太郎 <taro@example.jp>", message_id="<jp@example.jp>",
                subject="ブログの感想",
                body="先週の記事を読みました。古いタイプライターの話がとても面白かったです。\n"),
        message(sender="王小明 <ming@example.cn>", message_id="<cn@example.cn>",
                subject="关于博客", body="我很喜欢你写的关于打字机的文章。python教程也不错。\n"),
        message(sender="김민준 <minjun@example.kr>", message_id="<kr@example.kr>",
                subject="블로그", body="타자기를 좋아합니다. typewriter\n"),
    ):
        box.add(raw)
    site = Site(root)
    site.run("posts", "add", "why-i-blog")
    site.run("ingest", str(root / "Maildir"))
    return site


@pytest.mark.parametrize(("word", "sender"), [
    ("タイプライター", "taro@example.jp"),  # inside a Japanese sentence
    ("面白", "taro@example.jp"),
    ("感想", "taro@example.jp"),  # in the subject
    ("打字机", "ming@example.cn"),
    ("타자기", "minjun@example.kr"),  # a Korean word with its particle glued on
    ("王小明", "ming@example.cn"),  # the sender's name
    ("打字机*", "ming@example.cn"),  # a prefix star changes nothing in a substring
    ("ブログの感想", "taro@example.jp"),
])
def test_a_word_inside_a_sentence_is_found(site, word, sender):
    assert [hit["from_address"] for hit in site.json("search", word)] == [sender]


def test_the_match_is_marked_and_filters_still_apply(site):
    [hit] = site.json("search", "タイプライター")
    assert "[タイプライター]" in hit["snippet"]
    assert site.json("search", "タイプライター", "from:ming") == []
    assert site.json("search", "タイプライター", "面白", "読みました") != []
    assert site.json("search", "タイプライター", "打字机") == []  # every word must match
    # Mixed with words the index knows.
    assert [hit["from_address"] for hit in site.json("search", "typewriter", "타자기")] == [
        "minjun@example.kr"]
    assert "[タイプライター]" in site.run("search", "タイプライター").stdout
    # ASCII letters in such a term match in any case, as FTS5 matches words.
    assert [hit["from_address"] for hit in site.json("search", "TYPEWRITER타자기")] == []
    assert [hit["from_address"] for hit in site.json("search", "Python教程")] == [
        "ming@example.cn"]
