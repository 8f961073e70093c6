"""One sync at a time per state store: a file lock beside a SQLite store, a session advisory
lock on a PostgreSQL one, released by the database when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from connector.errors import LockedError
from connector.state import Location, PostgresAddress, sync_lock
from tests.postgres import PASSWORD


def test_a_second_sync_is_refused_while_the_first_holds_the_lock(state_location: Location) -> None:
    busy = pytest.raises(LockedError, match="another sync is running")
    with sync_lock(state_location), busy, sync_lock(state_location):
        pass
    with sync_lock(state_location):  # released: the next one may run
        pass


def test_the_lock_of_a_killed_sync_is_released_by_the_database(state_location: Location) -> None:
    if not isinstance(state_location, PostgresAddress):
        pytest.skip("SQLite: the operating system releases a killed process's file lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, state_location.url],
        stdout=subprocess.PIPE,
        env={**os.environ, "PGPASSWORD": PASSWORD},
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    with pytest.raises(LockedError):
        sync_lock(state_location).__enter__()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 30  # the server notices the lost session
    while True:
        try:
            with sync_lock(state_location):
                return
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


HOLDER = """
import sys, threading
from connector.state import PostgresAddress, sync_lock
with sync_lock(PostgresAddress(sys.argv[1])):
    print("held", flush=True)
    threading.Event().wait()
"""
