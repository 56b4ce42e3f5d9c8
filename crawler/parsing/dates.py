"""Dates as the portal writes them, read as Asia/Shanghai wall-clock time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser

SITE_TZ = ZoneInfo("Asia/Shanghai")

_CJK_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_RELATIVE = re.compile(r"^(\d+)\s*(秒|分钟|小时|天)前$")
_RELATIVE_DAY = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}:\d{2})?$")
_UNITS = {"秒": "seconds", "分钟": "minutes", "小时": "hours", "天": "days"}
_DAYS_AGO = {"今天": 0, "昨天": 1, "前天": 2}


class DateError(ValueError):
    """The text is not a date the portal could have meant."""


def parse_site_datetime(text: str, now: datetime, tz: tzinfo = SITE_TZ) -> datetime:
    """An aware datetime for what the page shows.

    Absolute forms ('2023-02-24 10:05', '2023年02月24日 10:05', ISO 8601 with an offset) go
    through python-dateutil; relative ones ('3小时前', '昨天 10:30') are resolved against
    ``now`` (the fetch time); a date without a year takes the year that keeps it in the past.
    Naive results are site-local time. Raises DateError rather than guessing.
    """
    raw = (text or "").strip()
    if not raw:
        raise DateError("empty date")
    local_now = now.astimezone(tz)
    if match := _RELATIVE.match(raw):
        return local_now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if match := _RELATIVE_DAY.match(raw):
        day = (local_now - timedelta(days=_DAYS_AGO[match.group(1)])).date()
        hour, minute = map(int, (match.group(2) or "00:00").split(":"))
        return _local(datetime(day.year, day.month, day.day, hour, minute), tz)
    year_missing = False
    if match := _CJK_DATE.search(raw):
        year_missing = match.group(1) is None
        year = match.group(1) or str(local_now.year)
        raw = f"{raw[: match.start()]}{year}-{match.group(2)}-{match.group(3)}{raw[match.end() :]}".strip()
    try:
        parsed = dateutil_parser.isoparse(raw) if "T" in raw else dateutil_parser.parse(raw, yearfirst=True)
    except (ValueError, OverflowError) as exc:
        raise DateError(f"unreadable date {text!r}") from exc
    result = _local(parsed, tz) if parsed.tzinfo is None else parsed.astimezone(tz)
    if year_missing and result > local_now + timedelta(days=1):
        result = result.replace(year=result.year - 1)
    return result


def _local(value: datetime, tz: tzinfo) -> datetime:
    return value.replace(tzinfo=tz)
