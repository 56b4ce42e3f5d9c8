"""The archive written by a child process (storage/archive/child.py): the same records as the
writer thread writes, and a child that never outlives, outvotes or loses the crawl's pages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_storage_archive import exchange, page_body, warcio_index

from storage.archive import ArchiveWriter, payload_digest, read_page
from storage.archive.child import ChildGone


def child_pid(writer: ArchiveWriter) -> int:
    assert writer.files is writer.child, "the child does not write"
    return child_pid_of(writer.child)


def child_pid_of(child: object) -> int:
    process = getattr(child, "process", None)
    assert process is not None, "no child process is running"
    return int(process.pid)


def gone(pid: int, within: float = 15.0) -> bool:
    """The process exited (a zombie left to a reaper that is not ours counts as exited)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_the_child_writes_the_records_the_writer_thread_would(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, None, separate_process=True)
    one, two, twin = (
        exchange("http://127.0.0.1:9/article/1", page_body(1)),
        exchange("http://127.0.0.1:9/article/2", page_body(2)),
        exchange("http://127.0.0.1:9/article/1?again", page_body(1)),
    )
    first = writer.write([one, two], run_id=5)
    pid = child_pid(writer)
    assert pid != os.getpid()
    second = writer.write([twin], run_id=5)
    writer.close()
    assert gone(pid), "the child did not exit on close"
    assert (first.records, first.revisits, second.revisits) == (4, 0, 1)
    for ex, result in ((one, first), (two, first), (twin, second)):
        page = read_page(tmp_path, result.locations[ex.record_id])
        assert page is not None and page.url == ex.url and page.record_id == ex.record_id
    index = warcio_index(tmp_path / "fxcrawl-5-00001.warc.gz")
    assert [r["warc-type"] for r in index] == [
        "warcinfo",
        "response",
        "request",
        "response",
        "request",
        "revisit",
        "request",
    ]
    assert index[5]["warc-refers-to"] == one.record_id
    assert set(writer.originals) == {payload_digest(one.body), payload_digest(two.body)}  # kept by the parent


def test_a_child_killed_mid_run_costs_its_group_only_and_the_rest_is_written_here(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, None, separate_process=True)
    before = exchange("http://127.0.0.1:9/article/1", page_body(1))
    kept = writer.write([before], run_id=1)
    writer.sync()
    os.kill(child_pid(writer), signal.SIGKILL)
    with pytest.raises(ChildGone):
        writer.write([exchange("http://127.0.0.1:9/article/2", page_body(2))], run_id=1)
    after = exchange("http://127.0.0.1:9/article/3", page_body(3))
    then = writer.write([after], run_id=1)
    writer.close()
    assert then.locations[after.record_id].file == "fxcrawl-1-00002.warc.gz"  # a file of its own, after the child's
    for ex, result in ((before, kept), (after, then)):
        page = read_page(tmp_path, result.locations[ex.record_id])
        assert page is not None and page.body == ex.body


def test_the_child_ignores_ctrl_c_and_a_stop_sent_to_the_process_group(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, None, separate_process=True)
    writer.write([exchange("http://127.0.0.1:9/article/1", page_body(1))], run_id=1)
    pid = child_pid(writer)
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    later = exchange("http://127.0.0.1:9/article/2", page_body(2))
    result = writer.write([later], run_id=1)  # the crawl decides when its archive closes
    assert child_pid(writer) == pid
    writer.close()
    page = read_page(tmp_path, result.locations[later.record_id])
    assert page is not None and page.body == later.body


def test_a_parent_killed_outright_leaves_no_child_behind(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from storage.archive import ArchiveWriter, Exchange
        writer = ArchiveWriter(Path({str(tmp_path)!r}), None, separate_process=True)
        writer.write([Exchange("<urn:uuid:1>", "http://127.0.0.1:9/article/1", 200, [], b"page")], run_id=1)
        print(writer.files.process.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd())
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not gone(pid, within=0.2)
        parent.kill()
        parent.wait(10)
        assert gone(pid), "the archive's child outlived a parent killed with SIGKILL"
    finally:
        parent.kill()
        parent.wait(10)


def test_what_fails_in_the_child_is_raised_in_the_parent_as_itself(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    writer = ArchiveWriter(not_a_folder, None, separate_process=True)
    with pytest.raises(OSError):
        writer.write([exchange("http://127.0.0.1:9/article/1", page_body(1))], run_id=1)
    pid = child_pid(writer)  # an error of the files is not a dead child: it stays
    writer.close()
    assert gone(pid)


def test_a_short_crawl_never_starts_a_child_and_a_long_one_hands_over_once_it_answers(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, None, separate_process=True, process_after=3)
    written = []

    def write(n: int) -> None:
        ex = exchange(f"http://127.0.0.1:9/article/{n}", page_body(n))
        written.append((ex, writer.write([ex], run_id=2)))

    for n in range(3):
        write(n)
    assert writer.child is not None and not writer.child.started  # three responses: this process writes
    deadline = time.monotonic() + 30
    n = 3
    while writer.files is not writer.child and time.monotonic() < deadline:
        write(n)  # the child starts in the background; the crawl's process writes on meanwhile
        n += 1
        time.sleep(0.05)
    assert writer.files is writer.child, "the child never took over"
    write(n)
    writer.close()
    files = {result.locations[ex.record_id].file for ex, result in written}
    assert files == {"fxcrawl-2-00001.warc.gz", "fxcrawl-2-00002.warc.gz"}  # the child's file follows this one's
    assert written[-1][1].locations[written[-1][0].record_id].file == "fxcrawl-2-00002.warc.gz"
    for ex, result in written:
        page = read_page(tmp_path, result.locations[ex.record_id])
        assert page is not None and page.body == ex.body
    for name in files:
        types = [r["warc-type"] for r in warcio_index(tmp_path / name)]
        assert types[0] == "warcinfo" and len(types) % 2 == 1  # a response (or revisit) and its request each


def test_a_crawl_that_ends_while_its_child_starts_does_not_wait_for_it(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, None, separate_process=True, process_after=1)
    writer.write([exchange("http://127.0.0.1:9/article/1", page_body(1))], run_id=1)
    writer.write([exchange("http://127.0.0.1:9/article/2", page_body(2))], run_id=1)  # starts the child
    child = writer.child
    assert child is not None and child.started and writer.files is not child
    started = time.monotonic()
    writer.close()  # while the child is still being launched (half a second), or just after
    assert time.monotonic() - started < 0.3
    deadline = time.monotonic() + 15
    while child.pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.pid is not None and gone(child.pid), "an abandoned child did not exit"
    assert [f.name for f in sorted(tmp_path.iterdir())] == ["fxcrawl-1-00001.warc.gz"]


def test_a_process_that_exits_on_an_error_without_closing_its_archive_exits_and_its_child_too(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from storage.archive import ArchiveWriter, Exchange
        writer = ArchiveWriter(Path({str(tmp_path)!r}), None, separate_process=True)
        writer.write([Exchange("<urn:uuid:1>", "http://127.0.0.1:9/article/1", 200, [], b"page")], run_id=1)
        print(writer.files.process.pid, flush=True)
        raise RuntimeError("the crawl failed")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=Path.cwd())
    assert done.returncode == 1 and "the crawl failed" in done.stderr
    assert gone(int(done.stdout.split()[0]))
