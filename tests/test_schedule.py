"""The scheduler: schedule files, `schedule list|once|run`, one run per job, SIGTERM."""

import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FXCRAWL
from sqlalchemy import func, select

from fx168.site import SITE_TZ
from fxcrawl.cli import main
from fxcrawl.schedule import ScheduleError, load_schedule
from storage.db import Database
from storage.models import Article, CrawlRun


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedule.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_jobs_load_with_cron_or_interval_and_crawl_options(tmp_path: Path) -> None:
    jobs = load_schedule(
        write(
            tmp_path,
            """
[jobs.xiandai]
cron = "*/30 * * * *"
keyword = "现代"
max_pages = 3

[jobs.gold]
interval = "6h"
keyword = "黄金"
replay = true
""",
        )
    )
    assert [job.name for job in jobs] == ["xiandai", "gold"]
    now = datetime(2026, 11, 28, 10, 7, tzinfo=SITE_TZ)
    assert jobs[0].next_run(now) == datetime(2026, 11, 28, 10, 30, tzinfo=SITE_TZ)
    assert jobs[1].trigger.interval.total_seconds() == 6 * 3600
    soon = datetime.now(SITE_TZ)
    next_run = jobs[1].next_run(soon)
    assert next_run is not None and 0 < (next_run - soon).total_seconds() <= 6 * 3600
    command = jobs[0].command()
    assert command[3:] == ["crawl", "search", "--job", "xiandai", "--keyword", "现代", "--max-pages", "3"]
    assert not any("sqlite" in part or "postgresql" in part for part in command)  # no URL on a command line
    assert "--replay" in jobs[1].command()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[jobs.a]\nkeyword = 'x'\n", "exactly one of cron"),
        ("[jobs.a]\ncron = '* * * * *'\ninterval = '1m'\n", "exactly one of cron"),
        ("[jobs.a]\ninterval = 'soon'\n", "bad interval 'soon'"),
        ("[jobs.a]\ncron = '61 * * * *'\n", "bad cron expression"),
        ("[jobs.a]\ninterval = '5m'\nkeywrd = 'x'\n", "unknown option(s) keywrd"),
        ("title = 'no jobs'\n", "has no [jobs.NAME] tables"),
        ("[jobs.a\n", "schedule.toml"),
    ],
)
def test_a_bad_schedule_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_schedule(write(tmp_path, text))


def test_schedule_list_shows_next_run_times(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "[jobs.xiandai]\ncron = '0 9 * * *'\nkeyword = '现代'\n")
    assert main(["schedule", "list", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "xiandai" in out and " 09:00 +0800" in out
    assert main(["schedule", "list", "--file", str(tmp_path / "missing.toml")]) == 1


SLOW_JOB = """
[jobs.xiandai]
interval = "1s"
keyword = "现代"
pages = "1-20"
replay = true
replay_generate = 20
replay_delay = 0.05
log_level = "WARNING"
"""


def test_two_schedule_once_calls_for_one_job_run_it_once(tmp_path: Path) -> None:
    path = write(tmp_path, SLOW_JOB)
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    Database(db).prepare().dispose()
    command = [*FXCRAWL, "schedule", "once", "xiandai", "--file", str(path), "--db", db]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(2)
    second = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 3  # skipped, and says so to its caller (EXIT_SKIPPED)
    assert "skipped: job 'xiandai' is already running (pid" in second.stderr
    database = Database(db)
    with database.session() as session:
        runs = session.scalars(select(CrawlRun)).all()
    database.dispose()
    assert [(run.job, run.finish_reason) for run in runs] == [("xiandai", "finished")]


def test_sigterm_stops_the_scheduler_after_the_running_crawl_has_flushed(tmp_path: Path) -> None:
    # slow enough that the signal always lands mid-crawl: the listing walk alone takes 30 × 0.3 s
    path = write(
        tmp_path,
        SLOW_JOB.replace("replay_generate = 20", "replay_generate = 30")
        .replace('pages = "1-20"', 'pages = "1-30"')
        .replace("replay_delay = 0.05", "replay_delay = 0.3"),
    )
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    scheduler = subprocess.Popen(
        [*FXCRAWL, "schedule", "run", "--file", str(path), "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    database = Database(db)
    deadline = time.monotonic() + 60
    started = False
    while not started and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            with database.session() as session:
                started = (session.scalar(select(func.count(CrawlRun.id))) or 0) > 0
        except Exception:  # the database is being created
            continue
    assert started, "no crawl started"
    time.sleep(3)  # mid-crawl
    scheduler.send_signal(signal.SIGTERM)
    _, err = scheduler.communicate(timeout=120)
    assert scheduler.returncode == 0, err[-2000:]
    with database.session() as session:
        runs = session.scalars(select(CrawlRun)).all()
        stored = session.scalar(select(func.count(Article.id)))
    database.dispose()
    assert len(runs) == 1  # one crawl at a time; none started after the signal
    run = runs[0]
    assert run.finish_reason == "shutdown"
    assert stored is not None
    assert 0 < stored == run.stats["fxcrawl/pages/detail"] < 300  # flushed: every parsed article is stored


def test_the_operations_pages_example_schedule_loads_with_its_latest_job(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n# schedule.toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "schedule.toml"
    path.write_text(example, encoding="utf-8")
    jobs = {job.name: job for job in load_schedule(path)}
    assert jobs["latest"].spider == "latest" and "interval[0:10:00]" in jobs["latest"].describe_trigger
    assert jobs["latest"].command()[3:6] == ["crawl", "latest", "--job"]
    assert "--channels" in jobs["latest"].command()
    path.write_text('[jobs.x]\nspider = "latest"\ninterval = "10m"\nkeyword = "现代"\n', encoding="utf-8")
    with pytest.raises(ScheduleError, match="unknown option"):
        load_schedule(path)
