"""Job locks in the database: one holder at a time, stale holders taken over."""

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import update

from storage.db import Database
from storage.locks import JobLock, JobLockHeld
from storage.models import JobLock as JobLockRow
from storage.models import utcnow


@pytest.fixture
def database(database_url: str):
    db = Database(database_url).prepare()
    yield db
    db.dispose()


def test_one_holder_at_a_time(database) -> None:
    with JobLock(database, "xiandai"):
        with pytest.raises(JobLockHeld, match=r"job 'xiandai' is already running \(pid \d+ on "):
            JobLock(database, "xiandai").acquire()
        with JobLock(database, "another-job"):
            pass
    with JobLock(database, "xiandai"):  # released: free again
        pass


def test_a_dead_holder_on_this_host_is_taken_over_at_once(database) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = JobLock(database, "xiandai")
    lock.acquire()
    with database.write_session() as session:  # as if that process had taken it and been killed
        session.execute(update(JobLockRow).values(pid=dead.pid, holder="gone"))
    lock._stop.set()
    with JobLock(database, "xiandai") as taken:
        assert taken.pid != dead.pid


def test_a_holder_elsewhere_is_stale_only_when_its_heartbeat_stops(database) -> None:
    first = JobLock(database, "xiandai", ttl=60)
    first.acquire()
    with database.write_session() as session:
        session.execute(update(JobLockRow).values(host="other-machine", holder="other"))
    with pytest.raises(JobLockHeld, match="other-machine"):
        JobLock(database, "xiandai", ttl=60).acquire()
    first._stop.set()
    with database.write_session() as session:
        session.execute(update(JobLockRow).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    with JobLock(database, "xiandai", ttl=60):
        pass
