"""Progress of long work as one line: done of discovered, items new / updated / rejected, rate and
time left where it can be known.

Pure (no Scrapy, no terminal): the crawl's progress extension (crawler/progress.py), the
combined line of `fxcrawl workers start`, and any other long job — a re-parse of the store, a
generator — build a ``Progress`` and print ``format_progress(progress)`` however they show it.
It lives in the store's floor because that is the lowest floor every one of those may import
(the layers contract: a re-parse in ``fxcrawl/`` or in ``storage/`` can both reach it; the
offline site, which may import only ``fx168``, has no long work of its own).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    """A snapshot of long work. ``discovered`` None: the total is not known (no ETA)."""

    done: int
    discovered: int | None = None
    new: int = 0
    updated: int = 0
    rejected: int = 0
    errors: int = 0
    #: Seconds since the work started, and the recent rate (units a second; None: not measured yet).
    elapsed: float = 0.0
    rate: float | None = None
    unit: str = "pages"
    label: str = ""

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], **fields: Any) -> Progress:
        """A snapshot whose outcomes are run counts under the run ledger's names (storage.runs)."""
        return cls(
            new=counts["articles_new"],
            updated=counts["articles_updated"],
            rejected=counts["rejected"],
            errors=counts["errors"],
            **fields,
        )

    @property
    def remaining(self) -> int | None:
        return None if self.discovered is None else max(0, self.discovered - self.done)

    @property
    def eta(self) -> float | None:
        """Seconds left at the recent rate, when the total and a rate are known."""
        remaining = self.remaining
        if remaining is None or not self.rate or self.rate <= 0:
            return None
        return remaining / self.rate


def duration(seconds: float) -> str:
    """``0:07``, ``12:40``, ``3:05:09``: minutes and seconds, hours when there are some."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_progress(progress: Progress) -> str:
    """One line, e.g. ``search:现代 120/340 pages (35%) · new 80 · updated 3 · rejected 1 · 4.2 pages/s · ETA 0:52``."""
    if progress.discovered is None:
        count = f"{progress.done:,} {progress.unit}"
    else:
        total = max(progress.discovered, progress.done)
        share = f" ({progress.done / total:.0%})" if total else ""
        count = f"{progress.done:,}/{total:,} {progress.unit}{share}"
    parts = [f"{progress.label} {count}" if progress.label else count]
    parts.append(f"new {progress.new:,}")
    parts.append(f"updated {progress.updated:,}")
    parts.append(f"rejected {progress.rejected:,}")
    if progress.errors:
        parts.append(f"errors {progress.errors:,}")
    parts.append(f"{progress.rate:.1f} {progress.unit}/s" if progress.rate is not None else f"… {progress.unit}/s")
    eta = progress.eta
    if eta is not None:
        parts.append(f"ETA {duration(eta)}")
    parts.append(f"elapsed {duration(progress.elapsed)}")
    return " · ".join(parts)


class RateMeter:
    """Units a second over the last ``window`` seconds (a crawl's pace changes as it goes)."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, done: int) -> float | None:
        """Add a sample and return the rate since the oldest one in the window (None: one sample)."""
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        first_at, first_done = self.samples[0]
        if now - first_at <= 0:
            return None
        return max(0.0, (done - first_done) / (now - first_at))
