"""Backing up and restoring the state store, and the run marker that shows a store is older
than the connector's last run (restored from a backup, or replaced).

The marker is a small file beside the store (`state.db.last-run`) naming the last run that
began writing to the target. A store that does not hold the run its marker names is older than
what the connector did since: the next run recovers ownership of memberships
(`connector.ownership`). A restore with `scim-connector state restore` keeps the marker (or,
when there is none, writes one naming no run), and records the restore in the store's own run
marker (`state.run_marker`), so the next run always recovers.

A SQLite store is copied with SQLite's online backup; a PostgreSQL store into a SQLite file
from one snapshot, and restored from one (`state.postgres_backup`): a backup is a SQLite state
store either way, checked the same way before it is restored.

A restore refuses another installation's backup: one made with another state secret (its
fingerprint, `state.installation`, differs) or for another target (it learned about targets, none
of them the configured one). A backup from before the fingerprint was kept is restored with a
warning, and the configured secret's fingerprint is recorded in it.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from connector.private_files import create_private_file
from connector.state.address import Location, PostgresAddress
from connector.state.installation import SECRET_FINGERPRINT, other_secret
from connector.state.postgres_backup import backup_postgres, restore_postgres
from connector.state.records import StateError
from connector.state.schema import MIGRATIONS
from connector.state.store import StateStore

RESTORED = "restored"  # the marker's content when a restore found none: no run matches it


def marker_path(path: Path) -> Path:
    """The run marker of the store at `path`."""
    return path.with_name(path.name + ".last-run")


def write_run_marker(path: Path, run_id: str) -> None:
    """Record that run `run_id` begins writing with the store at `path`."""
    marker = marker_path(path)
    create_private_file(marker)
    temporary = marker.with_name(marker.name + ".new")
    create_private_file(temporary)
    temporary.write_text(run_id + "\n", encoding="utf-8")
    temporary.replace(marker)


def read_run_marker(path: Path) -> str | None:
    """The run the marker beside the store names; None when there is no marker."""
    try:
        text = marker_path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {marker_path(path)}: {exc}") from None
    return text or None


def backup(path: Location, to: Path) -> None:
    """Copy the store at `path` to `to`, consistently while it is in use (SQLite online backup;
    PostgreSQL: one snapshot, into a SQLite file); `to` is created private (0600) and must not
    exist yet."""
    if isinstance(path, Path) and not path.exists():
        raise StateError(f"no state store at {path}")
    if to.exists():
        raise StateError(f"{to} exists already: choose a new file for the backup")
    if isinstance(path, PostgresAddress):
        backup_postgres(path, to)
        return
    _copy(path, to)


@dataclass(frozen=True, slots=True)
class RestoreWarning:
    """What a restore went on despite: `unchecked_backup` (its secret could not be checked),
    `target_moved` (restored for another target address, as asked)."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Owner:
    """The installation a restored store must belong to: the configured state secret (its
    fingerprint, and where it comes from for messages) and target."""

    fingerprint: str
    secret_name: str
    target: str
    target_moved: bool = False  # the target's address changed since: another one is accepted


def restore(backup_file: Path, path: Location, owner: Owner, at: str) -> list[RestoreWarning]:
    """Replace the store at `path` by the backup `backup_file` (call with the state lock held;
    `at`: the moment, for the record); the next run recovers ownership of what was done since
    the backup. StateError for another installation's backup; returns warnings (a backup whose
    secret cannot be checked)."""
    if not backup_file.exists():
        raise StateError(f"no backup at {backup_file}")
    _check_is_store(backup_file)
    warnings = _check_owner(backup_file, owner)
    reason = (
        "the state store is older than the connector's last run (restored from "
        f"{backup_file.name} with `scim-connector state restore` at {at})"
    )
    if isinstance(path, PostgresAddress):
        with tempfile.TemporaryDirectory(prefix="scim-connector-restore-") as folder:
            copy = Path(folder) / "backup.db"
            _copy(backup_file, copy)  # the backup itself stays as it is
            StateStore.open(copy).close()  # brought up to date, if from an older version
            restore_postgres(copy, path, owner.fingerprint, owner.secret_name, reason)
        return warnings
    if read_run_marker(path) is None:
        write_run_marker(path, RESTORED)
    _copy(backup_file, path)
    store = StateStore.open(path)  # brought up to date, if the backup is from an older version
    try:
        store.claim_secret(owner.fingerprint, owner.secret_name)
        store.mark_restored(reason)
    finally:
        store.close()
    return warnings


def mark_restored(where: Location, at: str) -> None:
    """Record in the store at `where` that it was restored by other means than `state restore`
    (PostgreSQL's tools, a copy of its files): the next run recovers ownership."""
    if isinstance(where, Path) and not where.exists():
        raise StateError(f"no state store at {where}")
    store = StateStore.open(where)
    try:
        store.mark_restored(
            "the state store is older than the connector's last run (recorded as restored "
            f"with `scim-connector state restored` at {at})"
        )
    finally:
        store.close()


def _check_is_store(path: Path) -> None:
    """Raise StateError unless `path` is a state store this version can use."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute("SELECT count(*) FROM runs").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StateError(f"{path} is not a state store: {exc}") from None
    if version > len(MIGRATIONS):
        raise StateError(f"{path} is from a newer scim-connector")


def _check_owner(backup_file: Path, owner: Owner) -> list[RestoreWarning]:
    """StateError naming what differs when the backup is another installation's; a warning
    when it cannot be told (a backup from before the secret's fingerprint was kept), or when
    it is restored for another target address, as asked (`Owner.target_moved`)."""
    fingerprint, targets = _identity(backup_file)
    if fingerprint is not None and fingerprint != owner.fingerprint:
        raise StateError(other_secret(f"the backup {backup_file}", owner.secret_name))
    warnings: list[RestoreWarning] = []
    if targets and owner.target not in targets:
        if not owner.target_moved:
            raise StateError(
                f"the backup {backup_file} is the state of another target ({', '.join(targets)}),"
                f" not of target.base_url {owner.target}: it would make the next sync change the"
                " wrong people. Restore a backup of this installation (if it is, and the "
                "target's address changed since, say so with --target-moved)"
            )
        warnings.append(
            RestoreWarning(
                "target_moved",
                f"the backup {backup_file} knew the target as {', '.join(targets)}; restored for"
                f" target.base_url {owner.target} (--target-moved): the next sync recovers"
                " ownership and reads the target's users back",
            )
        )
    if fingerprint is None:
        warnings.append(
            RestoreWarning(
                "unchecked_backup",
                f"the backup {backup_file} is from before the state secret it was made with was"
                " recorded, so it cannot be checked to be this installation's: restored, and"
                f" recorded as made with this one ({owner.secret_name}). If the next plan wants"
                " to create or deactivate people it should not, it was another installation's",
            )
        )
    return warnings


def _identity(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """The backup's state secret fingerprint (None when it has none) and its targets."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            fingerprint = None
            if "installation" in tables:
                row = db.execute(
                    "SELECT value FROM installation WHERE name = ?", (SECRET_FINGERPRINT,)
                ).fetchone()
                fingerprint = None if row is None else str(row[0])
            targets: tuple[str, ...] = ()
            if "target_profiles" in tables:
                rows = db.execute("SELECT base_url FROM target_profiles ORDER BY base_url")
                targets = tuple(str(row[0]) for row in rows)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StateError(f"{path} is not a state store: {exc}") from None
    return fingerprint, targets


def _copy(source: Path, to: Path) -> None:
    """SQLite's online backup: a consistent copy, whatever is being written meanwhile; into a
    store in use (WAL), through its own journal."""
    try:
        create_private_file(to)
        src, dst = sqlite3.connect(source), sqlite3.connect(to)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"cannot copy the state store {source} to {to}: {exc}") from None
