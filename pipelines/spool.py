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

from crawler.items import item_from_json, item_kind, to_jsonable

logger = logging.getLogger(__name__)

_sequence = count()


@dataclass
class ReplayResult:
    files: int = 0
    items: int = 0
    failed_files: int = 0


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

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def pending_items(self) -> int:
        return sum(max(0, len(path.read_text(encoding="utf-8").splitlines()) - 1) for path in self.files())

    @staticmethod
    def read(path: Path) -> list[Any]:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return [item_from_json(record["kind"], record["item"]) for record in map(json.loads, lines)]

    def replay(self, write: Callable[[list[Any]], Any]) -> ReplayResult:
        """Write every spooled batch through ``write``; a file goes once its batch is stored."""
        result = ReplayResult()
        for path in self.files():
            items = self.read(path)
            try:
                write(items)
            except Exception as exc:
                result.failed_files += 1
                logger.warning("spool file %s not replayed yet: %s", path.name, exc)
                break  # the database is still unhappy; keep order and try again later
            path.unlink()
            result.files += 1
            result.items += len(items)
        return result
