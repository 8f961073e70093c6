"""One sync at a time per state store: a lock file beside it."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from connector.errors import LockedError
from connector.private_files import create_private_file


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
