"""Dates as the portal writes them, read as Asia/Shanghai wall-clock time.

Everything relative ('3小时前', '昨天 10:30', '2月24日' without a year, a time without a date)
is resolved against the moment the page was fetched, never against the moment the code runs:
a page read from a spool or parsed again tomorrow must give the same answer.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser

SITE_TZ = ZoneInfo("Asia/Shanghai")

_CJK_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_RELATIVE = re.compile(r"^(\d+)\s*(秒|分钟|小时|天|周)前$")
_RELATIVE_DAY = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}:\d{2})?$")
_JUST_NOW = ("刚刚", "刚才")
#: The portal's usual absolute forms, 'YYYY-MM-DD HH:MM' and 'YYYY-MM-DD': read directly,
#: without python-dateutil's general tokenizer (same result, a fraction of the cost).
_PLAIN = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?: ([0-9]{2}):([0-9]{2}))?", re.ASCII)
_UNITS = {"秒": "seconds", "分钟": "minutes", "小时": "hours", "天": "days", "周": "weeks"}
_DAYS_AGO = {"今天": 0, "昨天": 1, "前天": 2}

#: A publication time later than the fetch by more than this is not one the portal could have
#: shown (clocks differ a little; a 2099 date is a bug or a placeholder).
FUTURE_TOLERANCE = timedelta(days=1)
#: Nothing on the portal predates this.
EARLIEST = datetime(1990, 1, 1, tzinfo=SITE_TZ)


class DateError(ValueError):
    """The text is not a date the portal could have meant."""


def parse_site_datetime(text: str, now: datetime, tz: tzinfo = SITE_TZ) -> datetime:
    """An aware datetime for what the page shows.

    Absolute forms ('2023-02-24 10:05', '2023年02月24日 10:05', ISO 8601 with an offset) go
    through python-dateutil; relative ones ('3小时前', '昨天 10:30', '刚刚') are resolved against
    ``now`` (the fetch time), and so are the parts an absolute form leaves out; a date without
    a year takes the year that keeps it in the past. Naive results are site-local time.
    Raises DateError rather than guessing.
    """
    raw = (text or "").strip()
    if not raw:
        raise DateError("empty date")
    if (plain := _plain(raw, tz)) is not None:  # the usual forms; they never depend on ``now``
        return plain
    local_now = now.astimezone(tz)
    if raw in _JUST_NOW:
        return local_now
    if match := _RELATIVE.match(raw):
        return local_now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if match := _RELATIVE_DAY.match(raw):
        day = (local_now - timedelta(days=_DAYS_AGO[match.group(1)])).date()
        hour, minute = map(int, (match.group(2) or "00:00").split(":"))
        try:
            return _local(datetime(day.year, day.month, day.day, hour, minute), tz)
        except ValueError as exc:  # 昨天 25:61
            raise DateError(f"unreadable date {text!r}") from exc
    year_missing = False
    if match := _CJK_DATE.search(raw):
        year_missing = match.group(1) is None
        year = match.group(1) or str(local_now.year)
        raw = f"{raw[: match.start()]}{year}-{match.group(2)}-{match.group(3)}{raw[match.end() :]}".strip()
    # What the text leaves out (a time of day, say) comes from the fetch day, not today.
    default = local_now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    try:
        if "T" in raw:
            parsed = dateutil_parser.isoparse(raw)
        else:
            parsed = dateutil_parser.parse(raw, yearfirst=True, default=default)
    except (ValueError, OverflowError) as exc:
        raise DateError(f"unreadable date {text!r}") from exc
    result = _local(parsed, tz) if parsed.tzinfo is None else parsed.astimezone(tz)
    if year_missing and result > local_now + timedelta(days=1):
        result = result.replace(year=result.year - 1)
    return result


@lru_cache(maxsize=8192)
def _plain(raw: str, tz: tzinfo) -> datetime | None:
    """'YYYY-MM-DD[ HH:MM]' as an aware datetime; None for any other text, and for one that is no
    calendar date (2023-13-45), which the general parser then judges like any other text.
    Cached: a listing's dates repeat, and datetimes are immutable."""
    if match := _PLAIN.fullmatch(raw):
        year, month, day, hour, minute = match.groups()
        try:
            return _local(datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0)), tz)
        except ValueError:
            return None
    return None


def parse_published(text: str, fetched_at: datetime, tz: tzinfo = SITE_TZ) -> datetime:
    """When an article (or listing entry) was published, as the page fetched at ``fetched_at``
    says; raises DateError for text that is not a date and for a date the portal cannot have
    meant (after the fetch, or before the portal existed)."""
    value = parse_site_datetime(text, fetched_at, tz)
    if value > fetched_at + FUTURE_TOLERANCE:
        raise DateError(f"date in the future {text!r}")
    if value < EARLIEST:
        raise DateError(f"date before {EARLIEST.year} {text!r}")
    return value


def _local(value: datetime, tz: tzinfo) -> datetime:
    return value.replace(tzinfo=tz)
