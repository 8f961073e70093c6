"""What every part of the state store shares: its connection, its clock and its transactions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from connector.state.database import Database
from connector.state.records import Clock, _utc_now


class StoreBase:
    """A connection to one state store (SQLite or PostgreSQL), with its clock."""

    def __init__(self, db: Database, clock: Clock = _utc_now) -> None:
        self._db = db
        self._clock = clock

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the enclosed writes atomically.

        Re-entrant: a transaction opened inside another joins it, and only the outermost one
        commits (or, on an exception, rolls back everything). Never await inside one: the
        connection is shared, so another task's writes would join it.
        """
        if self._db.in_transaction:
            yield
            return
        self._db.begin()
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def _now(self) -> str:
        return stamp(self._clock())


def stamp(moment: dt.datetime) -> str:
    """A moment as the store keeps it: UTC, ISO 8601, milliseconds (sorts as text)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
