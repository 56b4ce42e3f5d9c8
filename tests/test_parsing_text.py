from crawler.parsing.text import clean, document, highlighted_terms, joined_text, select_one


def test_clean_collapses_whitespace_and_drops_control_characters() -> None:
    assert clean("  央行\n\t发布  报告 ") == "央行 发布 报告"
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
    assert highlighted_terms(node, "hl") == ["现代", "现", "代"]
