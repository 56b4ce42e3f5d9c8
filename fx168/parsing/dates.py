"""Dates as Chinese portals print them, read as Asia/Shanghai wall-clock time.

Everything relative ('3小时前', '昨天 10:30', '11月22日' without a year, a time without a date)
is resolved against the moment the page was fetched, never against the moment the code runs:
a page read from a spool or parsed again tomorrow must give the same answer.

The forms are read by hand-written patterns, not by a general date library: the portal's
forms are few, a general parser guesses where these refuse (an unreadable date is stored as
unknown, never as a guess), and it costs tens of times more per date (``make bench`` measures
dateparser beside this module on the same list).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

from dateutil import parser as dateutil_parser

from fx168.parsing.text import strip_invisible
from fx168.site import SITE_TZ as SITE_TZ  # defined in the site description; re-exported for dates' callers

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_JUST_NOW = frozenset({"刚刚", "刚才", "just now"})
#: '3小时前', '半小时前', '1个小时前', '5分钟前', '2天前', '2周前'.
_RELATIVE = re.compile(r"(\d+|半)\s?个?\s?(秒钟?|分钟|分|小时|钟头|天|日|周|星期)\s?之?前")
_UNITS = {
    "秒": SECOND,
    "秒钟": SECOND,
    "分钟": MINUTE,
    "分": MINUTE,
    "小时": HOUR,
    "钟头": HOUR,
    "天": DAY,
    "日": DAY,
    "周": 7 * DAY,
    "星期": 7 * DAY,
}
_RELATIVE_DAY = re.compile(rf"(今天|昨天|前天)(?:\s?{_TIME})?")
_DAYS_AGO = {"今天": 0, "昨天": 1, "前天": 2}
_TIME_ONLY = re.compile(_TIME)
#: 'YYYY-MM-DD', 'YYYY/MM/DD', 'MM-DD', each with an optional time ('MM-DD HH:MM').
_NUMERIC = re.compile(rf"(?:(\d{{4}})([-/.]))?(\d{{1,2}})([-/.])(\d{{1,2}})(?:[ T]?{_TIME})?")
#: 'YYYY年MM月DD日 HH:MM', 'MM月DD日HH:MM', 'MM月DD日' (spaces anywhere between the parts).
_CJK = re.compile(rf"(?:(\d{{4}})\s?年\s?)?(\d{{1,2}})\s?月\s?(\d{{1,2}})\s?[日号](?:\s?{_TIME})?")
#: ISO 8601 with a time ('2023-02-24T19:12:00+08:00', '…Z'): datetime.fromisoformat reads it.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", re.ASCII)
#: A Unix timestamp in seconds or milliseconds (a JSON field).
_EPOCH = re.compile(r"\d{10}(?:\d{3})?", re.ASCII)
#: The portal's usual forms, 'YYYY-MM-DD HH:MM' and 'YYYY-MM-DD': read first, directly.
_PLAIN = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?: ([0-9]{2}):([0-9]{2}))?", re.ASCII)
_LETTER = re.compile(r"[A-Za-z]", re.ASCII)

#: A publication time later than the fetch by more than this is not one the portal could have
#: shown (clocks differ a little; a 2099 date is a bug or a placeholder).
FUTURE_TOLERANCE = timedelta(days=1)
#: How far past the fetch time a date without a year, or a time without a date, may fall
#: before it is taken as last year's (last day's): the portal's clock and ours differ a little.
CLOCK_SKEW = timedelta(minutes=10)
#: Nothing on the portal predates this.
EARLIEST = datetime(1990, 1, 1, tzinfo=SITE_TZ)

EMPTY = "empty date"
UNREADABLE = "unreadable date"
FUTURE = "date in the future"
TOO_EARLY = f"date before {EARLIEST.year}"


class DateError(ValueError):
    """The text is not a date the portal could have meant; ``reason`` says which kind of
    failure (one of EMPTY, UNREADABLE, FUTURE, TOO_EARLY), for counting."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason} {text!r}" if text else reason)
        self.reason = reason


def parse_site_datetime(text: str, now: datetime, tz: tzinfo = SITE_TZ) -> datetime:
    """An aware datetime for what the page shows (see ``read_site_datetime``)."""
    return read_site_datetime(text, now, tz)[0]


def read_site_datetime(text: str, now: datetime, tz: tzinfo = SITE_TZ) -> tuple[datetime, timedelta]:
    """What the page shows as an aware datetime, with its precision (a second, a minute, an
    hour, a day: how much the text leaves open), so that a finer reading can win.

    Relative forms resolve against ``now`` (the fetch time) in ``tz``; a date without a year
    takes the latest year that does not put it after ``now``; a time without a date is on the
    fetch day, or the day before if that would be after ``now``. Naive results are site-local
    time. Full-width digits and colons read as ASCII ones. Raises DateError rather than guessing.
    """
    raw = _normalise(text)
    if not raw:
        raise DateError(EMPTY, "")
    if (plain := _plain(raw, tz)) is not None:  # the usual forms; they never depend on ``now``
        return plain
    local_now = now.astimezone(tz)
    try:
        found = _relative(raw, local_now, tz) or _absolute(raw, local_now, tz)
    except (ValueError, OverflowError) as exc:  # 昨天 25:61, 13-45, an epoch out of range
        raise DateError(UNREADABLE, text) from exc
    if found is None:
        raise DateError(UNREADABLE, text)
    return found


def _normalise(text: str | None) -> str:
    """One spelling per form: trimmed, invisible characters dropped, white space single, and
    full-width digits, colons and spaces (NFKC) as ASCII ones."""
    raw = (text or "").strip()
    if not raw.isascii():
        raw = unicodedata.normalize("NFKC", strip_invisible(raw))
    return " ".join(raw.split())


def _relative(raw: str, now: datetime, tz: tzinfo) -> tuple[datetime, timedelta] | None:
    if raw in _JUST_NOW:
        return now, MINUTE
    if match := _RELATIVE.fullmatch(raw):
        count, unit = match.groups()
        size = _UNITS[unit]
        if count == "半":  # 半小时前, 半天前
            return now - size / 2, size / 2
        return now - int(count) * size, size
    if match := _RELATIVE_DAY.fullmatch(raw):
        day = (now - timedelta(days=_DAYS_AGO[match.group(1)])).date()
        if match.group(2) is None:
            return _local(datetime(day.year, day.month, day.day), tz), DAY
        return _on(day.year, day.month, day.day, match.group(2, 3, 4), tz)
    if match := _TIME_ONLY.fullmatch(raw):
        value, precision = _on(now.year, now.month, now.day, match.groups(), tz)
        if value > now + CLOCK_SKEW:  # 19:12 read at 06:00 is yesterday's
            value = _local(datetime.combine(value.date() - DAY, value.time()), tz)
        return value, precision
    return None


def _absolute(raw: str, now: datetime, tz: tzinfo) -> tuple[datetime, timedelta] | None:
    if match := _ISO.fullmatch(raw):
        value = datetime.fromisoformat(raw)
        return (_local(value, tz) if value.tzinfo is None else value.astimezone(tz)), SECOND
    if match := _NUMERIC.fullmatch(raw):
        year, year_separator, month, separator, day, *clock = match.groups()
        if year and year_separator != separator:  # 2023-02/24 is no form anyone prints
            return None
        return _dated(year, month, day, clock, now, tz)
    if match := _CJK.fullmatch(raw):
        year, month, day, *clock = match.groups()
        return _dated(year, month, day, clock, now, tz)
    if _EPOCH.fullmatch(raw):
        seconds = int(raw) / (1000 if len(raw) == 13 else 1)
        return datetime.fromtimestamp(seconds, UTC).astimezone(tz), SECOND
    if _LETTER.search(raw) and any(char.isdigit() for char in raw):  # 'Feb 24, 2023 10:05', RFC 2822
        default = now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        value = dateutil_parser.parse(raw, default=default)
        return (_local(value, tz) if value.tzinfo is None else value.astimezone(tz)), MINUTE
    return None


def _dated(
    year: str | None, month: str, day: str, clock: list[str | None], now: datetime, tz: tzinfo
) -> tuple[datetime, timedelta]:
    """A calendar date with an optional time; without a year, the latest year not after ``now``."""
    if year is not None:
        return _on(int(year), int(month), int(day), clock, tz)
    value, precision = _on(now.year, int(month), int(day), clock, tz)
    if value > now + CLOCK_SKEW:  # 12-26 read on 3 January is last year's
        value, precision = _on(now.year - 1, int(month), int(day), clock, tz)
    return value, precision


def _on(
    year: int, month: int, day: int, clock: list[str | None] | tuple[str | None, ...], tz: tzinfo
) -> tuple[datetime, timedelta]:
    """The local datetime for a date and an optional 'H', 'M', 'S' (raises ValueError if none)."""
    hour, minute, second = clock
    if hour is None:
        return _local(datetime(year, month, day), tz), DAY
    value = datetime(year, month, day, int(hour), int(minute or 0), int(second or 0))
    return _local(value, tz), (SECOND if second else MINUTE)


@lru_cache(maxsize=8192)
def _plain(raw: str, tz: tzinfo) -> tuple[datetime, timedelta] | None:
    """'YYYY-MM-DD[ HH:MM]' as an aware datetime; None for any other text, and for one that is no
    calendar date (2023-13-45), which the general patterns then judge like any other text.
    Cached: a listing's dates repeat, and datetimes are immutable."""
    if match := _PLAIN.fullmatch(raw):
        year, month, day, hour, minute = match.groups()
        try:
            value = _local(datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0)), tz)
        except ValueError:
            return None
        return value, (DAY if hour is None else MINUTE)
    return None


def parse_published(text: str, fetched_at: datetime, tz: tzinfo = SITE_TZ, machine: str | None = None) -> datetime:
    """When an article (or listing entry) was published, as the page fetched at ``fetched_at``
    says; raises DateError for text that is not a date and for a date the portal cannot have
    meant (after the fetch, or before the portal existed).

    ``machine`` is the page's machine-readable time for the same moment (a ``<time datetime>``
    attribute, a JSON timestamp): of the two, the finer reading wins, the machine's on a tie;
    either one alone does. The visible text's failure is the one reported when both fail.
    """
    readings: list[tuple[timedelta, int, datetime]] = []
    failure: DateError | None = None
    for order, candidate in enumerate((machine, text)):
        if candidate is None or (order == 0 and not candidate.strip()):
            continue
        try:
            value, precision = read_site_datetime(candidate, fetched_at, tz)
            _check_range(value, candidate, fetched_at)
        except DateError as exc:
            failure = exc
            continue
        readings.append((precision, order, value))
    if readings:
        return min(readings)[2]
    assert failure is not None
    raise failure


def _check_range(value: datetime, text: str, fetched_at: datetime) -> None:
    if value > fetched_at + FUTURE_TOLERANCE:
        raise DateError(FUTURE, text)
    if value < EARLIEST:
        raise DateError(TOO_EARLY, text)


def _local(value: datetime, tz: tzinfo) -> datetime:
    return value.replace(tzinfo=tz)
