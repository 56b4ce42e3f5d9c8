"""The configuration file: one TOML file for where things live and how the live site is crawled.

Read by ``crawler/settings.py`` (so plain ``scrapy crawl`` and Scrapyd jobs see it) and by the
``fxcrawl`` command's defaults; nothing else reads the environment or the file. Precedence,
highest first: flags (``--db``, ``--base-url``, ``-s NAME=VALUE``, Scrapyd's ``setting=``),
environment variables, the file, the built-in defaults.

The file is ``--config PATH`` (fxcrawl; it sets ``$FXCRAWL_CONFIG`` for the crawls it starts),
else ``$FXCRAWL_CONFIG``, else ``fxcrawl.toml`` in the working directory if there is one.
Relative paths in it (folders, a SQLite file) are relative to the file's folder::

    [database]
    url = "postgresql+psycopg://fxcrawl@db.example/fxcrawl"   # $DATABASE_URL
    [redis]
    url = "redis://127.0.0.1:6379/0"                          # $REDIS_URL
    [archive]
    dir = "/var/lib/fxcrawl/archive"                          # $FXCRAWL_ARCHIVE_DIR
    [spool]
    dir = "/var/lib/fxcrawl/spool"                            # $FXCRAWL_SPOOL_DIR
    [site]                                                    # the live site, and how politely
    base_url = "https://www.fx168news.com"                    # $FXCRAWL_BASE_URL
    delay = 1.0                                               # DOWNLOAD_DELAY
    user_agent = "…"                                          # USER_AGENT
    concurrency = 1                                           # CONCURRENT_REQUESTS_PER_DOMAIN
    autothrottle = true                                       # AUTOTHROTTLE_ENABLED
    timeout = 30                                              # DOWNLOAD_TIMEOUT
    [settings]                                                # any other Scrapy or FXCRAWL_ setting
    LOG_LEVEL = "INFO"

Imports nothing but the standard library: ``fxcrawl --help`` stays fast.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The file looked for in the working directory when neither --config nor $FXCRAWL_CONFIG names one.
DEFAULT_FILE = "fxcrawl.toml"
CONFIG_ENV = "FXCRAWL_CONFIG"


@dataclass(frozen=True)
class Key:
    """One value of the file: its table and name, the setting it becomes, its environment variable."""

    table: str
    name: str
    setting: str
    kind: type[Any]
    env: str | None = None
    path: bool = False  # a folder, made absolute against the file's folder


KEYS = (
    Key("database", "url", "FXCRAWL_DATABASE_URL", str, env="DATABASE_URL"),
    Key("redis", "url", "FXCRAWL_REDIS_URL", str, env="REDIS_URL"),
    Key("archive", "dir", "FXCRAWL_ARCHIVE_DIR", str, env="FXCRAWL_ARCHIVE_DIR", path=True),
    Key("spool", "dir", "FXCRAWL_SPOOL_DIR", str, env="FXCRAWL_SPOOL_DIR", path=True),
    Key("site", "base_url", "FXCRAWL_BASE_URL", str, env="FXCRAWL_BASE_URL"),
    Key("site", "delay", "DOWNLOAD_DELAY", float),
    Key("site", "user_agent", "USER_AGENT", str),
    Key("site", "concurrency", "CONCURRENT_REQUESTS_PER_DOMAIN", int),
    Key("site", "autothrottle", "AUTOTHROTTLE_ENABLED", bool),
    Key("site", "timeout", "DOWNLOAD_TIMEOUT", float),
    Key("progress", "mode", "FXCRAWL_PROGRESS", str, env="FXCRAWL_PROGRESS"),
    Key("alerts", "webhook", "FXCRAWL_ALERT_WEBHOOK", str, env="FXCRAWL_ALERT_WEBHOOK"),
    Key("alerts", "command", "FXCRAWL_ALERT_COMMAND", str, env="FXCRAWL_ALERT_COMMAND"),
    Key("metrics", "textfile", "FXCRAWL_METRICS_TEXTFILE", str, env="FXCRAWL_METRICS_TEXTFILE", path=True),
)
#: The table of any other setting, by its Scrapy name.
FREE_TABLE = "settings"


class ConfigError(ValueError):
    """The file cannot be read or holds something fxcrawl does not know; the message names the file."""


@dataclass(frozen=True)
class Config:
    """The settings the file and the environment give (flags go on top of these), and the file read."""

    settings: dict[str, Any]
    file: Path | None = None

    def get(self, setting: str, default: Any = None) -> Any:
        return self.settings.get(setting, default)


def config_file(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file to read: ``path``, else $FXCRAWL_CONFIG, else ./fxcrawl.toml if there is one."""
    named = path or (os.environ if environ is None else environ).get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


def load(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The file's settings with the environment's over them (read anew on every call)."""
    environ = os.environ if environ is None else environ
    file = config_file(path, environ)
    settings = read_file(file) if file is not None else {}
    for key in KEYS:
        if key.env and environ.get(key.env):
            settings[key.setting] = environ[key.env]
    return Config(settings, file)


def read_file(file: Path) -> dict[str, Any]:
    """The file's values as Scrapy settings; ConfigError (naming the file) for anything wrong."""
    try:
        with file.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such configuration file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: {exc}") from None
    folder = file.resolve().parent
    settings: dict[str, Any] = {}
    known = {(key.table, key.name): key for key in KEYS}
    tables = {key.table for key in KEYS} | {FREE_TABLE}
    for table, values in document.items():
        if table not in tables or not isinstance(values, dict):
            raise ConfigError(f"{file}: unknown table [{table}] (known: {', '.join(sorted(tables))})")
        for name, value in values.items():
            if table == FREE_TABLE:
                if not name.isupper():
                    raise ConfigError(f"{file}: [{FREE_TABLE}] takes Scrapy setting names (upper case), not {name!r}")
                settings[name] = value
                continue
            key = known.get((table, name))
            if key is None:
                names = ", ".join(k.name for k in KEYS if k.table == table)
                raise ConfigError(f"{file}: unknown key {name!r} in [{table}] (known: {names})")
            settings[key.setting] = _checked(file, key, value, folder)
    return settings


def _checked(file: Path, key: Key, value: Any, folder: Path) -> Any:
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, key.kind) or (key.kind is int and isinstance(value, bool)):
        raise ConfigError(f"{file}: [{key.table}] {key.name} takes a {key.kind.__name__}, not {value!r}")
    if key.path:
        return str((folder / Path(value).expanduser()).resolve())
    if key.setting == "FXCRAWL_DATABASE_URL" and value.startswith("sqlite:///"):
        database = value.removeprefix("sqlite:///")
        if database and not database.startswith((":memory:", "/")):  # a file beside the configuration
            return "sqlite:///" + str(folder / database)
    return value
