"""Marks of writes whose outcome is unknown (`known.Uncertain`), kept in the state store.

A write is marked before it is sent, in its own commit (so a run killed while it is in flight
leaves the mark), and the mark is cleared when the write's answer has been checked: done, or
refused by the target. A write whose answer never came (connection lost after sending, a
timeout, retries given up on a target that does not answer) keeps its mark; the next run reads
what it touched back from the target and records the truth (`StateStore.settle`), then clears it.
"""

from __future__ import annotations

from collections.abc import Iterable

from connector.known import Uncertain
from connector.state.database import Database

USER = ""  # `right_name` of a mark about the user itself

Mark = tuple[str, str | None, str]
"""(person key, right or None for the user itself, the write's kind)."""


class UncertainMarks:
    """The StateStore's marks of uncertain writes (see the module's description)."""

    _db: Database

    def mark_uncertain(self, marks: Iterable[Mark], run_id: str) -> None:
        """Mark writes as uncertain until their answer is checked (a later mark replaces one
        on the same user or membership)."""
        self._db.executemany(
            "INSERT INTO uncertain VALUES (?, ?, ?, ?) ON CONFLICT(person_key, right_name) "
            "DO UPDATE SET kind = excluded.kind, run_id = excluded.run_id",
            [(key, right or USER, kind, run_id) for key, right, kind in marks],
        )

    def clear_uncertain(self, key: str, right: str | None = None) -> None:
        """The write on this user (or, with `right`, on this membership) is known now."""
        self._db.execute(
            "DELETE FROM uncertain WHERE person_key = ? AND right_name = ?", (key, right or USER)
        )

    def uncertain(self) -> Uncertain:
        """Every write whose outcome is not known yet."""
        users, memberships = {}, {}
        for key, right, kind in self._db.execute(
            "SELECT person_key, right_name, kind FROM uncertain"
        ):
            if right == USER:
                users[key] = kind
            else:
                memberships[(key, right)] = kind
        return Uncertain(users=users, memberships=memberships)
