"""The jobs behind the CLI commands: they read inputs, call the pure core and build a Report.

This is the imperative shell around `people`, `mapping`, `plan` and `safety`: files, the state
store and (for sync) the network are touched here and nowhere in the core. What the jobs share
(inputs, the desired state, planning) is `connector.planning`; `sync` and `resync` are
`connector.syncing`; both are re-exported here, the one module the CLI and the service call.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from connector.config import Settings
from connector.correlation import hold_correlated, possible_cases, report_cases
from connector.errors import ConfigError, UsageError
from connector.hr.records import EmployeeKey
from connector.mapping import ACMIDM
from connector.nationalid import InvalidNationalId, parse_national_id
from connector.planning import (
    Inputs,
    Planned,
    building,
    check_columns,
    desire,
    job_memory,
    keyring,
    known_state,
    loose_state_files,
    make_planned,
    permission_warnings,
    plan_report,
    read_inputs,
    secret_name,
    stored_cases,
    stored_history,
    stored_profile,
    thresholds,
    warn_loose_state_files,
)
from connector.report import Report
from connector.selection import Selection, SelectionError
from connector.state import (
    Approval,
    JournalEntry,
    PostgresAddress,
    StateStore,
    sync_lock,
    transfer,
)
from connector.state import backup as state_backup
from connector.syncing import ProgressSink, Run, learned, sync
from connector.target.connect import retry_policy, target_key

log = structlog.get_logger(__name__)

__all__ = [
    "Inputs",
    "Planned",
    "ProgressSink",
    "Run",
    "Selection",
    "SelectionError",
    "approve",
    "audit_trail",
    "building",
    "desire",
    "job_memory",
    "keyring",
    "known_state",
    "learned",
    "loose_state_files",
    "make_planned",
    "new_run_id",
    "permission_warnings",
    "plan",
    "plan_report",
    "read_inputs",
    "retry_policy",
    "stored_profile",
    "sync",
    "target_key",
    "thresholds",
    "today",
    "validate",
    "warn_loose_state_files",
]


def today(settings: Settings) -> dt.date:
    """Today's date in the configured time zone."""
    return dt.datetime.now(ZoneInfo(settings.lifecycle.timezone)).date()


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time: `20261129T072830Z-3fa2c1`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate(
    settings: Settings, run_id: str, as_of: dt.date, *, accept_columns: bool = False
) -> Report:
    """Read config, mapping and HR input and report every rejected row; contacts nobody.

    Checks the files' columns as a sync does (`check_columns`), reading the state store
    read-only: an export a sync would refuse does not pass validation."""
    loose = permission_warnings(settings)  # as found: reading the store adds its sidecars
    with job_memory():
        inputs = read_inputs(settings)
        check_columns(inputs, stored_history(settings).columns, accept=accept_columns)
    report = Report(run_id=run_id, command="validate", as_of=as_of, dry_run=True)
    report.rejected = list(inputs.rejected)
    report.warnings = [*loose, *inputs.warnings]
    report.extra["people"] = len(inputs.people)
    report.extra["records"] = inputs.records
    report.extra["grants"] = inputs.grants
    return report


def plan(
    settings: Settings, run_id: str, as_of: dt.date, *, accept_columns: bool = False
) -> Report:
    """What a sync would change; writes nothing anywhere (`accept_columns`: plan with input
    files that lack a column the last applied sync read; see `check_columns`)."""
    with job_memory():
        inputs = read_inputs(settings)
        history = stored_history(settings)
        check_columns(inputs, history.columns, accept=accept_columns)
        known = known_state(settings)
        profile = stored_profile(settings)
        target_has_acmidm = settings.target.capabilities.acmidm_extension is not False
        if profile.user_extensions is not None and target_has_acmidm:
            target_has_acmidm = ACMIDM.casefold() in profile.user_extensions
        desired = desire(settings, inputs, known, as_of, target_has_acmidm, fit=profile.fit())
        cases = stored_cases(settings)
        desired = hold_correlated(desired, known, cases)
        planned = make_planned(
            settings, inputs, desired, known, as_of, initial_load=history.initial_load
        )
        report = Report(run_id=run_id, command="plan", as_of=as_of, dry_run=True)
        report.warnings.extend(permission_warnings(settings))
        plan_report(planned, report, settings.safety.min_holders)
        report_cases(report, cases)
        report.warnings.extend(possible_cases(planned.plan, known))
        report.name_people(inputs.people.values(), settings.report.names)
    return report


def audit_trail(
    settings: Settings,
    *,
    person: str | None = None,
    employee: EmployeeKey | None = None,
    run_id: str | None = None,
) -> list[JournalEntry]:
    """The journal entries of one person (by national number or employee key) or one run."""
    store = StateStore.open_read_only(settings.state.location)
    if store is None:
        return []
    try:
        if run_id is not None:
            return store.history(run_id=run_id)
        if person is not None:
            try:
                key = keyring(settings).person_key(parse_national_id(person).digits)
            except InvalidNationalId as exc:
                raise SelectionError(f"--person: {exc}") from None
            return store.history(person_key=key)
        assert employee is not None
        managed = store.person_for_employee(employee)
        # Someone the store links to no account (held in a correlation case, never created,
        # forgotten): found by the employee key their journal entries and case carry.
        keys = [managed] if managed else store.journalled_people(str(employee))
        entries = [entry for key in keys for entry in store.history(person_key=key)]
        return sorted(entries, key=lambda entry: entry.at) if len(keys) > 1 else entries
    finally:
        store.close()


def approve(settings: Settings, run_id: str) -> Approval:
    """Approve, once, the plan of a run that a safety check stopped (raises ApprovalRefused)."""
    store = StateStore.open(settings.state.location)
    try:
        return store.approve(run_id, settings.safety.approval_valid_for)
    finally:
        store.close()


def backup_state(settings: Settings, to: Path) -> None:
    """Copy the state store to `to` while it may be in use (SQLite online backup; PostgreSQL:
    one snapshot, into a SQLite file); `to`'s folder must exist (a typo in it is an error, not
    a new folder)."""
    if not to.parent.is_dir():
        what = "is not a folder" if to.parent.exists() else "does not exist"
        raise UsageError(f"{to.parent} {what}: create the folder first, or choose another")
    state_backup.backup(settings.state.location, to)


def migrate_state(settings: Settings, to: PostgresAddress) -> transfer.Transferred:
    """Copy the SQLite state store into the empty PostgreSQL database `to` (StateError,
    ConfigError when the configured store is not a SQLite one)."""
    if settings.state.url is not None:
        raise ConfigError("state.url", "the state store is in PostgreSQL already")
    return transfer.copy_to_postgres(settings.state.path, to)


def restore_state(
    settings: Settings, backup_file: Path, *, target_moved: bool = False
) -> list[state_backup.RestoreWarning]:
    """Replace the state store by a backup of this installation (its state secret and target;
    `target_moved`: another target address is accepted, with a warning), with no sync running
    (the state lock held); the next run recovers ownership of what was done since the backup.
    Returns warnings."""
    if backup_file.is_dir():
        raise UsageError(f"{backup_file} is a folder: give the backup file `state backup` wrote")
    owner = state_backup.Owner(
        keyring(settings).fingerprint(), secret_name(settings), target_key(settings), target_moved
    )
    with sync_lock(settings.state.location):
        return state_backup.restore(backup_file, settings.state.location, owner, _now(settings))


def mark_restored(settings: Settings) -> None:
    """Record that the state store was restored by other means than `state restore` (the
    database's own tools, a copy of its files): the next run recovers ownership."""
    state_backup.mark_restored(settings.state.location, _now(settings))


def _now(settings: Settings) -> str:
    """This moment in the configured time zone, as records show it."""
    return dt.datetime.now(settings.lifecycle.zone()).isoformat(timespec="seconds")
