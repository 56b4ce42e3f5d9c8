"""Was a run healthy? Judged against the same job's recent runs, so a quiet site is not an
outage but a parser that silently stopped finding anything is."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.models import CrawlRun
from storage.settings import Settings


@dataclass(frozen=True)
class HealthPolicy:
    max_error_rate: float = 0.2
    min_hits_ratio: float = 0.5
    max_silence: timedelta = timedelta(days=2)
    history: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthPolicy:
        return cls(
            max_error_rate=settings.getfloat("FXCRAWL_HEALTH_MAX_ERROR_RATE"),
            min_hits_ratio=settings.getfloat("FXCRAWL_HEALTH_MIN_HITS_RATIO"),
            max_silence=timedelta(seconds=settings.getfloat("FXCRAWL_HEALTH_MAX_SILENCE")),
            history=settings.getint("FXCRAWL_HEALTH_HISTORY"),
        )


def assess(
    run: CrawlRun,
    recent: Sequence[CrawlRun],
    last_new: datetime | None,
    first_run: datetime | None,
    policy: HealthPolicy,
    now: datetime,
) -> list[str]:
    """Reasons the run is unhealthy (empty: healthy).

    ``recent``: the job's previous finished runs, newest first; ``last_new``: when the job last
    stored a new article before this run; ``first_run``: when the job first ran.
    """
    reasons = []
    if run.finish_reason != "finished":
        reasons.append(f"the crawl did not finish ({run.finish_reason})")
    attempts = run.pages + run.rejected
    problems = run.errors + run.rejected
    if problems and problems / max(attempts, 1) > policy.max_error_rate:
        reasons.append(
            f"{run.errors} errors and {run.rejected} rejects for {attempts} pages: over the "
            f"{policy.max_error_rate:.0%} threshold"
        )
    reasons.extend(drift_reasons(run.stats or {}))
    if run.spooled:
        reasons.append(f"{run.spooled} items could not be stored (spooled)")
    if len(recent) >= 3:
        median = statistics.median(r.hits for r in recent)
        if median and run.hits < policy.min_hits_ratio * median:
            reasons.append(f"{run.hits} listing results, far below the recent median of {median:g}")
    if run.articles_new == 0:
        since = last_new or first_run
        if since is not None and now - since > policy.max_silence:
            what = "since" if last_new else "in any run since the first on"
            reasons.append(f"no new article {what} {since:%Y-%m-%d %H:%M} UTC (over {policy.max_silence})")
    return reasons


#: How the stats name markup drift (crawler/spiders/portal.py), and what each means to a reader.
DRIFT_KINDS = {
    "json_missing": "page data (__NEXT_DATA__) missing or not in the expected shape; read from the HTML",
    "disagree": "the page data and the HTML disagree",
    "changed": "neither the page data nor the HTML gave a record: the markup changed",
}


def drift_reasons(stats: dict[str, Any]) -> list[str]:
    """One reason per page kind and kind of drift the run met (the site no longer matches its
    description): the users' cue to run `fxcrawl check-live` and update crawler/site.py."""
    reasons = []
    for key, value in sorted(stats.items()):
        parts = key.split("/")
        if len(parts) == 4 and parts[:2] == ["fxcrawl", "markup"] and parts[2] in DRIFT_KINDS and value:
            reasons.append(f"{value} {parts[3]} page(s): {DRIFT_KINDS[parts[2]]}")
    return reasons


def drift_urls(stats: dict[str, Any]) -> dict[str, list[str]]:
    """The URLs a run kept for each drift counter (at most a few each)."""
    return {
        key.removesuffix("/urls"): list(value)
        for key, value in sorted(stats.items())
        if key.startswith("fxcrawl/markup/") and key.endswith("/urls") and isinstance(value, list)
    }
