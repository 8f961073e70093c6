"""`sync` and `resync`: observe (when asked), plan, check, apply and record, under the state
store's lock, against the target."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog

from connector.apply import Applier, ApplyResult
from connector.config import Settings
from connector.correlation import (
    hold_correlated,
    possible_cases,
    rechecked_cases,
    report_cases,
    report_closed,
    without_people,
)
from connector.hr.columns import contract_columns
from connector.hr.records import Warning_
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import DesiredState
from connector.nationalid import mask_national_ids
from connector.ownership import (
    claims,
    record_relinked,
    recover,
    recovery_reason,
    relinked_warning,
)
from connector.plan import Plan
from connector.planning import (
    History,
    Inputs,
    Planned,
    building,
    check_columns,
    desire,
    job_memory,
    keyring,
    make_planned,
    permission_warnings,
    plan_report,
    read_inputs,
    secret_name,
)
from connector.reconcile import Observation, observe, stale_records
from connector.report import Report
from connector.selection import Selection, owners, scope_rejections
from connector.settling import settle, strays_of
from connector.state import StateStore, sync_lock
from connector.state.backup import write_run_marker
from connector.target.client import TargetClient
from connector.target.connect import EventHooks, connect, run_policy, target_key
from connector.target.profile import TargetProfile
from connector.target.retry import RetryPolicy

log = structlog.get_logger(__name__)


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
    accept_columns: bool = False,
) -> Report:
    """Plan, check, apply and record: the main job (`selection`: a targeted resync;
    `event_hooks`: httpx2 hooks on the target's client, to observe its requests;
    `accept_columns`: go on with input files that lack a column the last applied sync read)."""
    with job_memory():
        inputs = read_inputs(settings)
        report = Report(run_id=run_id, command=command, as_of=as_of, dry_run=dry_run)
        report.warnings.extend(permission_warnings(settings))
        retry = run_policy(settings)
        with sync_lock(settings.state.location):
            store = StateStore.open(settings.state.location)
            try:
                store.claim_secret(keyring(settings).fingerprint(), secret_name(settings))
                history = History.of(store)
                check_columns(inputs, history.columns, accept=accept_columns)
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
                    run = Run(
                        settings, inputs, store, client, report, retry, progress, profile, history
                    )
                    await run.sync(force=force, full=full, selection=selection)
                    if not dry_run:
                        learned(run.profile, before, report)
                        store.save_target_profile(target_key(settings), run.profile)
            finally:
                store.close()
        report.name_people(inputs.people.values(), settings.report.names)
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
    history: History | None = None  # of earlier syncs (None: read from the store when planning)

    async def _settle(self, known: KnownState, ring: Keyring, has_acmidm: bool) -> KnownState:
        """Before planning, in every run: ownership recovered when the store cannot know it
        (not in a dry run), then what writes of unknown outcome touched read back and recorded
        (`connector.settling`)."""
        settings, store, report = self.settings, self.store, self.report
        recovery = None
        reason = None if report.dry_run else recovery_reason(store, settings.state.path)
        if reason is not None:
            claimed = claims(self.inputs.people, self.inputs.mapping, ring, report.as_of)
            groups = {name: right.group for name, right in self.inputs.mapping.rights.items()}
            if claimed:
                recovery = await recover(
                    self.client, store, known, claimed, groups, reason, report.run_id
                )
                known = store.load_known()
        uncertain = store.uncertain()
        if not uncertain:
            return known
        desired = desire(
            settings,
            self.inputs,
            known,
            report.as_of,
            has_acmidm,
            keep_values=True,
            fit=self.profile.fit(),
        )
        strays = strays_of(uncertain, known, desired, self.inputs.people, ring, store)
        groups = known.groups
        if recovery is not None:  # the groups it found, to read them back (not recorded)
            known = replace(known, groups={**recovery.groups, **known.groups})
        settled = await settle(
            self.client,
            store,
            known,
            uncertain,
            desired,
            ring,
            not_kept=self.profile.not_kept,
            as_of=report.as_of,
            record=not report.dry_run,
            recovery=recovery if recovery is not None and recovery.claimed else None,
            strays=strays,
        )
        report.warnings.extend(settled.warnings)
        return replace(settled.known, groups=groups)

    def _approved(self, plan: Plan) -> bool:
        """True if an approval (`scim-connector approve RUN_ID`) covers exactly this plan."""
        if self.report.dry_run:
            return False
        valid_for = self.settings.safety.approval_valid_for
        fingerprint = plan.fingerprint()
        approved = self.store.use_approval(fingerprint, self.report.run_id, valid_for)
        if approved is None:
            void = self.store.superseded_approval(fingerprint, self.report.run_id)
            if void is not None:
                self.report.warnings.append(
                    Warning_(
                        kind="approval_superseded",
                        message=f"the approval of run {void[0]} covers this plan but a later "
                        f"run, {void[1]}, superseded it; approve this run to apply it",
                    )
                )
                return False
            expired = self.store.expired_approval(fingerprint, valid_for)
            if expired is not None:
                self.report.warnings.append(
                    Warning_(
                        kind="approval_expired",
                        message=f"the approval of run {expired.run_id} covers this plan but "
                        f"expired at {expired.expires_at:%Y-%m-%d %H:%M} UTC "
                        "(safety.approval_valid_hours); approve this run to apply it",
                    )
                )
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
                        person=label,
                    )
                )

    async def sync(self, *, force: bool, full: bool, selection: Selection | None) -> None:
        """Observe (if asked), plan, check, apply and record."""
        settings, store, client, report = self.settings, self.store, self.client, self.report
        ring = keyring(settings)
        owner_of = owners(self.inputs.people, ring, store.person_for_employee)
        only = selection.person_keys(ring, owner_of, self.inputs.rejected) if selection else None
        with building():
            known = store.load_known()
        cases = store.cases("open")
        resolutions = {case.person_key: case for case in store.cases("resolved")}
        has_acmidm = client.capabilities.acmidm_extension
        known = await self._settle(known, ring, has_acmidm)
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
        # An open case of someone not managed is looked at again by a sync that applies (a
        # preview contacts nobody: it holds them, as `plan` does).
        rechecks = {} if report.dry_run else rechecked_cases(cases, known)
        held = [case for case in cases if case.person_key not in rechecks]
        desired = hold_correlated(desired, known, held)
        observation = None
        if observing:
            not_kept = self.profile.not_kept
            inputs = self.inputs

            def claimed() -> dict[str, frozenset[str]]:
                found = claims(inputs.people, inputs.mapping, ring, report.as_of)
                return {key: claim.rights for key, claim in found.items()}

            observation = await observe(
                client, known, desired, ring, only, not_kept, claimed=claimed
            )
            stale = stale_records(known, observation, desired)
            known = _merged(known, observation.known, only)
            _report_observation(report, observation, {user.label for user in stale}, report.dry_run)
            if observation.adopted and not report.dry_run:
                record_relinked(store, desired, observation)
            gone = _deleted_leavers(desired, observation, self.inputs, report.as_of)
            desired = replace(
                desired, users={k: u for k, u in desired.users.items() if k not in gone}
            )
            if not report.dry_run:
                with store.transaction():
                    for key in gone:  # not in the target, not active: nothing left to manage
                        store.forget_user(key)
                    for user in stale:  # the target holds what is wanted: recorded so
                        store.save_user(user)
        history = self.history or History.of(store)
        planned = make_planned(
            settings,
            self.inputs,
            desired,
            known,
            report.as_of,
            only,
            initial_load=history.initial_load,
        )
        plan_report(planned, report, settings.safety.min_holders)
        if selection is not None and only is not None:
            scoped = scope_rejections(
                self.inputs.rejected, only, selection.employees, ring, owner_of
            )
            report.scope_rejections(scoped.theirs, scoped.other_rows, scoped.unattributed_rows)
        report_cases(report, cases)
        if report.dry_run:
            report.warnings.extend(possible_cases(planned.plan, known))
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
        write_run_marker(settings.state.path, report.run_id)  # `ownership.recovery_reason`
        store.mark_run_began(report.run_id)  # the store's own, for every replica
        applier = Applier(
            client=client,
            store=store,
            run_id=report.run_id,
            retry=self.retry,
            concurrency=settings.target.concurrency,
            batch_size=settings.target.membership_batch_size,
            combined_lookup=settings.target.lookup_in_one_search,
            profile=self.profile,
            resolutions=resolutions,
            rechecks=rechecks,
            keyring=ring,
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
        # Who this run held as a correlation case shows as a case, not as planned and not done.
        report.plan = without_people(planned.plan, applier.correlated)
        report.extra["planned"] = report.plan.counts()
        report_closed(report, result.closed)
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
        report_cases(report, store.cases("open"))
        if self.retry.deadline_passed():
            report.warnings.append(
                Warning_(
                    kind="deadline",
                    message=f"the run passed its deadline (target.run_max_seconds = "
                    f"{self.retry.run_seconds:g}); what was not done by then is reported "
                    "failed, and the next run does it",
                )
            )
        status = "failed" if result.failures else "done"
        store.finish_run(report.run_id, status, report.counts, report.exit_code)
        # The columns this applied run read are those the next run is compared with.
        store.save_source_columns(report.run_id, contract_columns(self.inputs.columns))


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


def _report_observation(
    report: Report, observation: Observation, stale: set[str], dry_run: bool
) -> None:
    for label in observation.drifted:
        if label in stale:
            continue
        report.warnings.append(
            Warning_(
                kind="drift", message=f"{label}: changed in the target; put back", person=label
            )
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
            Warning_(kind="vanished", message=f"{label}: no longer in the target", person=label)
        )
    if observation.adopted:
        report.warnings.append(relinked_warning(observation, dry_run))
    for label, right in observation.lost_memberships:
        report.warnings.append(
            Warning_(
                kind="membership_restored",
                message=f"{label}: managed membership of {right!r} was removed in the target; "
                "restoring it while the grant is valid",
                person=label,
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
