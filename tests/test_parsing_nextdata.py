"""Reading a page by both paths: the JSON gives the record, the HTML is the fallback and the check."""

import json

import pytest

from fx168.items import Pagination
from fx168.parsing.errors import PageParseError
from fx168.parsing.nextdata import (
    ShapeError,
    differences,
    dig,
    dig_any,
    machine_time,
    next_data,
    read_both,
)


def page(data: object | None, body: str = "<p>x</p>") -> str:
    script = (
        f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data, ensure_ascii=False)}</script>'
        if data is not None
        else ""
    )
    return f"<html><body>{body}{script}</body></html>"


def from_json(data: object) -> str:
    return str(dig(data, ("props", "title")))


def test_next_data_is_read_from_the_raw_page() -> None:
    assert next_data(page({"props": {"title": "甲"}})) == {"props": {"title": "甲"}}
    assert next_data(page(None)) is None
    assert next_data('<script id="__NEXT_DATA__">{not json</script>') is None


def test_dig_names_the_missing_key() -> None:
    with pytest.raises(ShapeError, match=r"no props\.pageProps"):
        dig({"props": {}}, ("props", "pageProps", "data"))
    assert dig_any({"b": 1}, [("a",), ("b",)]) == 1


def test_json_first_when_both_agree() -> None:
    record, via, drift = read_both(page({"props": {"title": "甲"}}), "u", from_json, lambda: "甲")
    assert (record, via, drift) == ("甲", "json", [])


def test_json_missing_falls_back_to_the_html_and_says_so() -> None:
    record, via, drift = read_both(page(None), "u", from_json, lambda: "甲")
    assert (record, via) == ("甲", "html")
    assert drift == ["json_missing: no __NEXT_DATA__"]
    record, via, drift = read_both(page({"props": {}}), "u", from_json, lambda: "甲")
    assert via == "html" and drift == ["json_missing: no props.title"]


def test_use_json_false_reads_the_html_alone_without_drift() -> None:
    assert read_both(page(None), "u", from_json, lambda: "甲", use_json=False) == ("甲", "html", [])


def test_disagreement_and_a_silent_html_are_drift() -> None:
    _, via, drift = read_both(page({"props": {"title": "甲"}}), "u", from_json, lambda: "乙")
    assert via == "json" and drift == ["disagree: value"]

    def broken() -> str:
        raise PageParseError("u", "no article element")

    record, via, drift = read_both(page({"props": {"title": "甲"}}), "u", from_json, broken)
    assert record == "甲" and drift == ["disagree: the HTML gives no record (no article element)"]


def test_neither_path_is_markup_changed() -> None:
    def broken() -> str:
        raise PageParseError("u", "no article element")

    with pytest.raises(PageParseError, match=r"^markup changed: JSON: no __NEXT_DATA__; HTML: no article element"):
        read_both(page(None), "u", from_json, broken)


def test_unexpected_json_is_drift_not_a_crash() -> None:
    def fragile(data: object) -> str:
        return data["props"]["title"]["deeper"]  # type: ignore[index]  # a string has no keys

    _, via, drift = read_both(page({"props": {"title": "甲"}}), "u", fragile, lambda: "甲")
    assert via == "html" and drift[0].startswith("json_missing: unexpected JSON (TypeError")


def test_differences_name_the_field_and_treat_link_spellings_as_one() -> None:
    base = "http://127.0.0.1:8/search?keyword=x&type=article&page="
    a = Pagination(1, 2, None, base + "2")
    assert differences(a, Pagination(1, 2, None, base + "2")) is None
    assert differences(a, Pagination(1, 3, None, base + "2")) == "last"
    assert differences(["http://h/article/现代-1049862"], ["http://h/article/1049862"]) is None
    assert differences(["http://h/article/%E7%8E%B0-1"], ["http://h/article/现-1"]) is None
    assert differences(["http://h/article/1"], ["http://h/article/2"]) == "[0]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-02-24 16:20:00", "2023-02-24T16:20:00+08:00"),
        ("2023-02-24 16:20", "2023-02-24T16:20:00+08:00"),
        ("2023-02-24T16:20:00+08:00", "2023-02-24T16:20:00+08:00"),
        ("2023-02-24T08:20:00Z", "2023-02-24T08:20:00+00:00"),
        ("2023-02-24T16:20:00+0800", "2023-02-24T16:20:00+08:00"),
        ("3小时前", "3小时前"),
        ("2023-02-24", "2023-02-24"),
    ],
)
def test_machine_time(text: str, expected: str) -> None:
    assert machine_time(text) == expected
