"""One sync at a time per state store: a lock file beside a SQLite store, an advisory lock on a
PostgreSQL one."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from connector.errors import LockedError
from connector.private_files import create_private_file
from connector.state.address import Location, PostgresAddress
from connector.state.database import Database, connect


def lock_path(state_path: Path) -> Path:
    """The lock file beside a state store."""
    return state_path.with_name(state_path.name + ".lock")


def service_lock_path(state_path: Path) -> Path:
    """The lock file that `serve` holds for its whole life: one service per state store."""
    return state_path.with_name(state_path.name + ".serve.lock")


class StateLock:
    """One sync at a time per state store: an exclusive lock on a file beside it.

    The operating system releases the lock when the process dies, so a crashed run never
    leaves a stale lock behind.
    """

    def __init__(self, path: Path, wait: bool = False, busy: str | None = None) -> None:
        self.path = path
        self.wait = wait
        self.busy = busy or f"another sync is running on this state store ({path} is locked)"
        self._file: IO[str] | None = None

    def __enter__(self) -> StateLock:
        create_private_file(self.path)  # mode 0600 when new; an existing one is left as it is
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            raise LockedError(self.busy) from None
        self._file = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryLock:
    """One sync at a time per PostgreSQL state store: a session advisory lock, on a connection
    of its own held for the whole sync.

    The database releases it when the holder's connection ends, so a killed run (or a machine
    gone) never leaves a stale lock behind. Its key is the store's schema, so stores kept in
    different schemas of one database lock apart.
    """

    def __init__(self, address: PostgresAddress, wait: bool = False, busy: str | None = None):
        self.address = address
        self.wait = wait
        self.busy = busy or f"another sync is running on this state store ({address} is locked)"
        self._db: Database | None = None

    def __enter__(self) -> AdvisoryLock:
        db = connect(self.address)
        try:
            function = "pg_advisory_lock" if self.wait else "pg_try_advisory_lock"
            row = db.execute(
                f"SELECT {function}(hashtextextended(? || current_schema(), 0))", (_SYNC_LOCK,)
            ).fetchone()
        except BaseException:
            db.close()
            raise
        if not self.wait and not row[0]:
            db.close()
            raise LockedError(self.busy)
        self._db = db
        return self

    def __exit__(self, *exc: object) -> None:
        if self._db is not None:
            try:  # released now: a closed session's locks go only once the server notices
                self._db.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(? || current_schema(), 0))",
                    (_SYNC_LOCK,),
                )
            finally:
                self._db.close()
                self._db = None


_SYNC_LOCK = "scim-connector sync "


def sync_lock(where: Location, wait: bool = False) -> StateLock | AdvisoryLock:
    """The one-sync-at-a-time lock of the store at `where`: a file beside a SQLite store, an
    advisory lock on a PostgreSQL one."""
    if isinstance(where, PostgresAddress):
        return AdvisoryLock(where, wait)
    return StateLock(lock_path(where), wait)
