"""One run of a job at a time, across processes and machines sharing one database.

The lock is a row in ``job_locks``: taken with INSERT … ON CONFLICT DO NOTHING (the database
decides who wins), kept alive by a heartbeat, deleted when the run ends. A lock whose holder
died (SIGKILL, power loss) goes stale: at once if the holder was a process on this host that
no longer exists, otherwise when its heartbeat is older than the TTL.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import delete, select, update

from storage.db import Database, upsert
from storage.models import JobLock as JobLockRow
from storage.models import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    job: str
    host: str
    pid: int
    acquired_at: datetime

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"


class JobLockHeld(RuntimeError):
    def __init__(self, holder: Holder) -> None:
        super().__init__(f"job {holder.job!r} is already running ({holder})")
        self.holder = holder


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobLock:
    """``with JobLock(db, "xiandai"):`` runs the block only if no live holder has the job."""

    def __init__(self, database: Database, job: str, ttl: float = 60.0) -> None:
        self.database = database
        self.job = job
        self.ttl = timedelta(seconds=ttl)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.holder = f"{self.host}:{self.pid}:{id(self):x}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock or raise JobLockHeld naming the live holder."""
        now = utcnow()
        row = {
            "job": self.job,
            "holder": self.holder,
            "host": self.host,
            "pid": self.pid,
            "acquired_at": now,
            "heartbeat_at": now,
        }
        take = upsert(self.database.dialect, JobLockRow.__table__, ["job"]).returning(JobLockRow.job)
        with self.database.write_session() as session:
            won = session.execute(take, row).first()
            if won is None:
                current = session.scalars(select(JobLockRow).where(JobLockRow.job == self.job).with_for_update()).one()
                if not self._stale(current, now):
                    raise JobLockHeld(Holder(self.job, current.host, current.pid, current.acquired_at))
                logger.warning(
                    "taking over the stale lock of job %r from pid %d on %s", self.job, current.pid, current.host
                )
                session.execute(update(JobLockRow).where(JobLockRow.job == self.job).values(row))
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lock-{self.job}", daemon=True)
        self._beat.start()

    def _stale(self, row: JobLockRow, now: datetime) -> bool:
        if row.host == self.host and not process_alive(row.pid):
            return True
        return now - row.heartbeat_at > self.ttl

    def _heartbeat(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                with self.database.write_session() as session:
                    session.execute(
                        update(JobLockRow)
                        .where(JobLockRow.job == self.job, JobLockRow.holder == self.holder)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception as exc:  # the next beat tries again; a lock that goes stale is taken over
                logger.warning("could not refresh the lock of job %r: %s", self.job, exc)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self.database.write_session() as session:
            session.execute(delete(JobLockRow).where(JobLockRow.job == self.job, JobLockRow.holder == self.holder))

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()
