"""The run marker kept in the store itself, which every replica of a PostgreSQL store shares:
whether the store is older than what the connector did (`ownership.recovery_reason`).

A file beside the store (`<path>.last-run`, `state.backup`) names the last run a machine began;
it is per machine and lost with a container. The store's own marker (the one-row table
`run_marker`) says it for every replica, and it survives what a restore does to the store:

- a restore made with `scim-connector state restore`, or recorded after a restore made with the
  database's own tools (`scim-connector state restored`), writes why in the marker (`recover`);
  the next run that begins writing recovers ownership and clears it;
- on PostgreSQL, each run that begins writing records in the marker the transaction writing it
  and the server's timeline. A dump loaded back (pg_restore, psql, a logical copy) writes every
  row again in another transaction, so the marker's row is no longer the one the connector
  wrote (its `xmin` differs from the transaction it recorded); a point-in-time recovery (or a
  standby promoted) runs on a new timeline. Either way the store may lack what was done since,
  and the next run recovers. Restoring a copy of the server's files (a disk snapshot) shows
  neither: record it with `scim-connector state restored`.
"""

from __future__ import annotations

from connector.state.base import StoreBase
from connector.state.database import POSTGRESQL
from connector.state.records import StateError

_XIDS = 4294967296  # `txid_current()` counts epochs; a row's `xmin` is the 32-bit part

RELOADED = (
    "the state store is older than the connector's last run (its database was loaded from a "
    "dump or copied since that run: pg_restore?)"
)
NEW_TIMELINE = (
    "the state store may be older than the connector's last run (its database is on another "
    "timeline since that run: restored to a point in time, or a standby promoted)"
)


class StoredRunMarker(StoreBase):
    """The StateStore's run marker (see the module's description)."""

    def mark_run_began(self, run_id: str) -> None:
        """Record that run `run_id` begins writing to the target with this store (and that a
        recovery, if one was due, has been done)."""
        timeline = self._timeline()
        if self._db.dialect.name == POSTGRESQL:
            written_in = f"(txid_current() % {_XIDS})::text || '/' || ?"
            parameters: tuple[str, ...] = (run_id, timeline or "")
        else:
            written_in, parameters = "NULL", (run_id,)
        self._db.execute(
            "INSERT INTO run_marker (id, run_id, written_in, recover) "
            f"VALUES (1, ?, {written_in}, NULL) ON CONFLICT (id) DO UPDATE SET "
            "run_id = excluded.run_id, written_in = excluded.written_in, recover = NULL",
            parameters,
        )

    def mark_restored(self, reason: str) -> None:
        """Record that the store was restored: the next run that begins writing recovers
        ownership, saying `reason`."""
        self._db.execute(
            "INSERT INTO run_marker (id, recover) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET recover = excluded.recover",
            (reason,),
        )

    def last_run_began(self) -> str | None:
        """The last run that began writing with this store, by its own marker (None: none
        recorded)."""
        row = self._db.execute("SELECT run_id FROM run_marker").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def restored_reason(self) -> str | None:
        """Why the store may be older than the connector's last run, by its own marker (None:
        nothing says so)."""
        postgres = self._db.dialect.name == POSTGRESQL
        xmin = "xmin::text" if postgres else "NULL"
        row = self._db.execute(f"SELECT recover, written_in, {xmin} FROM run_marker").fetchone()
        if row is None:
            return None
        recover, written_in, row_xmin = row
        if recover:
            return str(recover)
        if not postgres or not written_in:  # SQLite, or a store copied from SQLite since
            return None
        xid, _, timeline = str(written_in).partition("/")
        if xid != str(row_xmin):
            return RELOADED
        current = self._timeline()
        if timeline and current and current != timeline:
            return NEW_TIMELINE
        return None

    def _timeline(self) -> str | None:
        """PostgreSQL's current timeline (None on SQLite, or where the server does not say,
        e.g. a managed service that hides its WAL: then a point-in-time recovery is not
        noticed by itself)."""
        if self._db.dialect.name != POSTGRESQL or self._db.in_transaction:
            return None
        try:
            row = self._db.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        except StateError:
            return None
        return str(row[0])[:8]
