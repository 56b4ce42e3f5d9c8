from datetime import UTC, datetime, timedelta

import pytest

from fx168.parsing.dates import (
    DAY,
    EMPTY,
    FUTURE,
    HOUR,
    MINUTE,
    SECOND,
    TOO_EARLY,
    UNREADABLE,
    DateError,
    parse_published,
    parse_site_datetime,
    read_site_datetime,
)

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


# -- the forms Chinese portals print ---------------------------------------------------------

EARLY = datetime(2027, 1, 2, 22, 0, tzinfo=UTC)  # 06:00 on 3 January 2027 in Shanghai


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("刚刚", "2027-01-03T06:00:00+08:00", MINUTE),
        ("45秒前", "2027-01-03T05:59:15+08:00", SECOND),
        ("5分钟前", "2027-01-03T05:55:00+08:00", MINUTE),
        ("半小时前", "2027-01-03T05:30:00+08:00", MINUTE * 30),
        ("1个小时前", "2027-01-03T05:00:00+08:00", HOUR),
        ("今天 05:10", "2027-01-03T05:10:00+08:00", MINUTE),
        ("昨天10:30", "2027-01-02T10:30:00+08:00", MINUTE),
        ("前天 23:59", "2027-01-01T23:59:00+08:00", MINUTE),
        ("3天前", "2026-12-31T06:00:00+08:00", DAY),
        ("05:40", "2027-01-03T05:40:00+08:00", MINUTE),
        ("06:05", "2027-01-03T06:05:00+08:00", MINUTE),  # a few minutes ahead: clocks differ, still today
        ("19:12", "2027-01-02T19:12:00+08:00", MINUTE),  # 13 hours ahead: yesterday's
        ("12-26", "2026-12-26T00:00:00+08:00", DAY),  # no year, read on 3 January: last year's
        ("01-02 15:30", "2027-01-02T15:30:00+08:00", MINUTE),
        ("01-03 07:00", "2026-01-03T07:00:00+08:00", MINUTE),  # an hour ahead of the fetch: last year's
        ("11月22日", "2026-11-22T00:00:00+08:00", DAY),
        ("11月22日 15:30", "2026-11-22T15:30:00+08:00", MINUTE),
        ("11月22日15:30", "2026-11-22T15:30:00+08:00", MINUTE),
        ("2022年12月21日 14:20", "2022-12-21T14:20:00+08:00", MINUTE),
        ("2022年12月21日14:20", "2022-12-21T14:20:00+08:00", MINUTE),
        ("2022年12月21日", "2022-12-21T00:00:00+08:00", DAY),
        ("2022-12-21", "2022-12-21T00:00:00+08:00", DAY),
        ("2022/12/21", "2022-12-21T00:00:00+08:00", DAY),
        ("2022/12/21 14:20:05", "2022-12-21T14:20:05+08:00", SECOND),
        ("２０２２年１２月２１日　１４：２０", "2022-12-21T14:20:00+08:00", MINUTE),  # full-width digits
        ("１９：１２", "2027-01-02T19:12:00+08:00", MINUTE),
        ("\u200b2022-12-21 14:20\ufeff", "2022-12-21T14:20:00+08:00", MINUTE),
        ("1671603600", "2022-12-21T14:20:00+08:00", SECOND),  # a JSON timestamp, seconds
        ("1671603600000", "2022-12-21T14:20:00+08:00", SECOND),  # and milliseconds
    ],
)
def test_dates_as_chinese_portals_print_them(text: str, expected: str, precision: timedelta) -> None:
    assert read_site_datetime(text, EARLY) == (datetime.fromisoformat(expected), precision)


@pytest.mark.parametrize("text", ["12-45", "02-30 10:00", "2023-02/24", "昨天晚上", "N分钟前", "19:61", "1234567"])
def test_what_looks_like_a_form_but_is_no_date_is_unreadable(text: str) -> None:
    with pytest.raises(DateError) as raised:
        parse_site_datetime(text, EARLY)
    assert raised.value.reason == UNREADABLE


@pytest.mark.parametrize(
    ("text", "machine", "expected"),
    [
        ("12-21", "2026-12-21T10:31:00+08:00", "2026-12-21T10:31:00+08:00"),  # the attribute is finer
        ("3天前", "2026-12-30T08:15:00+08:00", "2026-12-30T08:15:00+08:00"),
        ("2026-12-21 10:31", "2026-12-21", "2026-12-21T10:31:00+08:00"),  # the text is finer
        ("2026-12-21 10:31", "2026-12-21T10:31:40+08:00", "2026-12-21T10:31:40+08:00"),
        ("2026-12-21 10:31", "", "2026-12-21T10:31:00+08:00"),
        ("不知何时", "1766284260", "2025-12-21T10:31:00+08:00"),  # the text unreadable
        ("12-21", "yesterday-ish", "2026-12-21T00:00:00+08:00"),  # the attribute unreadable
        ("12-21", "2099-01-01T00:00:00+08:00", "2026-12-21T00:00:00+08:00"),  # the attribute impossible
    ],
)
def test_a_machine_readable_time_wins_over_coarser_text(text: str, machine: str, expected: str) -> None:
    assert parse_published(text, EARLY, machine=machine).isoformat() == expected


@pytest.mark.parametrize(
    ("text", "machine", "reason"),
    [
        ("", None, EMPTY),
        ("下午", None, UNREADABLE),
        ("2099-01-01", None, FUTURE),
        ("1989-12-31", "1989-12-31T00:00:00+08:00", TOO_EARLY),
        ("不知何时", "也不知", UNREADABLE),
    ],
)
def test_unknown_dates_say_why(text: str, machine: str | None, reason: str) -> None:
    with pytest.raises(DateError) as raised:
        parse_published(text, EARLY, machine=machine)
    assert raised.value.reason == reason
