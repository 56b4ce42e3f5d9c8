"""The wheel, installed into a fresh virtualenv as a user installs it: `fxcrawl db upgrade` and a
replay crawl work from a folder outside the checkout, with the migrations and the offline site
read from the installed package.

The virtualenv gets the wheel's dependencies at the versions this environment runs (a
constraints file from `pip freeze`), so pip takes them from its cache rather than resolve anew.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import assert_page_953_stored, copy_project

from storage.migrations import HEAD_REVISION

pytestmark = pytest.mark.timeout(900)


def run(*command: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for name in ("DATABASE_URL", "FXCRAWL_CONFIG", "FXCRAWL_SPOOL_DIR", "FXCRAWL_BASE_URL"):
        environment.pop(name, None)
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (no system site-packages) with the project's wheel installed; its bin/."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = copy_project(tmp / "source")
    run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "-w", tmp / "dist", cwd=tmp)
    (wheel,) = (tmp / "dist").glob("fxcrawl-*.whl")
    frozen = run(sys.executable, "-m", "pip", "freeze", "--exclude-editable", cwd=tmp).stdout
    (tmp / "constraints.txt").write_text(
        "\n".join(line for line in frozen.splitlines() if "==" in line and not line.startswith("fxcrawl")) + "\n"
    )
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(tmp / "venv")
    bin_dir = tmp / "venv" / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "-c", tmp / "constraints.txt", wheel, cwd=tmp)
    return bin_dir


def test_the_wheel_carries_the_migrations_the_offline_site_and_the_scrapy_entry_point(installed: Path) -> None:
    probe = (
        "import importlib.metadata as m, storage.migrations as s, replay.server as r\n"
        "print(s.script_location()); print(r.FIXTURE_SITE)\n"
        "print([e.value for e in m.entry_points(group='scrapy') if e.name == 'settings'])\n"
    )
    location, site, entry = run(installed / "python", "-c", probe, cwd=installed).stdout.splitlines()
    venv_root = str(installed.parent)
    assert location.startswith(venv_root) and (Path(location) / "versions" / "0001_initial_schema.py").is_file()
    assert site.startswith(venv_root) and (Path(site) / "search" / "现代" / "article" / "page-953.html").is_file()
    assert not list(Path(site).rglob("*.expected.json"))  # the golden files are test data
    assert entry == "['crawler.settings']"


def test_the_installed_command_migrates_and_crawls_from_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'installed.db'}"
    upgraded = run(installed / "fxcrawl", "db", "upgrade", "--db", db, cwd=tmp_path)
    assert upgraded.stdout.strip().endswith(f"(empty) -> {HEAD_REVISION}")
    run(installed / "fxcrawl", "db", "current", "--db", db, cwd=tmp_path)
    crawled = run(
        installed / "fxcrawl",
        "crawl",
        "search",
        "--keyword",
        "现代",
        "--pages",
        "953",
        "--replay",
        "--log-level",
        "WARNING",
        "--db",
        db,
        cwd=tmp_path,
    )
    assert "Traceback" not in crawled.stderr
    assert_page_953_stored(db)
