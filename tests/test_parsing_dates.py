from datetime import UTC, datetime

import pytest

from crawler.parsing.dates import DateError, parse_published, parse_site_datetime

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-02-24 10:05", "2023-02-24T10:05:00+08:00"),
        ("2023-02-24", "2023-02-24T00:00:00+08:00"),
        ("2023年02月24日 10:05", "2023-02-24T10:05:00+08:00"),
        ("2023-02-24T19:12:00+08:00", "2023-02-24T19:12:00+08:00"),
        ("2023-02-24T11:12:00Z", "2023-02-24T19:12:00+08:00"),
        ("3小时前", "2026-11-28T08:00:00+08:00"),
        ("昨天 10:30", "2026-11-27T10:30:00+08:00"),
        ("2月24日", "2026-02-24T00:00:00+08:00"),
        ("12月24日", "2025-12-24T00:00:00+08:00"),  # no year, and this year's would be in the future
    ],
)
def test_site_dates_are_shanghai_time(text: str, expected: str) -> None:
    assert parse_site_datetime(text, NOW).isoformat() == expected


@pytest.mark.parametrize("text", ["", "   ", "2023-13-45", "昨天下午", "abc"])
def test_unreadable_dates_raise_instead_of_guessing(text: str) -> None:
    with pytest.raises(DateError):
        parse_site_datetime(text, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("刚刚", "2026-11-28T11:00:00+08:00"),
        ("2周前", "2026-11-14T11:00:00+08:00"),
        ("10:30", "2026-11-28T10:30:00+08:00"),  # a time alone is on the fetch day, not today
    ],
)
def test_what_a_date_leaves_out_comes_from_the_fetch_time(text: str, expected: str) -> None:
    assert parse_site_datetime(text, NOW).isoformat() == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2099-01-01 10:00", "date in the future '2099-01-01 10:00'"),
        ("2026-11-30", "date in the future '2026-11-30'"),
        ("1899-12-31", "date before 1990 '1899-12-31'"),
        ("昨天 25:61", "unreadable date '昨天 25:61'"),
    ],
)
def test_published_dates_the_portal_cannot_have_meant_raise(text: str, reason: str) -> None:
    with pytest.raises(DateError) as raised:
        parse_published(text, NOW)
    assert str(raised.value) == reason


def test_published_dates_within_a_day_of_the_fetch_are_accepted() -> None:
    assert parse_published("2026-11-28 23:59", NOW).isoformat() == "2026-11-28T23:59:00+08:00"
    assert parse_published("3小时前", NOW).isoformat() == "2026-11-28T08:00:00+08:00"
