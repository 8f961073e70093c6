"""The state store's records: what its queries give back, and its errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError
from connector.hr.records import EmployeeKey


class StateError(ConnectorError):
    """The state store cannot be opened or is from a newer version of the connector."""


class ApprovalRefused(StateError):
    """`approve RUN_ID` cannot approve that run: unknown, not stopped, applied or superseded."""


@dataclass(frozen=True, slots=True)
class Approval:
    """An approval of a stopped run's plan: usable once, by a sync planning the same changes,
    until it expires."""

    run_id: str
    fingerprint: str
    approved_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the audit trail."""

    run_id: str
    at: str
    person: str | None  # masked label
    kind: str
    phase: str  # "intent", "done", "failed", "note"
    detail: str | None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One HR webhook event in the inbox; `processed_at` is None while it waits."""

    event_id: str
    received_at: str
    type: str
    organisation_code: str
    employee_id: str
    record: dict[str, Any] | None = None
    attempts: int = 0
    last_error: str | None = None
    processed_at: str | None = None
    run_id: str | None = None
    outcome: str | None = None

    @property
    def employee(self) -> EmployeeKey:
        """The work relation the event is about."""
        return EmployeeKey(self.organisation_code, self.employee_id)


_INBOX_COLUMNS = (
    "event_id, received_at, type, organisation_code, employee_id, record, attempts, "
    "last_error, processed_at, run_id, outcome"
)


def _inbox_event(row: tuple[Any, ...]) -> InboxEvent:
    values = list(row)
    values[5] = json.loads(values[5]) if values[5] is not None else None
    return InboxEvent(*values)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run, as the history keeps it."""

    run_id: str
    command: str
    as_of: str
    dry_run: bool
    started_at: str
    finished_at: str | None
    status: str
    exit_code: int | None


Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
