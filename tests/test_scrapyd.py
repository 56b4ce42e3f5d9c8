"""Deployed to a real Scrapyd as its users deploy: `scrapyd-deploy` builds the egg and uploads it,
`schedule.json` starts a `search` job against the fixture server, and page 953's articles are in
the job's SQLite file; a job whose database is at another schema ends in one ERROR line.

Scrapyd runs the project from its zipped egg: the settings module comes from the egg's `scrapy`
entry point and the migrations are copied out of the archive to build the job's database.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
from conftest import IN_CI, assert_page_953_stored, copy_project
from sqlalchemy import text

from replay.server import ReplayServer
from storage.db import Database

pytestmark = pytest.mark.timeout(600)

BIN = Path(sys.executable).parent
#: What the jobs must not take from the machine running the tests.
_SCRUBBED = ("DATABASE_URL", "FXCRAWL_CONFIG", "FXCRAWL_SPOOL_DIR", "FXCRAWL_BASE_URL", "SCRAPY_SETTINGS_MODULE")


@dataclass
class Scrapyd:
    url: str
    folder: Path

    def get(self, path: str, **query: str) -> dict:
        with urlopen(f"{self.url}{path}?{urlencode(query)}", timeout=30) as answer:
            return json.load(answer)

    def schedule(self, *settings: str, **arguments: str) -> str:
        data = [("project", "fxcrawl"), ("spider", "search"), *arguments.items()]
        data += [("setting", setting) for setting in settings]
        with urlopen(f"{self.url}schedule.json", data=urlencode(data).encode(), timeout=30) as answer:
            answered = json.load(answer)
        assert answered["status"] == "ok", answered
        return answered["jobid"]

    def wait(self, job: str, timeout: float = 300) -> str:
        """The job's log once it has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished = self.get("listjobs.json", project="fxcrawl")["finished"]
            if any(entry["id"] == job for entry in finished):
                return (self.folder / "logs" / "fxcrawl" / "search" / f"{job}.log").read_text(encoding="utf-8")
            time.sleep(0.5)
        raise AssertionError(f"job {job} did not finish in {timeout}s; scrapyd said:\n{self.log()}")

    def log(self) -> str:
        return (self.folder / "scrapyd.out").read_text(encoding="utf-8", errors="replace")[-5000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapyd]:
    """A Scrapyd on 127.0.0.1 with the project deployed by scrapyd-deploy."""
    if not (BIN / "scrapyd").exists() or not (BIN / "scrapyd-deploy").exists():
        message = "scrapyd and scrapyd-client are not installed (the dev extra has them: make install)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("scrapyd")
    folder = tmp / "scrapyd"
    folder.mkdir()
    port = free_port()
    (folder / "scrapyd.conf").write_text(
        f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {port}\npoll_interval = 0.5\nmax_proc = 2\n"
        "eggs_dir = eggs\nlogs_dir = logs\ndbs_dir = dbs\nitems_dir =\n"
    )
    environment = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    environment["HOME"] = str(tmp)  # no ~/.scrapyd.conf or ~/.scrapy.cfg of the machine's
    with (folder / "scrapyd.out").open("w") as out:
        server = subprocess.Popen([BIN / "scrapyd"], cwd=folder, env=environment, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urlopen(f"{url}daemonstatus.json", timeout=5) as answer:
                    assert json.load(answer)["status"] == "ok"
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"scrapyd did not start:\n{(folder / 'scrapyd.out').read_text()}") from None
                time.sleep(0.3)
        project = copy_project(tmp / "project")
        config_home = tmp / "config"
        config_home.mkdir()
        (config_home / "scrapy.cfg").write_text(f"[deploy:test]\nurl = {url}\nproject = fxcrawl\n")
        deployed = subprocess.run(
            [BIN / "scrapyd-deploy", "test", "--version", "r1"],
            cwd=project,
            env={**environment, "XDG_CONFIG_HOME": str(config_home)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        answer = json.loads(deployed.stdout[deployed.stdout.index("{") :])
        assert answer["status"] == "ok" and answer["spiders"] >= 2, answer
        yield Scrapyd(url, folder)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder / "eggs", ignore_errors=True)


@pytest.fixture(scope="module")
def fixture_site() -> Iterator[str]:
    with ReplayServer() as server:
        yield server.base_url


def job_settings(database_url: str, base_url: str, spool: Path) -> list[str]:
    """Point the job at the fixture server (politeness off, as `--replay` does) and at a database."""
    return [
        f"FXCRAWL_BASE_URL={base_url}",
        f"FXCRAWL_DATABASE_URL={database_url}",
        f"FXCRAWL_SPOOL_DIR={spool}",
        "DOWNLOAD_DELAY=0",
        "AUTOTHROTTLE_ENABLED=False",
    ]


def test_the_deployed_egg_lists_the_spiders(scrapyd: Scrapyd) -> None:
    from scrapy.spiderloader import SpiderLoader
    from scrapy.utils.project import get_project_settings

    project = sorted(SpiderLoader.from_settings(get_project_settings()).list())
    assert "search" in project and "latest" in project
    assert scrapyd.get("listspiders.json", project="fxcrawl")["spiders"] == project


def test_a_scheduled_search_job_stores_page_953(scrapyd: Scrapyd, fixture_site: str, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'scrapyd.db'}"
    job = scrapyd.schedule(*job_settings(database_url, fixture_site, tmp_path / "spool"), keyword="现代", pages="953")
    log = scrapyd.wait(job)
    assert "Traceback" not in log and " ERROR: " not in log, log[-5000:]
    assert "Spider closed (finished)" in log
    assert_page_953_stored(database_url)


@pytest.mark.parametrize(
    ("version", "why"),
    [("f00d", "is newer than this fxcrawl knows"), ("0004_news_identity", "run `fxcrawl db upgrade`")],
    ids=["ahead", "behind"],
)
def test_a_job_whose_database_is_at_another_schema_ends_in_one_error_line(
    scrapyd: Scrapyd, fixture_site: str, tmp_path: Path, version: str, why: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'other.db'}"
    database = Database(database_url).prepare()
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    database.dispose()
    job = scrapyd.schedule(*job_settings(database_url, fixture_site, tmp_path / "spool"), keyword="现代", pages="953")
    log = scrapyd.wait(job)
    errors = [line for line in log.splitlines() if " ERROR: " in line or " CRITICAL: " in line]
    assert len(errors) == 1 and "cannot crawl into the database" in errors[0] and why in errors[0], log[-5000:]
    assert "Traceback" not in log
    assert "Spider closed (database_unusable)" in log
    # the job ran the egg's code: its migration scripts (which tell a version behind from one
    # ahead) were read out of the zipped package; an empty database needs none of them
    assert "migration scripts copied out of the zipped package" in log
