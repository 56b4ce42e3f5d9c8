"""Run the benchmark suite: ``python -m benchmarks [--pages N] [--articles N] [--only e2e,store,…]``.

Prints one table (each figure beside its baseline from the same run, their ratio, the target
and an informational PASS/MISS) and writes the JSON to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchmarks.common import POSTGRES_ADMIN_URL, REDIS_URL, Row

#: In the order they run. parse goes first: it times single milliseconds, and the others leave
#: the machine busy for a moment after them (exiting crawl processes and servers, files being
#: written back); right after e2e the seed page measured 3.0–3.3 ms against 1.7–2.2 ms alone.
BENCHMARKS = ("parse", "cli", "e2e", "store", "scale", "distributed", "tricks", "archive")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--pages", type=int, default=200, help="e2e: generated listing pages (×10 articles)")
    parser.add_argument("--articles", type=int, default=20_000, help="store: articles pushed through the pipelines")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated subset of: " + ",".join(BENCHMARKS)
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help=(
            "rounds per figure (default: e2e 2 rounds, store 1, scale 3 processes per size, parse 7 runs per page, "
            "distributed 1 round, tricks 3 crawls each way, cli 5 processes, archive 3 re-parses)"
        ),
    )
    parser.add_argument("--naive", type=int, default=2_000, help="store: articles given to the naive pipeline")
    parser.add_argument(
        "--scale-stored",
        default="2000,20000",
        help="scale: articles already stored, small,large (default 2000,20000)",
    )
    parser.add_argument("--scale-batch", type=int, default=2_000, help="scale: new articles stored per measurement")
    parser.add_argument(
        "--distributed-pages",
        type=int,
        default=100,
        help="distributed: generated listing pages (×10 articles) crawled by 1 and by 2 workers",
    )
    parser.add_argument("--postgres", default=POSTGRES_ADMIN_URL, help="PostgreSQL admin URL (a throwaway DB is made)")
    parser.add_argument("--redis", default=REDIS_URL, help="distributed: Redis URL (jobs' keys are deleted after)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--workdir", type=Path, help="keep the databases here (default: a temporary directory)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    try:
        small, large = (int(n) for n in args.scale_stored.split(","))
    except ValueError:
        parser.error("--scale-stored takes two numbers: SMALL,LARGE")
    args.scale_sizes = (small, large)
    for name in ("pages", "articles", "naive", "scale_batch", "distributed_pages"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run_one(name: str, args: argparse.Namespace, workdir: Path, log: Any) -> list[Row]:
    repeat = args.repeat
    if name == "e2e":
        from benchmarks import e2e

        return e2e.run(args.pages, repeat or 2, workdir, log=log)
    if name == "store":
        from benchmarks import store

        return store.run(args.articles, args.naive, repeat or 1, workdir, postgres_url=args.postgres, log=log)
    if name == "parse":
        from benchmarks import parse

        return parse.run(repeat or 7, log=log)
    if name == "scale":
        from benchmarks import scale

        small, large = args.scale_sizes
        return scale.run(small, large, args.scale_batch, repeat or 3, workdir, log=log)
    if name == "distributed":
        from benchmarks import distributed

        return distributed.run(
            args.distributed_pages, repeat or 1, workdir, postgres_url=args.postgres, redis_url=args.redis, log=log
        )
    if name == "cli":
        from benchmarks import cli

        return cli.run(repeat or 5, log=log)
    if name == "tricks":
        from benchmarks import tricks

        return tricks.run(args.pages, repeat or 3, workdir, log=log)
    if name == "archive":
        from benchmarks import archive

        return archive.run(args.pages, repeat or 3, workdir, log=log)
    raise ValueError(name)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms",):
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "µs":
        return f"{value:,.0f} µs"
    return f"{value:,.0f} {unit}"


def table(rows: list[Row]) -> str:
    body = [
        [
            row.benchmark,
            row.figure,
            fmt(row.value, row.unit),
            f"{fmt(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline is not None else "-",
            f"{row.ratio:.2f}×" if row.ratio is not None else "-",
            row.target or "-",
            row.status or "-",
            row.note,
        ]
        for row in rows
    ]
    headers = ["bench", "figure", "value", "baseline (same run)", "ratio", "target", "result", "note"]
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def git_state() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": git("status", "--short").splitlines()}


def cpu_steal_seconds() -> float | None:
    """Time the hypervisor gave this VM's CPUs to others (Linux /proc/stat), a hint at noise."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)  # the workers are run as `python -m benchmarks.…` from the project root
    log = (lambda *_: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    steal_before = cpu_steal_seconds()
    started = time.perf_counter()
    began = datetime.now(UTC)
    rows: list[Row] = []
    durations: dict[str, float] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fxcrawl-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in BENCHMARKS:
            if name not in args.only:
                continue
            log(f"{name} …")
            t0 = time.perf_counter()
            try:
                rows.extend(run_one(name, args, workdir, log))
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                errors[name] = traceback.format_exc()
                rows.append(Row(name, "(failed)", None, "", status="ERROR", note=f"{type(exc).__name__}: {exc}"[:200]))
                log(errors[name])
            durations[name] = time.perf_counter() - t0
            log(f"{name}: {durations[name]:.1f} s")
    total = time.perf_counter() - started
    steal_after = cpu_steal_seconds()
    steal = steal_after - steal_before if steal_before is not None and steal_after is not None else None
    state = git_state()

    print()
    print(
        f"fxcrawl benchmarks  {began:%Y-%m-%d %H:%M} UTC  git {state['commit']}"
        f"{' (+' + str(len(state['dirty'])) + ' uncommitted)' if state['dirty'] else ''}  "
        f"{os.cpu_count()} CPUs  Python {platform.python_version()}"
    )
    print(table(rows))
    print(
        f"\nPASS/MISS are informational. Total {total:.0f} s ("
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items())
        + f"). JSON: {args.out}"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "started_at": began.isoformat(),
        "total_seconds": total,
        "durations": durations,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_steal_seconds": steal,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git": state,
        "args": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("postgres", "redis")  # URLs may hold passwords
        },
    }
    args.out.write_text(
        json.dumps({"meta": meta, "rows": [row.as_dict() for row in rows], "errors": errors}, indent=2, default=str)
        + "\n",
        encoding="utf-8",
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
