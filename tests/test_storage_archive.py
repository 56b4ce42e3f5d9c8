"""The WARC archive in storage: records written and read back, revisits, rotation, an independent
reader (warcio's own command line), damaged files, retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.archive import (
    ArchivePolicy,
    ArchiveWriter,
    Exchange,
    Location,
    ReadReport,
    archive_dir_for,
    archive_files,
    iter_pages,
    prune,
    read_page,
    read_payload,
)
from storage.archive.records import new_record_id
from storage.db import Database
from storage.models import ArchivePayload

WARCIO = Path(sys.executable).with_name("warcio")
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip"), ("Server", "test")]


def exchange(url: str, body: bytes, status: int = 200) -> Exchange:
    return Exchange(new_record_id(), url, status, list(HEADERS), body, request_headers=[("User-Agent", "fxcrawl")])


def page_body(n: int) -> bytes:
    return f"<html><body><h1>第{n}篇</h1>{'正文' * 200}</body></html>".encode()


@pytest.fixture
def database(database_url: str) -> Database:
    """The payload index and retention's updates, on SQLite and on PostgreSQL."""
    return Database(database_url).prepare()


def warcio_index(path: Path) -> list[dict[str, str]]:
    """The file as warcio's own command line indexes it: an independent reader of what we wrote."""
    fields = ",".join(
        [
            *("warc-type", "warc-target-uri", "warc-record-id", "warc-refers-to", "warc-refers-to-target-uri"),
            *("warc-payload-digest", "offset", "length"),
        ]
    )
    out = subprocess.run([str(WARCIO), "index", "-f", fields, str(path)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_a_page_reads_back_as_written_and_by_warcio(tmp_path: Path, database: Database) -> None:
    writer = ArchiveWriter(tmp_path, database)
    first = exchange("http://127.0.0.1:9/article/1", page_body(1))
    result = writer.write([first], run_id=3)
    writer.close()
    location = result.locations[first.record_id]
    assert location.file == "fxcrawl-3-00001.warc.gz"
    page = read_page(tmp_path, location)
    assert page is not None
    assert (page.url, page.status, page.body, page.record_id) == (first.url, 200, first.body, first.record_id)
    # wire-level headers are kept renamed (the body is archived decompressed), and named back
    assert ("X-Archive-Orig-Content-Encoding", "gzip") in page.headers
    assert ("Content-Encoding", "gzip") in page.original_headers
    index = warcio_index(tmp_path / location.file)
    assert [r["warc-type"] for r in index] == ["warcinfo", "response", "request"]
    assert int(index[1]["offset"]) == location.offset and int(index[1]["length"]) == location.length


def test_an_identical_payload_is_a_revisit_pointing_to_its_original_across_runs(
    tmp_path: Path, database: Database
) -> None:
    body = page_body(2)
    one = ArchiveWriter(tmp_path, database)
    original = exchange("http://127.0.0.1:9/article/2", body)
    one.write([original], run_id=1)
    one.close()
    two = ArchiveWriter(tmp_path, database)  # a later run: knows the payload from the index only
    again = exchange("http://127.0.0.1:9/article/2", body)
    changed = exchange("http://127.0.0.1:9/article/3", page_body(3))
    result = two.write([again, changed], run_id=2)
    two.close()
    assert (result.revisits, result.records) == (1, 4)
    records = {r.get("warc-record-id"): r for r in warcio_index(tmp_path / "fxcrawl-2-00001.warc.gz")}
    revisit = records[again.record_id]
    assert revisit["warc-type"] == "revisit"
    assert revisit["warc-refers-to"] == original.record_id
    assert revisit["warc-refers-to-target-uri"] == original.url
    first_run = warcio_index(tmp_path / "fxcrawl-1-00001.warc.gz")
    origin = {r.get("warc-record-id"): r for r in first_run}[original.record_id]
    assert origin["warc-type"] == "response" and origin["warc-payload-digest"] == revisit["warc-payload-digest"]
    assert records[changed.record_id]["warc-type"] == "response"
    # a revisit reads back with its original's payload, through the index
    page = read_page(tmp_path, result.locations[again.record_id])
    assert page is not None and page.record_type == "revisit" and page.body == b""
    with database.session() as session:
        where = {row.digest: row for row in session.scalars(select(ArchivePayload))}

    def originals(digest: str) -> Location | None:
        row = where.get(digest)
        return Location(row.warc_file, row.warc_offset, row.warc_length) if row else None

    resolved = read_payload(tmp_path, page, originals)
    assert resolved is not None and resolved.body == body


def test_files_rotate_by_size_and_by_run(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, None, ArchivePolicy(max_bytes=2_000))
    for n in range(6):
        writer.write([exchange(f"http://127.0.0.1:9/article/{n}", os.urandom(1_000))], run_id=5)
    writer.write([exchange("http://127.0.0.1:9/article/x", b"x")], run_id=6)
    writer.close()
    files = archive_files(tmp_path)
    assert {f.run_id for f in files} == {5, 6}
    assert len([f for f in files if f.run_id == 5]) >= 3
    assert all(f.path.stat().st_size < 2_000 + 2_500 for f in files)
    report = ReadReport()
    pages = [page for f in files for page in iter_pages(f.path, report)]
    assert len(pages) == 7 and report.skipped == {}


def test_what_a_run_keeps_of_its_originals_is_out_of_the_cycle_collectors_walk(tmp_path: Path) -> None:
    """One kept original per page archived, to the end of the run: as dataclasses, 20,000 of them
    made each full collection 30-40 ms, the longest reactor stalls of a 10,000-article crawl."""
    import gc

    writer = ArchiveWriter(tmp_path, None)
    writer.write([exchange(f"http://127.0.0.1:9/article/{n}", page_body(n)) for n in range(50)], run_id=1)
    gc.collect()
    assert len(writer.originals) == 50
    assert not any(gc.is_tracked(original) for original in writer.originals.values())
    # and a revisit still finds its original
    result = writer.write([exchange("http://127.0.0.1:9/again/7", page_body(7))], run_id=1)
    writer.close()
    assert result.revisits == 1


def test_the_default_folder_is_beside_the_sqlite_file(tmp_path: Path) -> None:
    assert archive_dir_for(None, f"sqlite:///{tmp_path}/x/fx.db") == (tmp_path / "x" / "archive").resolve()
    assert archive_dir_for(tmp_path / "elsewhere", "sqlite:///fx.db") == (tmp_path / "elsewhere").resolve()


def _three_pages(tmp_path: Path) -> tuple[Path, list[int]]:
    writer = ArchiveWriter(tmp_path, None)
    exchanges = [exchange(f"http://127.0.0.1:9/article/{n}", page_body(n)) for n in range(3)]
    result = writer.write(exchanges, run_id=1)
    writer.close()
    return tmp_path / "fxcrawl-1-00001.warc.gz", [result.locations[e.record_id].offset for e in exchanges]


def test_a_truncated_file_gives_its_whole_records_and_counts_the_cut_one(tmp_path: Path) -> None:
    path, offsets = _three_pages(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: offsets[2] + 40])  # cut inside the third response
    report = ReadReport()
    pages = list(iter_pages(path, report))
    assert [p.url for p in pages] == ["http://127.0.0.1:9/article/0", "http://127.0.0.1:9/article/1"]
    assert report.skipped == {path.name: 1}


def test_a_flipped_byte_costs_its_record_only(tmp_path: Path) -> None:
    path, offsets = _three_pages(tmp_path)
    data = bytearray(path.read_bytes())
    data[offsets[1] + 60] ^= 0xFF  # inside the second response's compressed data
    path.write_bytes(bytes(data))
    report = ReadReport()
    pages = list(iter_pages(path, report))
    assert [p.url for p in pages] == ["http://127.0.0.1:9/article/0", "http://127.0.0.1:9/article/2"]
    assert report.skipped == {path.name: 1}
    assert all(p.body == page_body(int(p.url.rsplit("/", 1)[1])) for p in pages)


def test_retention_drops_whole_old_runs_and_unlinks_what_pointed_there(tmp_path: Path, database: Database) -> None:
    archive = tmp_path / "archive"
    writer = ArchiveWriter(archive, database)
    for run in (1, 2, 3):
        writer.write([exchange(f"http://127.0.0.1:9/article/{run}", page_body(run))], run_id=run)
    writer.close()
    old = time.time() - 10 * 86400
    for f in archive_files(archive, 1):
        os.utime(f.path, (old, old))
    result = prune(archive, database, keep_days=5, protect_run=3)
    assert result.files == ["fxcrawl-1-00001.warc.gz"]
    assert [f.run_id for f in archive_files(archive)] == [2, 3]
    with database.session() as session:
        assert {row.warc_file for row in session.scalars(select(ArchivePayload))} == {
            "fxcrawl-2-00001.warc.gz",
            "fxcrawl-3-00001.warc.gz",
        }
    by_size = prune(archive, database, keep_bytes=1, protect_run=3)  # run 3 is running: never pruned
    assert by_size.files == ["fxcrawl-2-00001.warc.gz"]
    assert [f.run_id for f in archive_files(archive)] == [3]


def test_retention_never_touches_a_run_the_ledger_holds_open(tmp_path: Path, database: Database) -> None:
    from storage.models import CrawlRun

    with database.write_session() as session:
        session.add(CrawlRun(spider="search", args={}, stats={}, health_reasons=[]))
    with database.session() as session:
        (open_run,) = session.scalars(select(CrawlRun.id))
    writer = ArchiveWriter(tmp_path, database)
    writer.write([exchange("http://127.0.0.1:9/article/1", page_body(1))], run_id=open_run)
    writer.close()
    assert prune(tmp_path, database, keep_bytes=1).files == []


def test_the_fast_reader_reads_our_records_as_warcio_does(tmp_path: Path) -> None:
    from storage.archive.reader import _members, _parse, _parse_with_warcio

    writer = ArchiveWriter(tmp_path, None)
    body = page_body(7)
    writer.write([exchange("http://127.0.0.1:9/a", body), exchange("http://127.0.0.1:9/b", body)], run_id=1)
    writer.write([exchange("http://127.0.0.1:9/c", b"", status=304)], run_id=1)
    writer.close()
    (path,) = tmp_path.glob("*.warc.gz")
    members = list(_members(path, ReadReport()))
    pages = [(_parse(m, path.name), _parse_with_warcio(m, path.name)) for m in members]
    assert [fast for fast, _ in pages] == [slow for _, slow in pages]
    assert [p.record_type for p, _ in pages if p] == ["response", "revisit", "response"]


def test_a_reparse_reads_the_newest_run_first_and_only_what_it_selects(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from storage.archive.selection import Selection, SelectionCounts, reparse_order, selected_pages

    writer = ArchiveWriter(tmp_path, None)
    early = datetime(2026, 11, 1, tzinfo=UTC)
    for run in (1, 2):
        first = exchange(f"http://127.0.0.1:9/article/{run}", page_body(run))
        first.fetched_at = early + timedelta(days=run)
        writer.write([first, exchange(f"http://127.0.0.1:9/info/00{run}", page_body(10 + run))], run_id=run)
    writer.close()
    assert [f.run_id for f in reparse_order(tmp_path, Selection())] == [2, 1]

    def urls(selection: Selection) -> list[str]:
        counts = SelectionCounts()
        found = [page.url for _, page in selected_pages(tmp_path, None, selection, ReadReport(), counts)]
        assert counts.pages + counts.not_selected == (2 if selection.run else 4)  # --run reads its files only
        return found

    assert urls(Selection()) == [
        "http://127.0.0.1:9/article/2",
        "http://127.0.0.1:9/info/002",
        "http://127.0.0.1:9/article/1",
        "http://127.0.0.1:9/info/001",
    ]
    assert urls(Selection(url="*/article/*")) == ["http://127.0.0.1:9/article/2", "http://127.0.0.1:9/article/1"]
    assert urls(Selection(run=1)) == ["http://127.0.0.1:9/article/1", "http://127.0.0.1:9/info/001"]
    since = urls(Selection(since=early + timedelta(days=2)))
    assert "http://127.0.0.1:9/article/1" not in since and "http://127.0.0.1:9/article/2" in since
