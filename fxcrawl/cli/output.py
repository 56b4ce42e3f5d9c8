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
    """Rows as a table of (key, header, width) columns, or ``empty`` when there are none."""
    from tabulate import tabulate

    if not rows:
        print(empty)
        return
    body = [[fit(row.get(key), width) for key, _, width in columns] for row in rows]
    print(tabulate(body, headers=[header for _, header, _ in columns], tablefmt="simple", disable_numparse=True))


def minutes(timestamp: str | None, length: int = 16) -> str:
    """An ISO timestamp as the table shows it: ``2023-02-24 10:05``."""
    return (timestamp or "")[:length].replace("T", " ")
