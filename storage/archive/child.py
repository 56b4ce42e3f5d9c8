"""The WARC files written by a process of their own, off the crawl's interpreter lock.

Building a record with warcio and gzipping it is pure Python and C work of about a quarter of a
millisecond a response, done on the store's writer thread it competes for the one interpreter
lock with the reactor; a crawl is bound by that lock (its CPU time equals its wall time). Here
``WarcFiles`` runs in a child process: the writer thread sends each group of exchanges down a
pipe and waits, without the lock, for where the records went. ``make bench``'s e2e row "archive
written on the writer thread" (FXCRAWL_ARCHIVE_PROCESS=False) shows what it buys.

The child lives exactly as long as its parent wants it: it ignores SIGINT and SIGTERM (a Ctrl-C
or a service manager's stop reaches the whole process group; the crawl shuts down in order and
closes the child itself), and it exits when the pipe closes, so a parent killed outright
(SIGKILL) leaves no child behind. What a call in the child raises is raised in the parent.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.util  # its exit handler registered before ours, so ours runs first
import signal
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from storage.archive.records import Exchange, OriginalRef
from storage.archive.warcfiles import Appended, WarcFiles

logger = logging.getLogger(__name__)

#: How long ``close`` waits for the child to finish and exit before it is killed.
EXIT_TIMEOUT = 30.0


class ChildGone(RuntimeError):
    """The archive's child process died or could not be started."""


class WarcFilesProcess:
    """``WarcFiles``' methods, run by a child process started on first use (or by ``start``,
    which does not wait for it: ``ready`` says when it answers)."""

    def __init__(self, directory: Path, max_bytes: int, info: Mapping[str, str]) -> None:
        self.args = (directory, max_bytes, dict(info))
        self.process: Any = None
        self.conn: Connection | None = None
        #: The child's process id once launched (kept after it is gone, for the record).
        self.pid: int | None = None
        #: A ping sent by ``start`` whose answer is not read yet.
        self.pinged = False
        #: ``start``'s thread while it launches the child, and what it raised.
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._lock = threading.Lock()
        self._abandoned = False
        #: The CPU seconds the child spent, known once it is closed (for the crawl's stats).
        self.cpu_seconds = 0.0

    def append(
        self, exchanges: Sequence[Exchange], digests: Sequence[str], known: Mapping[str, OriginalRef], run_id: int
    ) -> Appended:
        result: Appended = self._call("append", list(exchanges), list(digests), dict(known), run_id)
        return result

    def sync(self) -> None:
        if self.process is not None:
            self._call("sync")

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
        if self.process is None:
            return
        try:
            self.cpu_seconds = float(self._call("close"))
        finally:
            self._stop()

    @property
    def started(self) -> bool:
        return self._starting is not None or self.conn is not None

    def start(self) -> None:
        """Launch the child from a thread of its own and return at once (a forkserver's first
        launch takes half a second, which the store's writer thread must not wait out); the
        child answers a ping once it is up, and ``ready`` says so."""
        self._starting = threading.Thread(target=self._launch, name="fxcrawl-archive-start", daemon=True)
        self._starting.start()

    def _launch(self) -> None:
        try:
            conn = self._connection()
            conn.send(("ping", ()))
            self.pinged = True
        except Exception as exc:
            self._start_error = exc
        with self._lock:
            if self._abandoned:  # the crawl ended while this launched: let the child go
                self._close_connection()

    def ready(self) -> bool:
        """Launched and answering (never waits); raises ChildGone if it could not start."""
        if self._starting is not None:
            if self._starting.is_alive():
                return False
            self._starting = None
            if self._start_error is not None:
                self._stop()
                raise ChildGone(f"could not start the archive's writer process ({self._start_error})")
        if self.conn is None:
            return False
        if self.pinged:
            if not self.conn.poll(0):
                return False
            self._receive(self.conn)
            self.pinged = False
        return True

    def abandon(self) -> None:
        """Let a child that was started but never used go, without waiting for it: it exits when
        it finds the pipe closed (a launch still under way closes it when done)."""
        with self._lock:
            self._abandoned = True
            if self._starting is None or not self._starting.is_alive():
                self._close_connection()

    def _close_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.process = None

    def _call(self, method: str, *args: Any) -> Any:
        conn = self._connection()
        if self.pinged:
            self._receive(conn)
            self.pinged = False
        try:
            conn.send((method, args))
        except OSError as exc:
            self._stop()
            raise ChildGone(f"the archive's writer process is gone ({exc.__class__.__name__})") from exc
        return self._receive(conn)

    def _receive(self, conn: Connection) -> Any:
        try:
            ok, value = conn.recv()
        except (EOFError, OSError) as exc:
            self._stop()
            raise ChildGone(f"the archive's writer process is gone ({exc.__class__.__name__})") from exc
        if not ok:
            raise value
        return value

    def _connection(self) -> Connection:
        if self.conn is None:
            context: Any = multiprocessing.get_context(_start_method())
            if context.get_start_method() == "forkserver":  # (takes effect when the server starts)
                context.set_forkserver_preload(["__main__", __name__])
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(theirs, *self.args), name="fxcrawl-archive", daemon=True)
            try:
                process.start()
            except Exception as exc:  # no process to be had here (a daemonic parent, no semaphores …)
                ours.close()
                raise ChildGone(f"could not start the archive's writer process ({exc})") from exc
            finally:
                theirs.close()  # the child's end is the child's alone: its EOF is our death
            self.process, self.conn, self.pid = process, ours, process.pid
            _LIVE.add(self)
        return self.conn

    def _stop(self) -> None:
        """The pipe closed, then the child waited for (killed if it does not leave)."""
        process = self.process
        self._close_connection()
        if process is not None:
            process.join(EXIT_TIMEOUT)
            if process.is_alive():
                logger.warning("the archive's writer process did not exit; killed")
                process.kill()
                process.join()


#: Children this process has a pipe to.
_LIVE: weakref.WeakSet[WarcFilesProcess] = weakref.WeakSet()


@atexit.register
def _let_children_go() -> None:
    """At exit, close each child's pipe before multiprocessing joins its children: a child
    ignores SIGTERM and leaves when its pipe ends, so a process that exits without closing its
    archive (after an error) would otherwise wait for it forever."""
    for files in list(_LIVE):
        files._close_connection()


def _start_method() -> str:
    """forkserver where there is one (a fork of this threaded process would be unsafe); else spawn."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def serve(conn: Connection, directory: Path, max_bytes: int, info: dict[str, str]) -> None:
    """The child: calls from the pipe, answered in order, until ``close`` (answered with the
    child's CPU seconds) or the pipe's end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    files = WarcFiles(directory, max_bytes, info)
    try:
        while True:
            try:
                method, args = conn.recv()
            except (EOFError, OSError):  # the parent is gone: what was appended is in the files already
                return
            try:
                value = None if method == "ping" else getattr(files, method)(*args)
                answer: tuple[bool, Any] = (True, time.process_time() if method == "close" else value)
            except Exception as exc:
                answer = (False, exc)
            try:
                conn.send(answer)
            except Exception as exc:  # an exception that does not pickle: its text does
                conn.send((False, RuntimeError(f"{answer[1]!r} ({exc})")))
            if method == "close":
                return
    finally:
        files.close()
