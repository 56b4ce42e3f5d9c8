"""The on-disk spool: batches the database would not take, kept as JSON lines until replayed.

One file per batch, written to a temporary name, flushed, fsynced and renamed, so a file in
the spool is always complete. Replaying is idempotent (every write is an upsert), and a file
is removed only after its batch is committed, so a crash mid-replay loses nothing and a
second replay stores nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from fx168.items import item_from_json, item_kind, to_jsonable
from storage.db import identity_key, sqlite_path

logger = logging.getLogger(__name__)

_sequence = count()


def spool_dir_for(base: Path | str | None, database_url: str) -> Path:
    """The one spool of one database, found the same from any working directory and any
    spelling of its URL: ``base`` (FXCRAWL_SPOOL_DIR, made absolute) or, by default, a ``spool``
    folder beside the SQLite file, else the per-user data folder; then one folder per database
    identity (dialect, host, port, name; the resolved file for SQLite; never credentials)."""
    if base:
        root = Path(base).expanduser().resolve()
    elif (path := sqlite_path(database_url)) is not None:
        root = path.parent / "spool"
    else:
        import platformdirs

        root = platformdirs.user_data_path("fxcrawl") / "spool"
    return root / identity_key(database_url)


@dataclass
class ReplayResult:
    files: int = 0
    items: int = 0
    failed_files: int = 0
    runs: int = 0


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, items: Sequence[Any], reason: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(_sequence):05d}.jsonl"
        final = self.directory / name
        temporary = final.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"spooled_because": reason}, ensure_ascii=False) + "\n")
            for item in items:
                out.write(json.dumps({"kind": item_kind(item), "item": to_jsonable(item)}, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        temporary.rename(final)
        return final

    def write_run(self, run_id: int, values: dict[str, Any]) -> Path:
        """A run's final row, for when the database is away as the run closes: replay finishes it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"run-{run_id}.json"
        temporary = final.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            json.dump({"run_id": run_id, "values": values}, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        temporary.rename(final)
        return final

    def run_files(self) -> list[Path]:
        return sorted(self.directory.glob("run-*.json")) if self.directory.is_dir() else []

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def pending_items(self) -> int:
        return sum(max(0, len(path.read_text(encoding="utf-8").splitlines()) - 1) for path in self.files())

    @staticmethod
    def read(path: Path) -> list[Any]:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return [item_from_json(record["kind"], record["item"]) for record in map(json.loads, lines)]

    def replay(
        self,
        write: Callable[[list[Any]], Any],
        finish_run: Callable[[int, dict[str, Any]], Any] | None = None,
    ) -> ReplayResult:
        """Write every spooled batch through ``write``; a file goes once its batch is stored.
        Then, if every batch went in, the spooled final run rows through ``finish_run``."""
        result = ReplayResult()
        for path in self.files():
            items = self.read(path)
            try:
                write(items)
            except Exception as exc:
                result.failed_files += 1
                logger.warning("spool file %s not replayed yet: %s", path.name, exc)
                return result  # the database is still unhappy; keep order and try again later
            path.unlink()
            result.files += 1
            result.items += len(items)
        if finish_run is None:
            return result
        for path in self.run_files():
            record = json.loads(path.read_text(encoding="utf-8"))
            try:
                finish_run(int(record["run_id"]), record["values"])
            except Exception as exc:
                result.failed_files += 1
                logger.warning("spooled run row %s not replayed yet: %s", path.name, exc)
                return result
            path.unlink()
            result.runs += 1
        return result
