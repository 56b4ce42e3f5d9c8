"""A crawl killed with SIGKILL mid-run leaves no article pointing past the end of its WARC file:
each stored pointer names a whole record on disk, and that record is the article's own page."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from conftest import replay_crawl_command
from sqlalchemy import func, select

from fx168 import site
from storage.archive import Location, archive_dir_for, read_page
from storage.db import Database
from storage.models import Article


def test_a_killed_crawl_leaves_every_article_pointing_at_a_whole_record_of_its_page(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    command = replay_crawl_command(
        40, tmp_path / "spool", "--replay-delay", "0.05", "-s", "FXCRAWL_STORE_MAX_DELAY=0.2", db=db
    )
    # its own process group: SIGKILL takes the crawl and its fixture server, as a power cut would
    crawl = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    database = Database(db)
    deadline = time.monotonic() + 60
    stored = 0
    while stored < 30 and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            with database.session() as session:
                stored = session.scalar(select(func.count(Article.id))) or 0
        except Exception:  # the schema is not built yet
            stored = 0
    time.sleep(random.uniform(0, 0.5))  # anywhere in the next batch: a record half written, or a commit
    os.killpg(crawl.pid, signal.SIGKILL)
    crawl.communicate(timeout=30)
    with database.session() as session:
        rows = session.execute(
            select(Article.url, Article.news_id, Article.warc_file, Article.warc_offset, Article.warc_length)
        ).all()
    database.dispose()
    assert 30 <= len(rows) < 400, "the crawl was not killed mid-run"
    archive = archive_dir_for(None, db)
    for url, news_id, warc_file, offset, length in rows:
        assert warc_file is not None and offset is not None and length is not None, url
        size = (archive / warc_file).stat().st_size
        assert offset + length <= size, f"{url} points past the end of {warc_file}"
        page = read_page(archive, Location(warc_file, offset, length))
        assert page is not None, f"{url}: no readable record at {warc_file}:{offset}"
        ref = site.article_ref(site.rebase(page.url))
        assert ref is not None and ref.id == news_id, f"{url}: the record there is {page.url}"
