"""What the jobs share: the inputs read (HR rows merged into people, the mapping), the state
store's files and profile as they are, the desired state mapped from them, and the plan with
its safety checks: the shell around the pure core."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import structlog

from connector.collector import building as building
from connector.collector import job_memory as job_memory
from connector.config import Settings
from connector.desired import desired_state
from connector.hr.columns import Header, missing_columns
from connector.hr.read import ReadPolicy, read_hr
from connector.hr.records import HrInput, Rejection, RowHold, Warning_, rows_text
from connector.identity import shared_emails
from connector.keys import Keyring
from connector.known import KnownState, PushedRelation
from connector.mapping import (
    DesiredState,
    Mapping,
    load_mapping,
    use_acmidm,
)
from connector.people import Person, people_from_input
from connector.people_display import EMPTY_DIRECTORY, directory_for
from connector.plan import OnMissing, Plan, make_plan
from connector.private_files import LooseFile, loose_files
from connector.report import Report
from connector.safety import Thresholds, Trip, backup_gaps, check_plan
from connector.state import CorrelationCase, StateStore, lock_path, store_files
from connector.target.connect import target_key
from connector.target.fit import TargetFit
from connector.target.profile import TargetProfile

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything read from disk for one run: the people, merged, and what was rejected.

    The HR rows themselves are not kept once merged into people (at 150,000 people they take
    about as much memory as everything else a run holds).
    """

    people: dict[str, Person]  # by national number digits
    mapping: Mapping
    rejected: list[Rejection]
    warnings: list[Warning_]
    holds: tuple[RowHold, ...]  # what each rejected row touches: kept as last pushed
    records: int  # accepted HR rows
    grants: int  # accepted grant rows
    columns: dict[str, Header]  # the columns each file had ("hr", "grants")

    @classmethod
    def of(cls, hr: HrInput, mapping: Mapping) -> Inputs:
        """Merge what was read into people."""
        people = people_from_input(hr)
        return cls(
            people=people,
            mapping=mapping,
            rejected=list(hr.rejected),
            warnings=[*hr.warnings, *shared_emails(people)],
            holds=tuple(hr.holds),
            records=len(hr.records),
            grants=len(hr.grants),
            columns=dict(hr.columns),
        )


def read_inputs(settings: Settings) -> Inputs:
    """Read the mapping and the HR source (raises ConfigError / InputError if unusable)."""
    mapping = load_mapping(settings.mapping.file)
    policy = ReadPolicy(
        externals_require_end_date=settings.externals.require_end_date,
        externals_max_days=settings.externals.max_days,
    )
    with building():
        hr = read_hr(
            settings.source.path,
            policy,
            known_rights=mapping.right_names,
            grants_path=settings.source.grants,
        )
        return Inputs.of(hr, mapping)


def check_columns(
    inputs: Inputs, last: dict[str, tuple[str, ...]], *, accept: bool = False
) -> None:
    """Raise ColumnsMissing (exit 2) if a file lacks a contract column the last sync that
    applied its plan read, unless the change is accepted (`--accept-columns`)."""
    missing = missing_columns(inputs.columns, last)
    if missing is None:
        return
    if accept:
        log.warning("input.columns_accepted", file=missing.file, missing=list(missing.missing))
        return
    raise missing


@dataclass(frozen=True, slots=True)
class History:
    """What the state store remembers of earlier syncs that matters to the checks."""

    columns: dict[str, tuple[str, ...]]  # the input files' columns the last applied sync read
    initial_load: bool  # no sync has applied a plan yet

    @classmethod
    def of(cls, store: StateStore) -> History:
        """From an open store."""
        return cls(store.source_columns(), not store.has_applied_run())


def stored_history(settings: Settings) -> History:
    """What the state store remembers of earlier syncs, without changing anything."""
    store = StateStore.open_read_only(settings.state.location)
    if store is None:
        return History({}, initial_load=True)
    try:
        return History.of(store)
    finally:
        store.close()


def thresholds(settings: Settings) -> Thresholds:
    """The safety thresholds from configuration."""
    s = settings.safety
    return Thresholds(
        max_deactivations_count=s.max_deactivations_count,
        max_deactivations_percent=s.max_deactivations_percent,
        max_withdrawals_count=s.max_withdrawals_count,
        max_withdrawals_percent=s.max_withdrawals_percent,
        max_activations_count=s.max_activations_count,
        max_activations_percent=s.max_activations_percent,
        max_creates_count=s.max_creates_count,
        max_creates_percent=s.max_creates_percent,
        max_grants_count=s.max_grants_count,
        max_grants_percent=s.max_grants_percent,
        percent_applies_from=s.percent_applies_from,
    )


def loose_state_files(settings: Settings) -> list[LooseFile]:
    """The state store's files and its secret, those that group or others may read or write."""
    state = settings.state
    paths = [*store_files(state.path), lock_path(state.path)]
    if state.secret_file is not None:
        paths.append(state.secret_file)
    elif state.secret_env is None:
        paths.append(state.generated_secret_path)
    return loose_files(paths)


def warn_loose_state_files(settings: Settings) -> None:
    """A structlog warning for each state file others may read or write (once, at start)."""
    for loose in loose_state_files(settings):
        log.warning(
            "state.file_not_private",
            file=str(loose.path),
            mode=f"{loose.mode:04o}",
            fix=loose.fix,
        )


def permission_warnings(settings: Settings) -> list[Warning_]:
    """The report's warnings for state files others may read or write."""
    return [
        Warning_(kind="permissions", message=loose.message, file=str(loose.path))
        for loose in loose_state_files(settings)
    ]


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan with what it was made from."""

    inputs: Inputs
    known: KnownState
    desired: DesiredState
    plan: Plan
    trips: list[Trip]


def known_state(settings: Settings) -> KnownState:
    """The state store's contents, without changing them (empty when there is no store yet)."""
    store = StateStore.open_read_only(settings.state.location)
    if store is None:
        return KnownState()
    try:
        with building():
            return store.load_known()
    finally:
        store.close()


def stored_profile(settings: Settings) -> TargetProfile:
    """What the state store learned about the configured target, without changing anything."""
    store = StateStore.open_read_only(settings.state.location)
    if store is None:
        return TargetProfile()
    try:
        return store.target_profile(target_key(settings))
    finally:
        store.close()


def desire(
    settings: Settings,
    inputs: Inputs,
    known: KnownState,
    as_of: dt.date,
    target_has_acmidm: bool,
    *,
    keep_values: bool = False,
    fit: TargetFit | None = None,
) -> DesiredState:
    """Merge and map: what the target should hold on `as_of` (`keep_values`: also the values
    of people unchanged since last pushed, which reconciliation compares with the target's;
    `fit`: what the target serves and keeps)."""
    with building():
        return desired_state(
            inputs.people,
            inputs.mapping,
            known,
            keyring(settings),
            as_of,
            provision_days_before_start=settings.lifecycle.provision_days_before_start,
            with_acmidm=use_acmidm(inputs.mapping, target_has_acmidm),
            holds=inputs.holds,
            keep_values=keep_values,
            fit=fit or TargetFit(),
            pushed=lambda keys: pushed_relations(settings, keys),
        )


def stored_cases(settings: Settings) -> list[CorrelationCase]:
    """The open correlation cases of the state store, without changing anything."""
    store = StateStore.open_read_only(settings.state.location)
    if store is None:
        return []
    try:
        return store.cases("open")
    finally:
        store.close()


def pushed_relations(
    settings: Settings, keys: frozenset[str]
) -> dict[str, tuple[PushedRelation, ...]]:
    """The work relations the state store recorded as last pushed for these people."""
    store = StateStore.open_read_only(settings.state.location)
    if store is None:
        return {}
    try:
        return store.pushed_relations(keys)
    finally:
        store.close()


def keyring(settings: Settings) -> Keyring:
    """The keyring of this installation (its secret from config or beside the state store)."""
    return Keyring(settings.state_secret())


def secret_name(settings: Settings) -> str:
    """Where this installation's state secret comes from, for messages (never the secret)."""
    state = settings.state
    if state.secret_env is not None:
        return f"state.secret_env {state.secret_env}"
    if state.secret_file is not None:
        return f"state.secret_file {state.secret_file}"
    return f"the generated secret {state.generated_secret_path}"


def make_planned(
    settings: Settings,
    inputs: Inputs,
    desired: DesiredState,
    known: KnownState,
    as_of: dt.date,
    only: frozenset[str] | None = None,
    *,
    initial_load: bool = False,
) -> Planned:
    """Plan and check: the pure core, on what the shell gathered (`only`: just these people;
    `initial_load`: no sync has applied a plan yet, so additions are not checked).

    `Planned.desired` stays the whole desired state: back-up holders are counted over everyone.
    """
    scoped, scoped_known = desired, known
    if only is not None:
        scoped = replace(
            desired,
            users={k: u for k, u in desired.users.items() if k in only},
            held={k: label for k, label in desired.held.items() if k in only},
            vanished={k: u for k, u in desired.vanished.items() if k in only},
            hold_notes={k: n for k, n in desired.hold_notes.items() if k in only},
        )
        scoped_known = replace(known, users={k: u for k, u in known.users.items() if k in only})
    plan = make_plan(
        scoped,
        scoped_known,
        as_of,
        on_missing=OnMissing(settings.lifecycle.on_missing),
        delete_after_days=settings.lifecycle.delete_after_days,
    )
    trips = check_plan(
        plan,
        known,
        thresholds(settings),
        desired=scoped,
        hr_rows=inputs.records,
        initial_load=initial_load,
    )
    return Planned(inputs=inputs, known=scoped_known, desired=desired, plan=plan, trips=trips)


def plan_report(planned: Planned, report: Report, min_holders: int) -> Report:
    """Fill a report with a plan's counts, rejections and warnings."""
    report.plan = planned.plan
    report.counts = planned.plan.counts()
    report.rejected = list(planned.inputs.rejected)
    report.warnings[:0] = planned.inputs.warnings
    noted = planned.plan.hold_notes
    for key, label in sorted(planned.plan.held.items(), key=lambda item: item[1]):
        if key not in noted:
            rows = planned.desired.held_rows.get(key, ())
            report.warnings.append(
                Warning_(
                    kind="held",
                    message=f"person {label} left unchanged: all their HR rows were rejected"
                    + (f" ({rows_text(rows)})" if rows else ""),
                    file=rows[0].file if rows else None,
                    row=rows[0].row if rows else None,
                    person=label,
                )
            )
    for label, notes in sorted(noted.values(), key=lambda item: item[0]):
        for note in notes:
            why = note.why
            report.warnings.append(
                Warning_(
                    kind="held",
                    message=f"person {label}: {note.what}, because {why}",
                    file=why.file,
                    row=why.row,
                    field=why.field,
                    person=label,
                )
            )
    gaps = backup_gaps(planned.desired, min_holders)
    named = directory_for((), planned.inputs.people.values()) if gaps else EMPTY_DIRECTORY
    for gap in gaps:
        where = named.organisation(gap.organisation_code)
        report.warnings.append(Warning_(kind="backup_holders", message=gap.text(where)))
    for trip in planned.trips:
        report.warnings.append(Warning_(kind="safety", message=trip.message))
    if planned.trips:
        report.extra["safety"] = [
            {
                "what": trip.what,
                "organisation": trip.organisation,
                "threshold": trip.threshold,
                "planned": trip.planned,
                "managed": trip.managed,
            }
            for trip in planned.trips
        ]
    return report
