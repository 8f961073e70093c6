"""Backing up a PostgreSQL state store with the connector's own commands, and restoring it.

`state backup` reads the whole store in one REPEATABLE READ transaction (one moment of every
table, whatever the replicas write meanwhile) into a new SQLite file, with the same schema
version and the same copying code as `state migrate` (row counts compared): the backup of a
PostgreSQL store is a SQLite state store, checked and restored like any other backup.

`state restore` loads such a file (or a SQLite store's backup), brought up to this version's
schema, into the configured PostgreSQL store: in one transaction, the tables are emptied, every
row copied and counted, the installation's secret recorded and the restore written in the
store's run marker (`state.run_marker`), so that the next run, on whichever replica, recovers
ownership. Webhook events the store holds that the backup does not, and that were not processed
yet, are kept: an event answered 202 is never lost by a restore.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from connector.private_files import create_private_file
from connector.state.address import PostgresAddress
from connector.state.database import Database, connect
from connector.state.records import StateError
from connector.state.schema import MIGRATIONS, apply
from connector.state.store import StateStore
from connector.state.transfer import copy_rows

# The columns of the inbox a restore keeps for events received after the backup (the rest
# take their defaults: not claimed, not processed).
_EVENT_COLUMNS = (
    "event_id, received_at, type, organisation_code, employee_id, record, record_digest, "
    "attempts, last_error"
)


def backup_postgres(source: PostgresAddress, to: Path) -> dict[str, int]:
    """Copy the PostgreSQL store at `source` into the new SQLite file `to` (mode 0600), from
    one snapshot; rows per table. StateError, and no file left, when it cannot."""
    reader = connect(source, read_only=True)
    try:
        reader.begin_snapshot()
        version = reader.schema_version()
        if not version:
            raise StateError(f"no state store in {source}: nothing to back up")
        if version > len(MIGRATIONS):
            raise StateError(f"state store {source} is from a newer scim-connector")
        try:
            create_private_file(to)
        except OSError as exc:
            raise StateError(f"cannot create the backup {to}: {exc.strerror or exc}") from None
        try:
            rows = _write_copy(reader, to, version)
        except OSError as exc:
            with contextlib.suppress(OSError):
                to.unlink()
            raise StateError(f"cannot write the backup {to}: {exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                to.unlink()
            raise
    finally:
        reader.close()
    return rows


def _write_copy(reader: Database, to: Path, version: int) -> dict[str, int]:
    writer = connect(to)
    try:
        writer.begin()
        try:
            for migration in MIGRATIONS[:version]:  # the schema of the store, as it is
                apply(migration, writer)
            writer.set_schema_version(version)
            rows = copy_rows(reader, writer)
        except BaseException:
            writer.rollback()
            raise
        writer.commit()
        writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        writer.close()
    return rows


def restore_postgres(
    source: Path, target: PostgresAddress, fingerprint: str, secret_name: str, reason: str
) -> dict[str, int]:
    """Replace the contents of the PostgreSQL store at `target` by the SQLite store `source`
    (of this version's schema; call with the sync lock held), recording the state secret's
    `fingerprint` and, in the run marker, that the next run recovers (`reason`); rows per
    table. Nothing changes when it fails (StateError)."""
    StateStore.open(target).close()  # this version's schema
    reader, writer = connect(source, read_only=True), connect(target)
    try:
        store = StateStore(writer)
        with store.transaction():
            tables = writer.tables()
            writer.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            kept = _events_after_backup(reader, writer)
            writer.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
            rows = copy_rows(reader, writer)
            writer.executemany(
                f"INSERT INTO inbox ({_EVENT_COLUMNS}) VALUES "
                f"({', '.join('?' for _ in _EVENT_COLUMNS.split(','))})",
                kept,
            )
            store.claim_secret(fingerprint, secret_name)
            store.mark_restored(reason)
    finally:
        reader.close()
        writer.close()
    return rows


def _events_after_backup(reader: Database, writer: Database) -> list[tuple[object, ...]]:
    """The events waiting in the store at `writer` that the backup does not hold."""
    backed_up = {str(event_id) for (event_id,) in reader.execute("SELECT event_id FROM inbox")}
    waiting = writer.execute(
        f"SELECT {_EVENT_COLUMNS} FROM inbox WHERE processed_at IS NULL ORDER BY rowid"
    ).fetchall()
    return [tuple(row) for row in waiting if str(row[0]) not in backed_up]
