"""The jobs behind the CLI commands: they read inputs, call the pure core and build a Report.

This is the imperative shell around `people`, `mapping`, `plan` and `safety`: files, the state
store and (for sync) the network are touched here and nowhere in the core.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import structlog

from connector.apply import Applier, ApplyResult
from connector.config import Settings
from connector.errors import ConnectorError
from connector.hr.read import ReadPolicy, read_hr
from connector.hr.records import EmployeeKey, HrInput, Rejection, Warning_
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import (
    ACMIDM,
    DesiredState,
    Mapping,
    desired_state,
    load_mapping,
    use_acmidm,
)
from connector.nationalid import InvalidNationalId, mask_national_ids, parse_national_id
from connector.people import Person, people_from_input
from connector.plan import OnMissing, Plan, make_plan
from connector.private_files import LooseFile, loose_files
from connector.reconcile import Observation, observe
from connector.report import Report
from connector.safety import Thresholds, Trip, backup_gaps, check_plan
from connector.state import JournalEntry, StateLock, StateStore, lock_path, store_files
from connector.target.client import TargetClient
from connector.target.connect import EventHooks, connect, retry_policy, target_key
from connector.target.fit import TargetFit
from connector.target.profile import TargetProfile
from connector.target.retry import RetryPolicy

log = structlog.get_logger(__name__)


class SelectionError(ConnectorError):
    """A resync names someone the connector cannot find."""


def today(settings: Settings) -> dt.date:
    """Today's date in the configured time zone."""
    return dt.datetime.now(ZoneInfo(settings.lifecycle.timezone)).date()


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time: `20261129T072830Z-3fa2c1`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


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
    held_national_ids: frozenset[str]  # people behind rejected rows: left as they are
    held_employee_keys: frozenset[EmployeeKey]
    records: int  # accepted HR rows
    grants: int  # accepted grant rows

    @classmethod
    def of(cls, hr: HrInput, mapping: Mapping) -> Inputs:
        """Merge what was read into people."""
        return cls(
            people=people_from_input(hr),
            mapping=mapping,
            rejected=list(hr.rejected),
            warnings=list(hr.warnings),
            held_national_ids=frozenset(hr.rejected_national_ids),
            held_employee_keys=frozenset(hr.rejected_keys),
            records=len(hr.records),
            grants=len(hr.grants),
        )


@contextmanager
def building() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off the big, long-lived object graphs of a run.

    Reading and mapping 150,000 people makes millions of objects that all live until the
    end of the run; every collection would walk them again (measured: `validate` took 29.4 s
    with collections and 16.2 s without). The collector is paused while they are built, and
    what was built is then frozen (`gc.freeze`: set aside, in constant time) until the job
    ends (`job_memory`). Reference counting still frees everything as usual.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@contextmanager
def job_memory() -> Iterator[None]:
    """One job's scope for `building`: what it froze goes back to the collector at the end."""
    try:
        yield
    finally:
        gc.unfreeze()


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


def validate(settings: Settings, run_id: str, as_of: dt.date) -> Report:
    """Read config, mapping and HR input and report every rejected row; contacts nobody."""
    with job_memory():
        inputs = read_inputs(settings)
    report = Report(run_id=run_id, command="validate", as_of=as_of, dry_run=True)
    report.rejected = list(inputs.rejected)
    report.warnings = [*permission_warnings(settings), *inputs.warnings]
    report.extra["people"] = len(inputs.people)
    report.extra["records"] = inputs.records
    report.extra["grants"] = inputs.grants
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
        with building():
            return store.load_known()
    finally:
        store.close()


def stored_profile(settings: Settings) -> TargetProfile:
    """What the state store learned about the configured target, without changing anything."""
    store = StateStore.open_read_only(settings.state.path)
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
            held_national_ids=inputs.held_national_ids,
            held_employee_keys=inputs.held_employee_keys,
            keep_values=keep_values,
            fit=fit or TargetFit(),
        )


def keyring(settings: Settings) -> Keyring:
    """The keyring of this installation (its secret from config or beside the state store)."""
    return Keyring(settings.state_secret())


def make_planned(
    settings: Settings,
    inputs: Inputs,
    desired: DesiredState,
    known: KnownState,
    as_of: dt.date,
    only: frozenset[str] | None = None,
) -> Planned:
    """Plan and check: the pure core, on what the shell gathered (`only`: just these people).

    `Planned.desired` stays the whole desired state: back-up holders are counted over everyone.
    """
    scoped, scoped_known = desired, known
    if only is not None:
        scoped = replace(
            desired,
            users={k: u for k, u in desired.users.items() if k in only},
            held={k: label for k, label in desired.held.items() if k in only},
        )
        scoped_known = replace(known, users={k: u for k, u in known.users.items() if k in only})
    plan = make_plan(
        scoped,
        scoped_known,
        as_of,
        on_missing=OnMissing(settings.lifecycle.on_missing),
        delete_after_days=settings.lifecycle.delete_after_days,
    )
    trips = check_plan(plan, known, thresholds(settings))
    return Planned(inputs=inputs, known=scoped_known, desired=desired, plan=plan, trips=trips)


def plan_report(planned: Planned, report: Report, min_holders: int) -> Report:
    """Fill a report with a plan's counts, rejections and warnings."""
    report.plan = planned.plan
    report.counts = planned.plan.counts()
    report.rejected = list(planned.inputs.rejected)
    report.warnings[:0] = planned.inputs.warnings
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
    with job_memory():
        inputs = read_inputs(settings)
        known = known_state(settings)
        profile = stored_profile(settings)
        target_has_acmidm = settings.target.capabilities.acmidm_extension is not False
        if profile.user_extensions is not None and target_has_acmidm:
            target_has_acmidm = ACMIDM.casefold() in profile.user_extensions
        desired = desire(settings, inputs, known, as_of, target_has_acmidm, fit=profile.fit())
        planned = make_planned(settings, inputs, desired, known, as_of)
    report = Report(run_id=run_id, command="plan", as_of=as_of, dry_run=True)
    report.warnings.extend(permission_warnings(settings))
    return plan_report(planned, report, settings.safety.min_holders)


@dataclass(frozen=True, slots=True)
class Selection:
    """The people a `resync` is about: national numbers and/or employee keys."""

    national_ids: tuple[str, ...] = ()  # as typed by the user; parsed here
    employees: tuple[EmployeeKey, ...] = ()

    def person_keys(self, ring: Keyring, inputs: Inputs, store: StateStore) -> frozenset[str]:
        """The person keys selected; raises SelectionError for what matches nobody."""
        keys = set()
        for text in self.national_ids:
            try:
                keys.add(ring.person_key(parse_national_id(text).digits))
            except InvalidNationalId as exc:
                raise SelectionError(f"--person: {exc}") from None
        owners = {r.key: digits for digits, p in inputs.people.items() for r in p.relations}
        for employee in self.employees:
            digits = owners.get(employee)
            key = ring.person_key(digits) if digits else store.person_for_employee(employee)
            if key is None:
                raise SelectionError(
                    f"--employee {employee}: not in the HR input and not managed by the connector"
                )
            keys.add(key)
        return frozenset(keys)


async def sync(
    settings: Settings,
    run_id: str,
    as_of: dt.date,
    *,
    dry_run: bool = False,
    force: bool = False,
    full: bool = False,
    selection: Selection | None = None,
    command: str = "sync",
    progress: ProgressSink | None = None,
    event_hooks: EventHooks | None = None,
) -> Report:
    """Plan, check, apply and record: the main job (`selection`: a targeted resync;
    `event_hooks`: httpx2 hooks on the target's client, to observe its requests)."""
    with job_memory():
        inputs = read_inputs(settings)
        report = Report(run_id=run_id, command=command, as_of=as_of, dry_run=dry_run)
        report.warnings.extend(permission_warnings(settings))
        retry = retry_policy(settings)
        with StateLock(lock_path(settings.state.path)):
            store = StateStore.open(settings.state.path)
            try:
                if not dry_run:
                    for abandoned in store.interrupt_abandoned_runs():
                        report.warnings.append(
                            Warning_(
                                kind="interrupted_run",
                                message=f"run {abandoned} stopped before it finished; "
                                "recorded as interrupted",
                            )
                        )
                async with connect(settings, event_hooks, retry) as client:
                    before = store.target_profile(target_key(settings))
                    profile = before.discovered(
                        client.user_extensions, client.schemas_body, client.notes
                    )
                    run = Run(settings, inputs, store, client, report, retry, progress, profile)
                    await run.sync(force=force, full=full, selection=selection)
                    if not dry_run:
                        learned(run.profile, before, report)
                        store.save_target_profile(target_key(settings), run.profile)
            finally:
                store.close()
    return report


@dataclass(slots=True)
class Run:
    """One sync's collaborators, gathered by `sync`."""

    settings: Settings
    inputs: Inputs
    store: StateStore
    client: TargetClient
    report: Report
    retry: RetryPolicy
    progress: ProgressSink | None = None
    profile: TargetProfile = field(default_factory=TargetProfile)  # learned about the target

    def _approved(self, plan: Plan) -> bool:
        """True if an approval (`scim-connector approve RUN_ID`) covers exactly this plan."""
        if self.report.dry_run:
            return False
        approved = self.store.use_approval(plan.fingerprint(), self.report.run_id)
        if approved is None:
            return False
        self.report.warnings.append(
            Warning_(kind="safety_approved", message=f"applied as approved for run {approved}")
        )
        return True

    def _record_failures(self, applier: Applier, plan: Plan) -> None:
        """Count consecutive failed runs per person; warn loudly past the configured number."""
        failed = applier.failure_reasons
        succeeded = {op.person for op in plan.operations} - failed.keys()
        counts = self.store.record_run_failures(self.report.run_id, failed, succeeded)
        limit = self.settings.safety.alert_after_failed_runs
        for key, runs in sorted(counts.items()):
            if runs >= limit:
                label, reason = failed[key]
                self.report.warnings.append(
                    Warning_(
                        kind="persistent_failure",
                        message=f"{label}: failed in {runs} consecutive runs; last: {reason}",
                    )
                )

    async def sync(self, *, force: bool, full: bool, selection: Selection | None) -> None:
        """Observe (if asked), plan, check, apply and record."""
        settings, store, client, report = self.settings, self.store, self.client, self.report
        ring = keyring(settings)
        only = selection.person_keys(ring, self.inputs, store) if selection else None
        with building():
            known = store.load_known()
        has_acmidm = client.capabilities.acmidm_extension
        observing = full or only is not None
        desired = desire(
            settings,
            self.inputs,
            known,
            report.as_of,
            has_acmidm,
            keep_values=observing,
            fit=self.profile.fit(),
        )
        observation = None
        if observing:
            not_kept = self.profile.not_kept
            observation = await observe(client, known, desired, ring, only, not_kept)
            known = _merged(known, observation.known, only)
            _report_observation(report, observation)
            gone = _deleted_leavers(desired, observation, self.inputs, report.as_of)
            desired = replace(
                desired, users={k: u for k, u in desired.users.items() if k not in gone}
            )
            if not report.dry_run:
                with store.transaction():
                    for key in gone:  # not in the target, not active: nothing left to manage
                        store.forget_user(key)
        planned = make_planned(settings, self.inputs, desired, known, report.as_of, only)
        plan_report(planned, report, settings.safety.min_holders)
        report.extra["planned"] = planned.plan.counts()
        if planned.trips and not force and not self._approved(planned.plan):
            report.safety_stopped = True
            if not report.dry_run:
                report.counts = dict.fromkeys(report.counts, 0)  # none done; `planned`: the plan
                fingerprint = planned.plan.fingerprint()
                store.record_stopped(report.run_id, report.command, report.as_of, fingerprint)
                report.extra["approve"] = f"scim-connector approve {report.run_id}"
            return
        if report.dry_run:
            return
        store.begin_run(report.run_id, report.command, report.as_of, report.dry_run)
        applier = Applier(
            client=client,
            store=store,
            run_id=report.run_id,
            retry=self.retry,
            concurrency=settings.target.concurrency,
            batch_size=settings.target.membership_batch_size,
            combined_lookup=settings.target.lookup_in_one_search,
            profile=self.profile,
        )
        if self.progress is None:
            result = await applier.apply(planned.plan, known)
        else:
            result = await _with_progress(applier, planned.plan, known, self.progress)
        if observation is not None:
            _record_adopted(store, planned, observation)
        self._record_failures(applier, planned.plan)
        self.profile = applier.learned()
        report.counts = result.counts()
        report.failures = result.failures
        for scim_id, why in sorted(client.unreadable.items()):
            report.warnings.append(
                Warning_(
                    kind="unreadable",
                    message=mask_national_ids(
                        f"user {scim_id} in the target does not parse ({why}); skipped"
                    ),
                )
            )
        for note in result.notes:
            report.warnings.append(Warning_(kind="target", message=note))
        report.extra["adopted"] = result.adopted + len(observation.adopted if observation else [])
        report.extra["retries"] = self.retry.retries
        status = "failed" if result.failures else "done"
        store.finish_run(report.run_id, status, report.counts, report.exit_code)


def learned(profile: TargetProfile, before: TargetProfile, report: Report) -> None:
    """Report what this run learned about the target that earlier runs did not know (once)."""
    for news in profile.news(before):
        log.warning("target.learned", fact=news)
        report.warnings.append(Warning_(kind="target", message=news))


ProgressSink = Callable[[int, int], None]
"""Told (operations done, operations planned) while a plan is applied."""


async def _with_progress(
    applier: Applier, plan: Plan, known: KnownState, progress: ProgressSink
) -> ApplyResult:
    total = len(plan.operations)
    task = asyncio.create_task(applier.apply(plan, known))
    while not task.done():
        progress(sum(applier.result.done.values()) + len(applier.result.failures), total)
        await asyncio.wait({task}, timeout=0.2)
    progress(total, total)
    return task.result()


def _merged(known: KnownState, observed: KnownState, only: frozenset[str] | None) -> KnownState:
    """The store's view with the observed people (all, or just `only`) replaced by the target's."""
    if only is None:
        return observed
    users = {k: u for k, u in known.users.items() if k not in only}
    users.update(observed.users)
    return KnownState(users=users, groups=observed.groups)


def _deleted_leavers(
    desired: DesiredState, observation: Observation, inputs: Inputs, as_of: dt.date
) -> frozenset[str]:
    """The people whose account was deleted in the target and who are not active: no account
    is created only to be held inactive (a future starter, whose account is due before the
    first day, is not one of them)."""
    gone = set()
    for key in observation.vanished_keys:
        user = desired.users.get(key)
        person = inputs.people.get(user.national_digits) if user else None
        if user is None or user.active or person is None:
            continue
        if not any(r.start_date > as_of for r in person.relations):
            gone.add(key)
    return frozenset(gone)


def _report_observation(report: Report, observation: Observation) -> None:
    for label in observation.drifted:
        report.warnings.append(
            Warning_(kind="drift", message=f"{label}: changed in the target; put back")
        )
    for label in observation.unreadable:
        report.warnings.append(
            Warning_(
                kind="unreadable",
                message=f"{label}: the target's user does not parse; not compared this run",
            )
        )
    for label in observation.vanished:
        report.warnings.append(
            Warning_(kind="vanished", message=f"{label}: no longer in the target")
        )
    for label, right in observation.lost_memberships:
        report.warnings.append(
            Warning_(
                kind="membership_restored",
                message=f"{label}: managed membership of {right!r} was removed in the target; "
                "restoring it while the grant is valid",
            )
        )


def _record_adopted(store: StateStore, planned: Planned, observation: Observation) -> None:
    """Remember people found in the target by externalId that the plan did not touch."""
    touched = {op.person for op in planned.plan.operations}
    for key, user in observation.known.users.items():
        if key in observation.adopted and key not in touched:
            desired = planned.desired.users.get(key)
            if desired is not None:
                store.save_user(replace(user, employee_keys=desired.employee_keys))


def audit_trail(
    settings: Settings,
    *,
    person: str | None = None,
    employee: EmployeeKey | None = None,
    run_id: str | None = None,
) -> list[JournalEntry]:
    """The journal entries of one person (by national number or employee key) or one run."""
    store = StateStore.open_read_only(settings.state.path)
    if store is None:
        return []
    try:
        if run_id is not None:
            return store.history(run_id=run_id)
        key: str | None
        if person is not None:
            try:
                key = keyring(settings).person_key(parse_national_id(person).digits)
            except InvalidNationalId as exc:
                raise SelectionError(f"--person: {exc}") from None
        else:
            assert employee is not None
            key = store.person_for_employee(employee)
        return store.history(person_key=key) if key else []
    finally:
        store.close()


def approve(settings: Settings, run_id: str) -> str:
    """Approve, once, the plan of a run that a safety check stopped; returns its fingerprint."""
    store = StateStore.open(settings.state.path)
    try:
        return store.approve(run_id)
    finally:
        store.close()
