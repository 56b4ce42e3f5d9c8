"""How commands print: one JSON array, or an aligned table that measures CJK characters as two columns."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def fit(text: Any, width: int) -> str:
    """Truncate to a display width (CJK characters are two columns wide)."""
    from wcwidth import wcswidth

    text = "" if text is None else str(text)
    if wcswidth(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        w = max(wcswidth(char), 0)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, int]], empty: str) -> None:
    """Rows as a table of (key, header, width) columns, or ``empty`` when there are none. On a
    terminal the widest columns give way until the table fits its width; piped, nothing is cut
    beyond each column's own width (a script sees the same table on any terminal)."""
    from tabulate import tabulate

    if not rows:
        print(empty)
        return
    widths = fit_widths([width for _, _, width in columns], terminal_width())
    body = [[fit(row.get(key), width) for (key, _, _), width in zip(columns, widths, strict=True)] for row in rows]
    print(tabulate(body, headers=[header for _, header, _ in columns], tablefmt="simple", disable_numparse=True))


#: The narrowest a column is squeezed to on a narrow terminal.
MIN_COLUMN = 6


def terminal_width() -> int | None:
    """The terminal's width when standard output is one, else None (no fitting)."""
    import shutil

    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def fit_widths(widths: Sequence[int], total: int | None, gap: int = 2) -> list[int]:
    """Column widths that fit ``total`` display columns (with ``gap`` between columns): the widest
    column gives up a column at a time, none below MIN_COLUMN."""
    out = list(widths)
    if total is None:
        return out
    while sum(out) + gap * (len(out) - 1) > total:
        widest = max(range(len(out)), key=lambda i: out[i])
        if out[widest] <= MIN_COLUMN:
            break
        out[widest] -= 1
    return out


def footer(shown: int, offset: int, total: int, noun: str, zone: str | None = None) -> None:
    """One line on standard error under a listing: which rows of how many, how to see the next
    page, and the time zone of the table's times (standard output stays the bare table)."""
    if shown:
        line = f"{noun} {offset + 1:,}–{offset + shown:,} of {total:,}"
    else:
        line = f"no {noun} at --offset {offset:,} (of {total:,})" if total else f"0 {noun}"
    if offset + shown < total:
        line += f"; next page: --offset {offset + shown}"
    if zone:
        line += f"; times in {zone}"
    print(line, file=sys.stderr)


def minutes(timestamp: str | None, length: int = 16, zone: str | None = None) -> str:
    """An ISO timestamp as the table shows it: ``2023-02-24 10:05``, in ``zone`` when given
    (the stored timestamps are in the site's +08:00)."""
    if timestamp and zone:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        timestamp = datetime.fromisoformat(timestamp).astimezone(ZoneInfo(zone)).isoformat()
    return (timestamp or "")[:length].replace("T", " ")
