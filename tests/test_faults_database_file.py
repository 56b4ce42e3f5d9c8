"""A SQLite file deleted or replaced during a run is noticed before the next commit and at
close: the items are spooled, the run fails loudly, and no empty database takes its place
(issue 14, bullet 4)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import replay_crawl_command
from sqlalchemy import func, select

from storage.db import Database, DatabaseFileChanged
from storage.models import Article
from storage.spool import Spool, spool_dir_for


def stored_articles(path: Path) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return 0
    database = Database(f"sqlite:///{path}", create=False)
    try:
        with database.session() as session:
            return session.scalar(select(func.count(Article.id))) or 0
    except Exception:  # not built yet
        return 0
    finally:
        database.dispose()


def test_a_write_into_a_deleted_or_replaced_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fx.db'}"
    database = Database(url).prepare()
    with database.write_session():
        pass
    (tmp_path / "fx.db").rename(tmp_path / "moved.db")
    with pytest.raises(DatabaseFileChanged, match="deleted"), database.write_session():
        pass
    Database(url).prepare().dispose()  # another file now stands at the path
    with pytest.raises(DatabaseFileChanged, match="replaced"), database.write_session():
        pass
    database.dispose()


@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_a_database_file_deleted_or_replaced_mid_crawl_spools_and_fails_loudly(tmp_path: Path, fault: str) -> None:
    path = tmp_path / "fx.db"
    db = f"sqlite:///{path}"
    spool = tmp_path / "spool"
    command = replay_crawl_command(
        30,
        spool,
        "--replay-delay",
        "0.05",
        "-s",
        "CONCURRENT_REQUESTS=4",
        "-s",
        "FXCRAWL_STORE_MAX_DELAY=0.2",
        "-s",
        "FXCRAWL_RUN_HEARTBEAT=0.5",
        db=db,
    )
    crawl = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while stored_articles(path) < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert crawl.poll() is None, "the crawl ended before the fault"
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"fx.db{suffix}").exists():
            os.unlink(tmp_path / f"fx.db{suffix}")
    if fault == "replaced":
        Database(db).prepare().dispose()  # an empty fxcrawl database where the real one was
    _, err = crawl.communicate(timeout=120)

    assert crawl.returncode == 1, err[-3000:]
    assert f"the database file {path} was {fault}" in err
    assert "Traceback" not in err
    assert "crawl did not end cleanly" in err
    if fault == "deleted":
        assert not path.exists()  # the summary did not make an empty database in its place
    else:
        assert stored_articles(path) == 0  # nothing went into the stranger
    waiting = Spool(spool_dir_for(spool, db))
    assert waiting.pending_items() > 0  # what was fetched after the fault waits to be stored
    assert len(waiting.run_files()) == 1  # and the run's own row with it
