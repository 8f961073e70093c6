"""Private files: the state store, its lock and its secret are for the connector's user only.

The store holds e-mail addresses, masked national numbers, employee ids, the audit journal and
the webhook inbox; the secret keys its pseudonyms. What the connector creates for them is mode
0600 (folders 0700), whatever the process umask. Files that already exist keep their mode: a
file the user made is theirs, so one that group or others may read or write is only reported
(`loose_files`), with the `chmod` that fixes it.

SQLite creates the store's `-wal` and `-shm` files itself, with the mode of the database file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents, each mode 0700; existing folders are left
    as they are."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs
        os.chmod(path, PRIVATE_DIR_MODE)  # the umask may have taken bits away


def create_private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 (and its folders 0700) unless it exists; True if
    this call created it. An existing file is not touched."""
    make_private_dirs(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)  # the umask may have taken bits away
    finally:
        os.close(descriptor)
    return True


@dataclass(frozen=True, slots=True)
class LooseFile:
    """A private file that group or others may read or write."""

    path: Path
    mode: int  # the permission bits

    @property
    def fix(self) -> str:
        """The command that makes it private."""
        return f"chmod 600 {self.path}"

    @property
    def message(self) -> str:
        """One line naming the file, its mode and the fix."""
        return (
            f"{self.path} has mode {self.mode:04o}: group or others can read or write it, and "
            f"it holds personal data or a secret; fix it with `{self.fix}`"
        )


def loose_files(paths: Iterable[Path]) -> list[LooseFile]:
    """Those of `paths` that exist and that group or others may read or write."""
    found = []
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and mode & _SHARED_BITS:
            found.append(LooseFile(path, stat.S_IMODE(mode)))
    return found
