import pytest

from fx168.parsing.text import (
    Exclude,
    MarkupError,
    block_texts,
    clean,
    clean_lines,
    document,
    fragment_blocks,
    joined_text,
    select,
    select_one,
    snippet_text,
    truncated,
    within,
)


def test_clean_collapses_whitespace_and_drops_control_characters() -> None:
    assert clean("  央行\t发布  报告 ") == "央行 发布 报告"
    assert clean("央\x00行\x07") == "央行"
    assert clean(None) == ""


def test_highlight_fragments_join_into_the_sentence_and_into_terms() -> None:
    node = select_one(
        document(
            "<p>推进中国式<span class='hl'>现</span><span class='hl'>代</span>化,"
            "<span class='hl'>现</span>x<span class='hl'>代</span></p>"
        ),
        "p",
    )
    assert joined_text(node) == "推进中国式现代化,现x代"
    assert snippet_text(node, "hl")[1] == ["现代", "现", "代"]


def test_document_drops_what_is_not_text_and_keeps_the_text_around_it() -> None:
    doc = document(
        "<html><body><p>前<script>alert(1)</script>中<style>p{}</style>后<noscript>NS</noscript>"
        "<template>T</template>尾<!-- 注释 --></p></body></html>"
    )
    assert joined_text(select_one(doc, "p")) == "前中后尾"


def test_document_refuses_markup_nested_past_the_parsers_limit() -> None:
    nested = "<div>" * 3000 + "深" + "</div>" * 3000
    assert joined_text(select_one(document(f"<html><body>{'<div>' * 2000}深</body></html>"), "body")) == "深"
    with pytest.raises(MarkupError, match="nested too deeply"):
        document(f"<html><body>{nested}<p>后</p></body></html>")


def test_document_takes_nul_bytes_and_lone_surrogates() -> None:
    doc = document("<html><body><p>央\x00行\ud800报告</p></body></html>")
    assert joined_text(select_one(doc, "p")) == "央行报告"
    assert clean("央\ud800行") == "央行"


def test_a_page_without_its_end_is_truncated() -> None:
    assert truncated("<html><body><p>正文")
    assert truncated("")
    assert not truncated("<html><body><p>正文</p></BODY>")
    assert not truncated("<html><body><p>正文</p></body></html>\n")


def test_a_snippet_is_read_in_one_pass_as_joined_text_and_highlighted_terms() -> None:
    """snippet_text gives what joined_text gives, and the highlighted terms: comments are not text
    and do not split a term, a script is gone, text or another element between highlights
    splits them, and a highlight's own markup is part of its term."""
    node = select_one(
        document(
            "<p>前<span class='hl'>现</span><!-- c --><span class='hl x'>代</span>化<script>s</script>"
            "<span class='hl'>中<b>国</b></span>x<span class='hl'>式</span><i>i</i><span class='hl'>现</span>"
            "<span class='hl'>代</span><!-- c -->尾 \n 句</p>"
        ),
        "p",
    )
    assert snippet_text(node, "hl") == ("前现代化中国x式i现代尾句", ["现代", "中国", "式", "现代"])
    assert snippet_text(node, "hl")[0] == joined_text(node)


def test_long_text_loses_its_control_characters_and_lone_surrogates_too() -> None:
    long = "央行" * 600  # long enough to be checked in its UTF-8 form
    assert clean(f"{long}\x00\x7f{long}") == long + long
    assert clean(f"{long}\ud800 {long}") == f"{long} {long}"
    assert clean(f" {long}\n{long} ") == long + long  # a line break between two CJK characters
    assert clean(f" {long}\ta\n{long} ") == f"{long} a {long}"


def test_a_page_with_control_characters_and_surrounding_whitespace_reads_as_without_them() -> None:
    page = "\u3000\n<html><body><p class='a\x01'>央\x00行</p><p>报\ud800告</p></body></html>\x7f \n"
    doc = document(page)
    assert [joined_text(p) for p in select(doc, "p")] == ["央行", "报告"]
    assert select_one(doc, "p.a") is not None


def test_the_end_of_a_page_is_found_wherever_it_is() -> None:
    assert not truncated("<html><body><p>正文</p></body></html>" + " " * 5000)
    assert not truncated("<html><body><p>正文</p></body>" + "<!-- x -->" * 500)
    assert truncated("<html><body><p>" + "正文" * 5000)


@pytest.mark.parametrize(
    ("css", "inside"),
    [
        ("div.pagination .current", True),
        ("div.pagination > a.page", True),
        ("div.pagination ul li a", True),
        ("div.pagination", False),  # the block itself
        ("div.pagination + a", False),  # a sibling is outside the block
        ("div.pagination ~ p a", False),
        ("div.pagination a, a.next", False),  # the second selector can match anywhere
        ("main div.pagination a", False),  # anchored at main, not at the block
        ("div.pager a", False),
    ],
)
def test_within_tells_which_selectors_only_match_inside_a_block(css: str, inside: bool) -> None:
    assert within(css, "div.pagination") is inside
    assert not within(css, "main div.pagination")  # only a simple selector is a block


# -- white space as a browser shows it -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("中国式\n现代化", "中国式现代化"),  # a line break between CJK characters shows as nothing
        ("中国式 \n\t  \n 现代化", "中国式现代化"),  # with the white space around it
        ("央行。\n发布", "央行。发布"),  # full-width punctuation is wide too
        ("ChatGPT\nOpenAI", "ChatGPT OpenAI"),  # elsewhere a line break is a space
        ("央行\nAI", "央行 AI"),
        ("央行 发布", "央行 发布"),  # a space the source has is kept
        ("\u00a0\u3000央行\u3000\u00a0", "央行"),  # NBSP and U+3000 are white space at the edges
        ("央\u200b行\ufeff", "央行"),  # zero-width space, BOM
        ("Chat\u00adGPT\u200c\u200d\u2060", "ChatGPT"),  # soft hyphen, joiners, word joiner
        ("央\u200b\n行", "央行"),  # invisible characters go first, then the break between CJK
        ("\u200b \u200b", ""),
    ],
)
def test_clean_gives_text_as_a_browser_shows_it(raw: str, shown: str) -> None:
    assert clean(raw) == shown
    long = "x " * 600  # long text takes another path
    assert clean(long + raw) == f"{long}{shown}".strip()


def test_clean_lines_keeps_meant_line_breaks() -> None:
    assert clean_lines(" 第一行\u200b \n\n 第二行\nAI ") == "第一行\n第二行\nAI"
    assert clean_lines("一行") == "一行"
    assert clean_lines(None) == ""


def test_a_pretty_printed_snippet_reads_as_the_compact_one() -> None:
    compact = "<p>推进中国式<span class='hl'>现</span><span class='hl'>代</span>化,<span class='hl'>现</span>x</p>"
    pretty = (
        "<p>\n  推进中国式\n  <span class='hl'>\n    现\n  </span>\n  <span class='hl'>\n    代\u200b\n  </span>\n"
        "  化,<span class='hl'>\u00ad现</span>x\n</p>"
    )
    read = [snippet_text(select_one(document(page), "p"), "hl") for page in (compact, pretty)]
    assert read[0] == read[1] == ("推进中国式现代化,现x", ["现代", "现"])


# -- paragraphs of a body --------------------------------------------------------------------


def _body(html: str, exclude: Exclude = None) -> list[str]:
    return block_texts(select_one(document(f"<html><body><div class='b'>{html}</div></body></html>"), "div.b"), exclude)


@pytest.mark.parametrize(
    ("html", "paragraphs"),
    [
        ("<p>一</p><p>二</p>", ["一", "二"]),
        ("<section><div><p>一</p></div><p>二</p></section>", ["一", "二"]),  # any depth
        ("<div>一<p>二</p>三</div>", ["一", "二", "三"]),  # a div's own text is a paragraph
        ("<p>一<span>二<p>三", ["一二", "三"]),  # an unclosed inline tag merges nothing
        ("<p>一<br>二</p>", ["一\n二"]),  # <br> is a line break
        ("<p>ChatGPT<br><br>OpenAI</p>", ["ChatGPT", "OpenAI"]),  # <br><br> a paragraph break
        ("一<br>\n <!-- c --> <br/><br>二<br>", ["一", "二"]),
        ("<p><b>粗</b>体<i>斜</i></p>", ["粗体斜"]),  # inline elements add no space
        ("<h2>小标题</h2><ul><li>甲</li><li>乙</li></ul><blockquote>引</blockquote>", ["小标题", "甲", "乙", "引"]),
        ("<p> </p><p>\u200b</p><div><br></div><p>一</p>", ["一"]),  # empty ones are dropped
        ("<p>一<script>var x = 1;</script>二</p><style>p {}</style>", ["一二"]),
    ],
)
def test_block_texts_gives_the_paragraphs_a_reader_sees(html: str, paragraphs: list[str]) -> None:
    assert _body(html) == paragraphs
    assert fragment_blocks(html) == paragraphs  # the same from a fragment (a body inside JSON)


def test_block_texts_skips_what_the_caller_excludes_and_keeps_the_text_after_it() -> None:
    html = "<p>一<span class='credit'>图片来源:网络</span>二</p><div style='border-top:1px'>转载请注明</div><p>三</p>"
    assert _body(html, "span.credit, div[style*=border-top]") == ["一二", "三"]
    assert _body(html, lambda element: element.tag == "span") == ["一二", "转载请注明", "三"]
    assert fragment_blocks(html, "div[style*=border-top]") == ["一图片来源:网络二", "三"]


def test_block_texts_reads_bodies_nested_deeper_than_pythons_recursion_limit() -> None:
    assert _body("<div>" * 1500 + "深" + "</div>" * 1500 + "<p>浅</p>") == ["深", "浅"]
