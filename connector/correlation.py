"""Correlation cases in a run (pure): who a sync holds and who it looks for again, the plan
without those it held, and how reports show cases opened, closed and likely
(`connector.identity` judges the accounts; `connector.state.cases` keeps the cases)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from connector.hr.records import Warning_
from connector.known import KnownState
from connector.mapping import DesiredState
from connector.plan import OpKind, Plan, UserOp
from connector.report import Report
from connector.state import CorrelationCase


def hold_correlated(
    desired: DesiredState, known: KnownState, cases: list[CorrelationCase]
) -> DesiredState:
    """The desired state without the people of open correlation cases: nothing is created or
    written for them until the case is resolved (one the connector manages is held as is)."""
    keys = {case.person_key for case in cases}
    if not keys:
        return desired
    held = dict(desired.held)
    for case in cases:
        if case.person_key in known.users:
            held.setdefault(case.person_key, case.label)
    users = {k: u for k, u in desired.users.items() if k not in keys}
    return replace(desired, users=users, held=held)


def rechecked_cases(cases: list[CorrelationCase], known: KnownState) -> dict[str, CorrelationCase]:
    """The open cases a sync looks at again, by person key: those of people it does not manage
    (their create goes through matching again, with the same proof; the rest stay held)."""
    return {case.person_key: case for case in cases if case.person_key not in known.users}


def without_people(plan: Plan, keys: Collection[str]) -> Plan:
    """The plan without the operations of these people (held as correlation cases by the run
    that applied it: reported as cases, not as planned and not done)."""
    if not keys:
        return plan
    kept = tuple(op for op in plan.operations if op.person not in keys)
    return replace(plan, operations=kept)


def possible_cases(plan: Plan, known: KnownState) -> list[Warning_]:
    """A warning per planned create whose userName is that of an account the state store links
    to another person: a preview contacts nobody, but the sync will find that account and,
    unless nothing about it contradicts the person, hold them as a correlation case."""
    linked = {user.user_name.casefold(): user for user in known.users.values() if user.user_name}
    warnings = []
    for op in plan.of_kind(OpKind.CREATE):
        if not isinstance(op, UserOp) or op.after is None:
            continue
        other = linked.get(op.after.user_name.casefold())
        if other is None or other.key == op.person:
            continue
        warnings.append(
            Warning_(
                kind="correlation_possible",
                message=f"{op.label}: planned as a new user, but {op.after.user_name} is the "
                f"userName of {other.label}'s account ({other.scim_id}); the sync will "
                "hold them as a correlation case unless nothing about it contradicts them",
                person=op.label,
            )
        )
    return warnings


def report_closed(report: Report, closed: list[CorrelationCase]) -> None:
    """A warning per correlation case a run closed because it found nothing against the
    person any more (they were created or adopted in that run)."""
    for case in closed:
        report.warnings.append(
            Warning_(
                kind="correlation_closed",
                message=f"{case.person_text()}: correlation case closed: looked up again, "
                f"nothing in the target contradicts them any more (the case was about account "
                f"{case.scim_id}); their account is created or adopted in this run",
                person=case.label,
            )
        )


def report_cases(report: Report, cases: list[CorrelationCase]) -> None:
    """Put the open correlation cases in a report, each with a warning naming both sides."""
    report.correlation_cases = list(cases)
    report.warnings = [w for w in report.warnings if w.kind != "correlation_case"]
    for case in cases:
        employee = case.employee_keys[0] if case.employee_keys else "ORG:ID"
        report.warnings.append(
            Warning_(
                kind="correlation_case",
                message=f"{case.person_text()}: held, no account created or adopted: "
                f"{case.account_text()} was found for them, but {case.reason}. Resolve with "
                f"`scim-connector resolve --employee {employee} --link {case.scim_id}` "
                "or `--new-account` (each sync looks again: the case closes by itself once "
                "nothing contradicts them)",
            )
        )
