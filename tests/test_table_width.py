"""Every table the CLI prints fits the terminal (80 columns when output is not one), counted in
the columns a terminal draws, where a Chinese, Japanese or Korean character takes two (issue 11:
"tables that fit 80 columns, truncate subjects, not columns"). Through the real command on a
database filled by ``mailthreads ingest``."""

from __future__ import annotations

import mailbox
import unicodedata

import pytest
from mailfactory import message
from test_reading import Site

from mailthreads.printable import clip_to_width, display_width

LONG_JAPANESE = "「なぜブログを書くのか」を読んで考えたこと、そしてタイプライターについての長い質問"
LONG_NAME = "山田太郎（やまだたろう）ブログ読者の会・東京支部"


def columns(line: str) -> int:
    """Display columns, worked out here independently of the code under test: the fixture
    holds ASCII and East Asian wide characters only."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    root = tmp_path_factory.mktemp("widths")
    (root / "config.toml").write_text('[addresses]\ndomain = "blog.example"\n')
    site = Site(root)
    site.env["COLUMNS"] = "80"
    site.run("posts", "add", "why-i-blog", "--title", "Why I blog, and why it takes so long")
    box = mailbox.Maildir(root / "Maildir", create=True)
    for raw in (
        message(sender=f"{LONG_NAME} <taro.yamada.reader@very-long-domain-name.example.jp>",
                message_id="<jp1@example.jp>", subject=LONG_JAPANESE,
                body=f"{LONG_JAPANESE}。typewriter が好きです。\n"),
        # A reply to a post never added: held for review.
        message(sender=f"{LONG_NAME} <taro.yamada.reader@very-long-domain-name.example.jp>",
                to="reply+a-post-nobody-has-added-yet-with-a-long-name@blog.example",
                message_id="<jp2@example.jp>", subject=LONG_JAPANESE),
        # Not for any reply address: quarantined, with its reason.
        message(to="somebody-else-entirely@another-domain.example", message_id="<q1@example>",
                subject=LONG_JAPANESE),
    ):
        box.add(raw)
    site.run("ingest", str(root / "Maildir"))
    return site


@pytest.mark.parametrize("args", [
    ("threads",), ("search", "typewriter"), ("search", "from:taro"), ("review",),
    ("quarantine", "list"), ("correspondents",), ("posts", "list"),
])
def test_every_table_fits_80_columns_with_wide_characters(site, args):
    shown = site.run(*args).stdout
    lines = shown.splitlines()
    assert len(lines) >= 3, shown  # titles, rule, at least one row
    assert all(columns(line) <= 80 for line in lines), "\n".join(
        f"{columns(line):3} {line}" for line in lines)
    assert any("…" in line for line in lines[2:]), shown  # cut, not left out


def test_wide_characters_keep_the_columns_in_line(site):
    lines = site.run("threads", COLUMNS="200").stdout.splitlines()
    title, row = lines[0], lines[2]
    # The subject column starts at the same display column in the titles and in the row.
    start = title.index("subject")
    assert columns(row[:row.index(LONG_JAPANESE[:4])]) == start, lines


@pytest.mark.parametrize(("text", "width"), [
    ("plain", 5), ("日本語", 6), ("e\u0301te\u0301", 3), ("\U0001f469\u200d\U0001f4bb", 4),
    ("ｆｕｌｌ", 8), ("한국어 text", 11),
])
def test_display_width(text, width):
    assert display_width(text) == width


def test_clip_to_width_never_splits_a_wide_character_past_the_edge():
    assert clip_to_width("日本語のテキスト", 7) == "日本語…"  # 6 columns and the ellipsis
    assert clip_to_width("日本語のテキスト", 8) == "日本語…"  # the 4th would end at column 9
    assert clip_to_width("日本語", 6) == "日本語"
    assert display_width(clip_to_width(LONG_JAPANESE, 33)) <= 33


def test_quarantine_list_tells_held_mail_from_faults(site):
    lines = site.run("quarantine", "list").stdout.splitlines()
    assert lines[0].split()[:2] == ["id", "class"]
    assert sorted(line.split()[1] for line in lines[2:]) == ["quarantine", "unknown_post"]


def test_numbers_are_never_cut_on_a_narrow_terminal(monkeypatch):
    from mailthreads.cli.output import fitted_table

    # Too narrow for the table even with the subject cut to its title: the id stays whole
    # all the same (people type it), and the count too.
    monkeypatch.setenv("COLUMNS", "16")
    lines = fitted_table([["123456", "a subject long enough to be cut", "42"]],
                         ["id", "subject", "n"]).splitlines()
    assert lines[2].split()[0] == "123456" and lines[2].split()[-1] == "42", lines
    assert "a subj…" in lines[2], lines
