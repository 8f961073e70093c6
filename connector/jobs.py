"""The jobs behind the CLI commands: they read inputs, call the pure core and build a Report.

This is the imperative shell around `people`, `mapping`, `plan` and `safety`: files, the state
store and (for sync) the network are touched here and nowhere in the core.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from connector.apply import Applier
from connector.config import Settings
from connector.hr.read import ReadPolicy, read_hr
from connector.hr.records import HrInput, Warning_
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import DesiredState, Mapping, desired_state, load_mapping, use_acmidm
from connector.people import people_from_input
from connector.plan import OnMissing, Plan, make_plan
from connector.report import Report
from connector.safety import Thresholds, Trip, backup_gaps, check_plan
from connector.state import StateLock, StateStore, lock_path
from connector.target.connect import connect
from connector.target.retry import RetryPolicy


def today(settings: Settings) -> dt.date:
    """Today's date in the configured time zone."""
    return dt.datetime.now(ZoneInfo(settings.lifecycle.timezone)).date()


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time: `20261129T072830Z-3fa2c1`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything read from disk for one run."""

    hr: HrInput
    mapping: Mapping


def read_inputs(settings: Settings) -> Inputs:
    """Read the mapping and the HR source (raises ConfigError / InputError if unusable)."""
    mapping = load_mapping(settings.mapping.file)
    policy = ReadPolicy(
        externals_require_end_date=settings.externals.require_end_date,
        externals_max_days=settings.externals.max_days,
    )
    hr = read_hr(
        settings.source.path,
        policy,
        known_rights=mapping.right_names,
        grants_path=settings.source.grants,
    )
    return Inputs(hr=hr, mapping=mapping)


def thresholds(settings: Settings) -> Thresholds:
    """The safety thresholds from configuration."""
    s = settings.safety
    return Thresholds(
        max_deactivations_count=s.max_deactivations_count,
        max_deactivations_percent=s.max_deactivations_percent,
        max_withdrawals_count=s.max_withdrawals_count,
        max_withdrawals_percent=s.max_withdrawals_percent,
        percent_applies_from=s.percent_applies_from,
    )


def validate(settings: Settings, run_id: str, as_of: dt.date) -> Report:
    """Read config, mapping and HR input and report every rejected row; contacts nobody."""
    inputs = read_inputs(settings)
    report = Report(run_id=run_id, command="validate", as_of=as_of, dry_run=True)
    report.rejected = list(inputs.hr.rejected)
    report.warnings = list(inputs.hr.warnings)
    people = people_from_input(inputs.hr)
    report.extra["people"] = len(people)
    report.extra["records"] = len(inputs.hr.records)
    report.extra["grants"] = len(inputs.hr.grants)
    return report


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
    store = StateStore.open_read_only(settings.state.path)
    if store is None:
        return KnownState()
    try:
        return store.load_known()
    finally:
        store.close()


def make_planned(
    settings: Settings,
    inputs: Inputs,
    known: KnownState,
    as_of: dt.date,
    target_has_acmidm: bool,
) -> Planned:
    """Merge, map, plan and check: the pure core, called with what the shell gathered."""
    keyring = Keyring(settings.state_secret())
    desired = desired_state(
        people_from_input(inputs.hr),
        inputs.mapping,
        known,
        keyring,
        as_of,
        provision_days_before_start=settings.lifecycle.provision_days_before_start,
        with_acmidm=use_acmidm(inputs.mapping, target_has_acmidm),
        held_national_ids=frozenset(inputs.hr.rejected_national_ids),
        held_employee_keys=frozenset(inputs.hr.rejected_keys),
    )
    plan = make_plan(
        desired,
        known,
        as_of,
        on_missing=OnMissing(settings.lifecycle.on_missing),
        delete_after_days=settings.lifecycle.delete_after_days,
    )
    trips = check_plan(plan, known, thresholds(settings))
    return Planned(inputs=inputs, known=known, desired=desired, plan=plan, trips=trips)


def plan_report(planned: Planned, report: Report, min_holders: int) -> Report:
    """Fill a report with a plan's counts, rejections and warnings."""
    report.plan = planned.plan
    report.counts = planned.plan.counts()
    report.rejected = list(planned.inputs.hr.rejected)
    report.warnings = list(planned.inputs.hr.warnings)
    for label in sorted(planned.plan.held.values()):
        report.warnings.append(
            Warning_(
                kind="held",
                message=f"person {label} left unchanged: some of their HR rows were rejected",
            )
        )
    for gap in backup_gaps(planned.desired, min_holders):
        report.warnings.append(Warning_(kind="backup_holders", message=gap.message))
    for trip in planned.trips:
        report.warnings.append(Warning_(kind="safety", message=trip.message))
    return report


def plan(settings: Settings, run_id: str, as_of: dt.date) -> Report:
    """What a sync would change; writes nothing anywhere."""
    inputs = read_inputs(settings)
    known = known_state(settings)
    target_has_acmidm = settings.target.capabilities.acmidm_extension is not False
    planned = make_planned(settings, inputs, known, as_of, target_has_acmidm)
    report = Report(run_id=run_id, command="plan", as_of=as_of, dry_run=True)
    return plan_report(planned, report, settings.safety.min_holders)


async def sync(
    settings: Settings,
    run_id: str,
    as_of: dt.date,
    *,
    dry_run: bool = False,
    force: bool = False,
    command: str = "sync",
) -> Report:
    """Plan, check, apply and record: the main job."""
    inputs = read_inputs(settings)
    report = Report(run_id=run_id, command=command, as_of=as_of, dry_run=dry_run)
    with StateLock(lock_path(settings.state.path)):
        store = StateStore.open(settings.state.path)
        try:
            async with connect(settings) as client:
                known = store.load_known()
                planned = make_planned(
                    settings, inputs, known, as_of, client.capabilities.acmidm_extension
                )
                plan_report(planned, report, settings.safety.min_holders)
                report.extra["planned"] = planned.plan.counts()
                if planned.trips and not force:
                    report.safety_stopped = True
                    return report
                if dry_run:
                    return report
                store.begin_run(run_id, command, as_of, dry_run)
                applier = Applier(
                    client=client,
                    store=store,
                    run_id=run_id,
                    retry=RetryPolicy(),
                    concurrency=settings.target.concurrency,
                    batch_size=settings.target.membership_batch_size,
                )
                result = await applier.apply(planned.plan, known)
                report.counts = result.counts()
                report.failures = result.failures
                report.extra["adopted"] = result.adopted
                report.extra["retries"] = applier.retry.retries
                status = "failed" if result.failures else "done"
                store.finish_run(run_id, status, report.counts, report.exit_code)
                return report
        finally:
            store.close()
