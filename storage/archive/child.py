"""The WARC files written by a process of their own, off the crawl's interpreter lock.

Building a record with warcio and gzipping it is pure Python and C work of about a quarter of a
millisecond a response, done on the store's writer thread it competes for the one interpreter
lock with the reactor; a crawl is bound by that lock (its CPU time equals its wall time). Here
``WarcFiles`` runs in a child process: the writer thread sends each group of exchanges down a
pipe and waits, without the lock, for where the records went. ``make bench``'s e2e rows show the
gain (the full crawl with the archive, and without it).

The child lives exactly as long as its parent wants it: it ignores SIGINT and SIGTERM (a Ctrl-C
or a service manager's stop reaches the whole process group; the crawl shuts down in order and
closes the child itself), and it exits when the pipe closes, so a parent killed outright
(SIGKILL) leaves no child behind. What a call in the child raises is raised in the parent.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
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
        #: A ping sent by ``start`` whose answer is not read yet.
        self.pinged = False
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

    @property
    def started(self) -> bool:
        return self.conn is not None

    def start(self) -> None:
        """Start the child and return at once; it answers the ping sent here once it is up."""
        conn = self._connection()
        try:
            conn.send(("ping", ()))
        except OSError as exc:
            self._stop()
            raise ChildGone(f"the archive's writer process is gone ({exc.__class__.__name__})") from exc
        self.pinged = True

    def ready(self) -> bool:
        """Started and answering (never waits); raises ChildGone if it died starting."""
        if self.conn is None:
            return False
        if self.pinged:
            if not self.conn.poll(0):
                return False
            self._receive(self.conn)
            self.pinged = False
        return True

    def abandon(self) -> None:
        """Let a child that was started but never used go without waiting for it: it exits
        when it finds the pipe closed."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.process = None

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.cpu_seconds = float(self._call("close"))
        finally:
            self._stop()

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
            self.process, self.conn = process, ours
        return self.conn

    def _stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.process is not None:
            self.process.join(EXIT_TIMEOUT)
            if self.process.is_alive():
                logger.warning("the archive's writer process did not exit; killed")
                self.process.kill()
                self.process.join()
            self.process = None


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
            except EOFError:  # the parent is gone: what was appended is in the files already
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
