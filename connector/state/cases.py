"""The state store's correlation cases: people held because an account found for them may not
be adopted without a human's word (`connector.identity`), and how each was resolved.

A case is `open` from the run that finds it until `scim-connector resolve` says what to do
(`resolved`: link to an account, or a new account); the run that does it `closes` it. Every
sync looks for the person of an open case again: a run that finds nothing against them any
more closes it too, one that still does updates it. One case per person is not closed at a
time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.state.database import Database
from connector.state.records import CorrelationCase, StateError

RESOLUTIONS = ("link", "new_account")

_COLUMNS = (
    "person_key, label, name, employee_keys, scim_id, account_user_name, account_external_id, "
    "account_national_id, reason, status, resolution, link_scim_id, opened_at, run_id"
)


def _case(row: tuple[Any, ...]) -> CorrelationCase:
    values = list(row)
    values[3] = tuple(values[3].split()) if values[3] else ()
    return CorrelationCase(*values)


class CorrelationCases:
    """Correlation cases, kept by the StateStore (which gives `_db` and `_now`)."""

    _db: Database
    _now: Callable[[], str]

    def open_case(self, case: CorrelationCase, run_id: str) -> None:
        """Record a correlation case as open (replacing the person's earlier one not closed; a
        case still open keeps when, and by which run, it was opened)."""
        self._db.execute(
            f"INSERT INTO correlation_cases ({_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', NULL, NULL, ?, ?) "
            "ON CONFLICT (person_key) WHERE status != 'closed' DO UPDATE SET "
            "label = excluded.label, name = excluded.name, employee_keys = excluded.employee_keys, "
            "scim_id = excluded.scim_id, account_user_name = excluded.account_user_name, "
            "account_external_id = excluded.account_external_id, "
            "account_national_id = excluded.account_national_id, reason = excluded.reason, "
            "status = 'open', resolution = NULL, link_scim_id = NULL, "
            "opened_at = CASE WHEN correlation_cases.status = 'open' "
            "THEN correlation_cases.opened_at ELSE excluded.opened_at END, "
            "run_id = CASE WHEN correlation_cases.status = 'open' "
            "THEN correlation_cases.run_id ELSE excluded.run_id END",
            (
                case.person_key,
                case.label,
                case.name,
                " ".join(case.employee_keys),
                case.scim_id,
                case.account_user_name,
                case.account_external_id,
                case.account_national_id,
                case.reason,
                self._now(),
                run_id,
            ),
        )

    def cases(self, status: str = "open") -> list[CorrelationCase]:
        """The cases with this status (`open` or `resolved`), oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM correlation_cases WHERE status = ? ORDER BY id", (status,)
        )
        return [_case(row) for row in rows]

    def case_of(self, person_key: str) -> CorrelationCase | None:
        """The person's case that is not closed, if any."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM correlation_cases WHERE person_key = ? AND status != 'closed'",
            (person_key,),
        ).fetchone()
        return _case(row) if row else None

    def case_of_employee(self, employee: str) -> CorrelationCase | None:
        """The case not closed of the person with this employee key (ORG:ID), if any."""
        for status in ("open", "resolved"):
            for case in self.cases(status):
                if employee in case.employee_keys:
                    return case
        return None

    def resolve_case(self, person_key: str, resolution: str, link_scim_id: str | None) -> None:
        """Record how a person's case is to be resolved (applied by the next run)."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution!r}")
        cursor = self._db.execute(
            "UPDATE correlation_cases SET status = 'resolved', resolution = ?, "
            "link_scim_id = ?, resolved_at = ? WHERE person_key = ? AND status != 'closed'",
            (resolution, link_scim_id, self._now(), person_key),
        )
        if cursor.rowcount != 1:
            raise StateError("no correlation case of this person is open")

    def close_case(self, person_key: str, run_id: str) -> None:
        """Record that a run did what the person's resolved case said, or found nothing against
        them any more (an open case)."""
        self._db.execute(
            "UPDATE correlation_cases SET status = 'closed', closed_at = ?, closed_by_run = ? "
            "WHERE person_key = ? AND status != 'closed'",
            (self._now(), run_id, person_key),
        )

    def person_for_account(self, scim_id: str) -> str | None:
        """The person key the store links to this SCIM id, if any (at most one)."""
        row = self._db.execute("SELECT key FROM users WHERE scim_id = ?", (scim_id,)).fetchone()
        return str(row[0]) if row else None

    def journalled_people(self, employee: str) -> list[str]:
        """The person keys whose journal entries (by their label) or correlation cases name
        this employee key (ORG:ID), latest first: how the audit trail of someone the store does
        not link to an account (held in a case, never created, forgotten) is found."""
        rows = self._db.execute(
            "SELECT person_key, label FROM journal WHERE person_key IS NOT NULL AND label LIKE ? "
            "GROUP BY person_key, label ORDER BY MAX(id) DESC",
            (f"%{employee}%",),
        )
        found = [key for key, label in rows if employee in _label_keys(label)]
        cases = self._db.execute(
            "SELECT person_key, employee_keys FROM correlation_cases ORDER BY id DESC"
        )
        found += [key for key, keys in cases if employee in (keys or "").split()]
        return list(dict.fromkeys(found))


def _label_keys(label: str | None) -> list[str]:
    """The employee keys of a label (`people_display.label_of`: `ORG:ID, ORG:ID (masked)`)."""
    keys, sep, _ = (label or "").rpartition(" (")
    return keys.split(", ") if sep else []
