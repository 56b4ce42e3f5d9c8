"""Prometheus metrics: a running scheduler serves /metrics, a one-shot crawl writes the textfile,
and every series is documented in docs/operations.md."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import FXCRAWL, ROOT
from prometheus_client.parser import text_string_to_metric_families

from fxcrawl.metrics import METRICS, StoreCollector, registry_with

#: Series only `workers start` serves.
WORKERS_ONLY = {"fxcrawl_queue_requests"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample by name, then by its labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        found.setdefault(family.name + ("_total" if family.type == "counter" else ""), {})
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_a_running_scheduler_serves_the_documented_series(tmp_path: Path) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(
        '[jobs.xiandai]\ninterval = "2s"\nkeyword = "现代"\npages = "1-3"\nreplay = true\nreplay_generate = 3\n'
        'log_level = "WARNING"\n',
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    port = free_port()
    scheduler = subprocess.Popen(
        [*FXCRAWL, "schedule", "run", "--file", str(path), "--db", db, "--metrics-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        while time.monotonic() < deadline:
            text = scrape(port)
            found = samples(text) if text else {}
            if found.get("fxcrawl_job_last_run_healthy") and found.get("fxcrawl_scheduler_job_runs_total"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the job never showed up in /metrics: {sorted(found)}")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        _, err = scheduler.communicate(timeout=120)
    assert scheduler.returncode == 0, err[-2000:]
    job = (("job", "xiandai"),)
    documented = {name for name, _, _, _ in METRICS} - WORKERS_ONLY
    assert documented <= set(found), documented - set(found)
    assert found["fxcrawl_database_up"][()] == 1
    assert found["fxcrawl_job_last_run_healthy"][job] == 1
    assert found["fxcrawl_pages_total"][job] > 0 and found["fxcrawl_job_last_run_pages"][job] > 0
    assert found["fxcrawl_items_total"][(("job", "xiandai"), ("outcome", "new"))] > 0
    assert found["fxcrawl_runs_total"][(("health", "healthy"), ("job", "xiandai"))] >= 1
    now = time.time()
    assert now - 120 < found["fxcrawl_job_last_run_timestamp_seconds"][job] <= now
    last_run = found["fxcrawl_job_last_run_timestamp_seconds"][job]
    assert found["fxcrawl_job_last_success_timestamp_seconds"][job] == last_run
    assert 0 < found["fxcrawl_job_last_run_duration_seconds"][job] < 120
    assert found["fxcrawl_job_next_run_timestamp_seconds"][job] > now - 5
    assert found["fxcrawl_scheduler_job_runs_total"][(("job", "xiandai"), ("outcome", "ok"))] >= 1
    assert found["fxcrawl_frontier_owed"][()] >= 0 and found["fxcrawl_spool_items"][()] == 0
    assert scrape(port) is None  # stopped with the scheduler


def test_a_one_shot_crawl_writes_the_textfile(tmp_path: Path) -> None:
    textfile = tmp_path / "fxcrawl.prom"
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    done = subprocess.run(
        [
            *FXCRAWL,
            "crawl",
            "search",
            "--keyword",
            "现代",
            "--pages",
            "1-2",
            "--replay",
            "--replay-generate",
            "2",
            "--job",
            "textfile",
            "--db",
            db,
            "--log-level",
            "WARNING",
            "--metrics-textfile",
            str(textfile),
            "-s",
            f"FXCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = samples(textfile.read_text(encoding="utf-8"))
    job = (("job", "textfile"),)
    assert found["fxcrawl_job_last_run_healthy"][job] == 1
    assert found["fxcrawl_pages_total"][job] == found["fxcrawl_job_last_run_pages"][job] > 0
    assert found["fxcrawl_items_total"][(("job", "textfile"), ("outcome", "new"))] > 0
    assert found["fxcrawl_spool_items"][()] == 0
    assert not list(tmp_path.glob("fxcrawl.prom.*"))  # written through a temporary file, renamed
    refused = subprocess.run(
        [*FXCRAWL, "crawl", "search", "--db", db, "--metrics-textfile", str(tmp_path / "missing" / "x.prom")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "its folder does not exist" in refused.stderr


def test_a_database_that_does_not_answer_is_a_series_not_a_failed_scrape(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    registry = registry_with(StoreCollector(f"sqlite:///{tmp_path / 'missing' / 'fx.db'}", tmp_path / "spool"))
    found = samples(generate_latest(registry).decode("utf-8"))
    assert found["fxcrawl_database_up"][()] == 0
    assert "fxcrawl_pages_total" not in found
    assert not (tmp_path / "missing").exists()  # a scrape never makes a database


def test_every_series_is_in_the_readmes_table() -> None:
    readme = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = readme.split("| metric | type | labels | meaning |", 1)[1].split("\n\n", 1)[0]
    for name, kind, labels, _ in METRICS:
        row = next((line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"{name} is not in the metrics table of docs/operations.md"
        assert f"| {kind} |" in row, name
        for label in filter(None, labels.split(", ")):
            assert f"`{label}`" in row, (name, label)


def test_the_grafana_dashboard_reads_only_documented_series() -> None:
    import json
    import re

    dashboard = json.loads((ROOT / "docs" / "grafana-fxcrawl.json").read_text(encoding="utf-8"))
    documented = {name for name, _, _, _ in METRICS}
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"fxcrawl_[a-z_]+", target["expr"])
    }
    assert used and used <= documented, used - documented


def test_a_metrics_port_in_use_is_refused_before_any_job_runs(tmp_path: Path) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text('[jobs.a]\ninterval = "1s"\nkeyword = "现代"\nreplay = true\n', encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'fx.db'}"
        done = subprocess.run(
            [*FXCRAWL, "schedule", "run", "--file", str(path), "--db", db, "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1 and f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "job a: starting" not in done.stderr
