"""Telegram's parse_mode rules as the emulator applies them: visible text, entities, or a 400."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram.helpers import escape_markdown

from bot.emulator.errors import ApiError
from bot.emulator.formatting import parse, utf16_len


def entity(kind: str, offset: int, length: int, **extra: object) -> dict[str, object]:
    return {"type": kind, "offset": offset, "length": length, **extra}


def test_html_tags_become_entities_and_character_references_are_decoded() -> None:
    text, entities = parse('<b>Risk</b> &lt; 5% &amp; <i>falling</i>, see <a href="https://x.org/r">report</a>',
                           "HTML")
    assert text == "Risk < 5% & falling, see report"
    assert entities == [entity("bold", 0, 4), entity("italic", 12, 7), entity("text_link", 25, 6,
                                                                              url="https://x.org/r")]


def test_offsets_count_utf16_code_units() -> None:
    text, entities = parse("😀 <u>up</u>", "HTML")
    assert text == "😀 up" and utf16_len("😀") == 2
    assert entities == [entity("underline", 3, 2)]


def test_pre_takes_the_language_of_its_code_block_and_spoilers_need_their_class() -> None:
    text, entities = parse('<pre><code class="language-python">x = 1</code></pre><span class="tg-spoiler">s</span>',
                           "HTML")
    assert text == "x = 1s"
    assert entities == [entity("pre", 0, 5, language="python"), entity("spoiler", 5, 1)]


@pytest.mark.parametrize(("source", "reason"), [
    ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
    ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
    ("churn < 5%", 'Unsupported start tag "" at byte offset 6'),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
])
def test_bad_html_is_refused_with_telegrams_reason(source: str, reason: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(source, "HTML")
    assert raised.value.status == 400
    assert raised.value.description == f"Bad Request: can't parse entities: {reason}"


def test_markdown_v2_entities_links_and_escapes() -> None:
    text, entities = parse(r"*bold* _it_ __u__ ~s~ ||sp|| `a\`b` [site](https://x.org/a\)b) 1\.5\!", "MarkdownV2")
    assert text == "bold it u s sp a`b site 1.5!"
    assert entities == [entity("bold", 0, 4), entity("italic", 5, 2), entity("underline", 8, 1),
                        entity("strikethrough", 10, 1), entity("spoiler", 12, 2), entity("code", 15, 3),
                        entity("text_link", 19, 4, url="https://x.org/a)b")]


def test_markdown_v2_pre_blocks_keep_their_language() -> None:
    text, entities = parse("```python\nprint(1)\n```", "MarkdownV2")
    assert (text, entities) == ("print(1)", [entity("pre", 0, 8, language="python")])


def test_surrounding_whitespace_is_trimmed_and_entities_follow() -> None:
    assert parse("hello\n", None) == ("hello", [])
    assert parse("\n  <b>top 10</b> \n", "HTML") == ("top 10", [entity("bold", 0, 6)])
    assert parse("<i> x </i>", "HTML") == ("x", [entity("italic", 0, 1)])


@pytest.mark.parametrize(("source", "reason"), [
    ("recall 0.8", "Character '.' is reserved and must be escaped with the preceding '\\'"),
    ("top-10", "Character '-' is reserved and must be escaped with the preceding '\\'"),
    ("*bold", "Can't find end of Bold entity at byte offset 0"),
    ("`code", "Can't find end of Code entity at byte offset 0"),
])
def test_markdown_v2_refuses_unescaped_reserved_characters(source: str, reason: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(source, "MarkdownV2")
    assert raised.value.description == f"Bad Request: can't parse entities: {reason}"


def test_legacy_markdown_is_lenient_about_punctuation_but_not_about_open_entities() -> None:
    assert parse("*top* 10 - churn 0.8 (_weekly_)", "Markdown") == (
        "top 10 - churn 0.8 (weekly)", [entity("bold", 0, 3), entity("italic", 20, 6)])
    with pytest.raises(ApiError, match="Can't find end"):
        parse("a_b", "Markdown")


def test_plain_text_is_untouched_and_unknown_modes_are_refused() -> None:
    assert parse("<b>*as is*</b>", None) == ("<b>*as is*</b>", [])
    with pytest.raises(ApiError, match='unsupported parse_mode "RTF"'):
        parse("x", "RTF")


@given(st.text(max_size=60))
def test_text_escaped_by_the_usual_helpers_comes_back_unchanged(text: str) -> None:
    # what a careful bot does (html.escape / PTB's escape_markdown) must always be accepted
    assert parse(html.escape(text, quote=False), "HTML") == (text.strip(), [])
    assert parse(escape_markdown(text, version=2), "MarkdownV2") == (text.strip(), [])
