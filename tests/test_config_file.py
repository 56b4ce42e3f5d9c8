"""The configuration file (crawler/config.py): flags over the environment over the file over the
defaults, for the fxcrawl command and for plain `scrapy` (hence Scrapyd) alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crawler import config
from crawler import settings as project_settings
from fxcrawl import cli
from fxcrawl.run import project_settings_with

ROOT = Path(__file__).resolve().parents[1]

FILE = """
[database]
url = "sqlite:///stores/file.db"
[redis]
url = "redis://127.0.0.1:6379/7"
[archive]
dir = "archive"
[spool]
dir = "/var/tmp/fxcrawl-spool"
[site]
base_url = "http://127.0.0.1:8168"
delay = 2
user_agent = "fxcrawl-test/1"
concurrency = 2
autothrottle = false
[settings]
LOG_LEVEL = "WARNING"
"""


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration from the machine; set (to nothing) so whatever a test sets is undone."""
    for name in (config.CONFIG_ENV, *(key.env for key in config.KEYS if key.env)):
        monkeypatch.setenv(name, "")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def config_file(clean_environment: Path) -> Path:
    path = clean_environment / "conf" / "fxcrawl.toml"
    path.parent.mkdir()
    path.write_text(FILE, encoding="utf-8")
    return path


def test_the_file_gives_every_setting_it_names(config_file: Path) -> None:
    loaded = config.load(config_file)
    folder = config_file.parent
    assert loaded.settings == {
        "FXCRAWL_DATABASE_URL": f"sqlite:///{folder / 'stores' / 'file.db'}",  # relative to the file
        "FXCRAWL_REDIS_URL": "redis://127.0.0.1:6379/7",
        "FXCRAWL_ARCHIVE_DIR": str(folder / "archive"),
        "FXCRAWL_SPOOL_DIR": "/var/tmp/fxcrawl-spool",
        "FXCRAWL_BASE_URL": "http://127.0.0.1:8168",
        "DOWNLOAD_DELAY": 2.0,
        "USER_AGENT": "fxcrawl-test/1",
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "AUTOTHROTTLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }


def test_the_file_is_found_by_flag_then_environment_then_working_directory(
    config_file: Path, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.load().file is None  # nothing named, no fxcrawl.toml here
    (clean_environment / "fxcrawl.toml").write_text('[site]\nbase_url = "http://cwd.example"\n')
    assert config.load().get("FXCRAWL_BASE_URL") == "http://cwd.example"
    monkeypatch.setenv(config.CONFIG_ENV, str(config_file))
    assert config.load().get("FXCRAWL_BASE_URL") == "http://127.0.0.1:8168"
    other = clean_environment / "other.toml"
    other.write_text('[site]\nbase_url = "http://flag.example"\n')
    assert config.load(other).get("FXCRAWL_BASE_URL") == "http://flag.example"


def test_the_environment_is_over_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/env.db")
    monkeypatch.setenv("REDIS_URL", "redis://env:6379/1")
    monkeypatch.setenv("FXCRAWL_SPOOL_DIR", "/tmp/env-spool")
    monkeypatch.setenv("FXCRAWL_BASE_URL", "http://env.example")
    loaded = config.load(config_file)
    assert loaded.get("FXCRAWL_DATABASE_URL") == "sqlite:////tmp/env.db"
    assert loaded.get("FXCRAWL_REDIS_URL") == "redis://env:6379/1"
    assert loaded.get("FXCRAWL_SPOOL_DIR") == "/tmp/env-spool"
    assert loaded.get("FXCRAWL_BASE_URL") == "http://env.example"
    assert loaded.get("DOWNLOAD_DELAY") == 2.0  # no variable for it: the file's


def test_the_command_s_defaults_come_from_the_file_and_flags_win(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse = cli.build_parser().parse_args
    assert parse(["crawl", "search"]).db == project_settings.FXCRAWL_DATABASE_URL  # no file: the default
    monkeypatch.setenv(config.CONFIG_ENV, str(config_file))
    from_file = f"sqlite:///{config_file.parent / 'stores' / 'file.db'}"
    assert parse(["crawl", "search"]).db == from_file
    assert parse(["crawl", "search", "--distributed"]).redis_url == "redis://127.0.0.1:6379/7"
    assert (parse(["check-live"]).base_url, parse(["check-live"]).delay) == ("http://127.0.0.1:8168", 2.0)
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/env.db")
    assert parse(["crawl", "search"]).db == "sqlite:////tmp/env.db"
    assert parse(["crawl", "search", "--db", "sqlite:////tmp/flag.db"]).db == "sqlite:////tmp/flag.db"
    settings = project_settings_with({"DOWNLOAD_DELAY": 5})  # a crawl's settings: the file's, flags over them
    assert (settings.getfloat("DOWNLOAD_DELAY"), settings.get("USER_AGENT")) == (5.0, "fxcrawl-test/1")


def test_config_flag_builds_and_reads_the_file_s_database(config_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--config", str(config_file), "db", "upgrade"]) == 0
    assert os.environ[config.CONFIG_ENV] == str(config_file)  # what the crawls it starts read
    assert (config_file.parent / "stores" / "file.db").is_file()
    assert cli.main(["--config", str(config_file), "db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[databse]\nurl = 'x'\n", "unknown table [databse]"),
        ("[site]\nbase = 'x'\n", "unknown key 'base' in [site]"),
        ("[site]\ndelay = 'slow'\n", "[site] delay takes a float"),
        ("[site]\nconcurrency = true\n", "[site] concurrency takes a int"),
        ("[settings]\nlog_level = 'INFO'\n", "upper case"),
        ("[site\n", "fxcrawl.toml: "),
    ],
)
def test_a_bad_file_is_refused_in_one_line(
    clean_environment: Path, capsys: pytest.CaptureFixture, text: str, why: str
) -> None:
    path = clean_environment / "fxcrawl.toml"
    path.write_text(text)
    assert cli.main(["--config", str(path), "runs", "list"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err, err


def test_a_missing_file_named_is_refused(clean_environment: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--config", "nowhere.toml", "runs", "list"]) == cli.EXIT_USAGE
    assert "no such configuration file" in capsys.readouterr().err


PROBE = """
import json
from scrapy.utils.project import get_project_settings
settings = get_project_settings()
print(json.dumps({name: settings.get(name) for name in ("FXCRAWL_DATABASE_URL", "FXCRAWL_BASE_URL", "DOWNLOAD_DELAY")}))
"""


def test_plain_scrapy_reads_the_file_in_its_working_directory_under_the_environment(config_file: Path) -> None:
    """As a Scrapyd job does: the settings module reads ./fxcrawl.toml or $FXCRAWL_CONFIG."""
    environment = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings", "PYTHONPATH": str(ROOT)}

    def settings_in(folder: Path, **env: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=folder, env={**environment, **env}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    folder = config_file.parent
    assert settings_in(folder)["FXCRAWL_BASE_URL"] == "http://127.0.0.1:8168"  # ./fxcrawl.toml
    assert settings_in(folder, FXCRAWL_BASE_URL="http://env.example") == {
        "FXCRAWL_DATABASE_URL": f"sqlite:///{folder / 'stores' / 'file.db'}",
        "FXCRAWL_BASE_URL": "http://env.example",
        "DOWNLOAD_DELAY": 2.0,
    }
    elsewhere = folder.parent
    assert settings_in(elsewhere, FXCRAWL_CONFIG=str(config_file))["DOWNLOAD_DELAY"] == 2.0
    assert settings_in(elsewhere)["DOWNLOAD_DELAY"] == project_settings.DOWNLOAD_DELAY  # no file: the default
