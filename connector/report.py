"""The run report: what a run did or would do, for people (rendered by the CLI) and for
monitoring scripts (`--format json`). Holds no national number in clear."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.hr.records import Rejection, Warning_
from connector.people import Person
from connector.people_display import EMPTY_DIRECTORY, Directory, directory_for, keys_of
from connector.plan import MembershipOp, Operation, OpKind, Plan
from connector.state.records import CorrelationCase


@dataclass(frozen=True, slots=True)
class Failure:
    """An operation that failed after its retries."""

    person: str  # the person's label: employee keys and masked national number
    operation: str
    reason: str


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """The rejected rows a resync leaves out of its report (`Report.scope_rejections`)."""

    other_rows: int  # about other people
    unattributed_rows: int  # about nobody who can be told: could be anyone's


def _rows(n: int) -> str:
    return f"{n} HR row{'' if n == 1 else 's'}"


@dataclass(slots=True)
class Report:
    """Everything a run reports; `to_json` gives the documented `--format json` object."""

    run_id: str
    command: str
    as_of: dt.date
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in OpKind})
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    plan: Plan | None = None
    safety_stopped: bool = False
    # Open correlation cases: people held until `scim-connector resolve` says which account.
    correlation_cases: list[CorrelationCase] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # How the people and organisations the report mentions are shown (`name_people`), and
    # whether names are (`[report] names`).
    directory: Directory = EMPTY_DIRECTORY
    names: bool = True
    # A resync's: the rejected rows of the input that are not about the people it resyncs.
    elsewhere: Elsewhere | None = None

    @property
    def rejected_rows(self) -> int:
        """How many rows were rejected (a row rejected for two reasons is one row)."""
        rows = {(r.file, r.row) for r in self.rejected if r.row is not None}
        return len(rows) + sum(1 for r in self.rejected if r.row is None)

    @property
    def input_rejected_rows(self) -> int:
        """How many rows of the input were rejected, those a resync leaves out included."""
        out = self.rejected_rows
        if self.elsewhere is not None:
            out += self.elsewhere.other_rows + self.elsewhere.unattributed_rows
        return out

    def scope_rejections(
        self, theirs: Iterable[Rejection], other_rows: int, unattributed_rows: int
    ) -> None:
        """Keep only a resync's own rejected rows; count the others in a warning each (rows
        about other people; rows that name nobody who can be told)."""
        self.rejected = list(theirs)
        self.elsewhere = Elsewhere(other_rows, unattributed_rows)
        if other_rows:
            self.warnings.append(
                Warning_(
                    kind="rejected_elsewhere",
                    message=f"{_rows(other_rows)} about other people rejected in the HR input; "
                    "not this resync's business: `scim-connector validate` lists them",
                )
            )
        if unattributed_rows:
            self.warnings.append(
                Warning_(
                    kind="unattributed_rows",
                    message=f"{_rows(unattributed_rows)} rejected that name nobody who can be "
                    "told (no readable national number, no known employee key): they could be "
                    "anyone's, these people's too; `scim-connector validate` lists them",
                )
            )

    def labels(self) -> set[str]:
        """The labels of every person the report mentions."""
        found = {f.person for f in self.failures}
        found.update(w.person for w in self.warnings if w.person)
        if self.plan is not None:
            found.update(op.label for op in self.plan.operations)
            found.update(self.plan.held.values())
        return found

    def name_people(self, people: Iterable[Person], names: bool) -> None:
        """Look up, in the HR input's people, how the people the report mentions are shown."""
        self.names = names
        self.directory = directory_for(self.labels(), people)

    def person_json(self, label: str) -> dict[str, Any]:
        """`person` (the label), `employee_keys` and (names on) `name`, for a JSON object."""
        shown = self.directory.people.get(label)
        if shown is not None:
            return {"person": label, **shown.json_fields(self.names)}
        # Not in the HR input's people (all their rows rejected): the keys their label names.
        out: dict[str, Any] = {"person": label, "employee_keys": list(keys_of(label))}
        if self.names:
            out["name"] = None
        return out

    @property
    def exit_code(self) -> int:
        """0 all done; 1 rejections, failures or open correlation cases (people held); 3 a
        safety check stopped the run."""
        if self.safety_stopped:
            return 3
        if self.rejected or self.failures or self.correlation_cases:
            return 1
        return 0

    def to_json(self) -> dict[str, Any]:
        """The machine-readable report (see README, "JSON report")."""
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "command": self.command,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "counts": dict(self.counts),
            "rejected": [
                {"file": r.file, "row": r.row, "line": r.line, "field": r.field, "reason": r.reason}
                for r in self.rejected
            ],
            "warnings": [self._warning_json(w) for w in self.warnings],
            "failures": [
                {**self.person_json(f.person), "operation": f.operation, "reason": f.reason}
                for f in self.failures
            ],
            "held": [self.person_json(label) for label in sorted(self.plan.held.values())]
            if self.plan
            else [],
            "correlation_cases": [case.to_json() for case in self.correlation_cases],
            "safety_stopped": self.safety_stopped,
            "exit_code": self.exit_code,
            "errors": [],
        }
        if self.plan is not None:
            out["operations"] = [self._operation_json(op) for op in self.plan.operations]
        if self.elsewhere is not None:
            out["rejected_elsewhere"] = {
                "other_people_rows": self.elsewhere.other_rows,
                "unattributed_rows": self.elsewhere.unattributed_rows,
            }
        out.update(self.extra)
        return out

    def _warning_json(self, warning: Warning_) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": warning.kind, "message": warning.message}
        for key in ("file", "row", "field"):
            value = getattr(warning, key)
            if value is not None:
                out[key] = value
        if warning.person:
            out.update(self.person_json(warning.person))
        return out

    def _operation_json(self, op: Operation) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": op.kind.value, **self.person_json(op.label)}
        if isinstance(op, MembershipOp):
            out["right"] = op.right
            out["group"] = op.group
            out["organisations"] = list(op.organisations)
            out["begin"] = op.begin.isoformat() if op.begin else None
            out["end"] = op.end.isoformat() if op.end else None
        else:
            out["attributes"] = [c.path for c in op.changes]
        return out


def stopped_json(
    *,
    run_id: str,
    command: str,
    as_of: dt.date | None,
    dry_run: bool,
    errors: list[dict[str, str]],
    exit_code: int,
) -> dict[str, Any]:
    """The `--format json` object of a run that stopped on an error before it had a report
    (exit 2, or 3 for a safety stop): the report's fields, nothing counted, and `errors`
    (`[{kind, message}]`). `as_of` is None when the run date was not known yet."""
    return {
        "run_id": run_id,
        "command": command,
        "as_of": as_of.isoformat() if as_of else None,
        "dry_run": dry_run,
        "counts": {k.value: 0 for k in OpKind},
        "rejected": [],
        "warnings": [],
        "failures": [],
        "held": [],
        "correlation_cases": [],
        "safety_stopped": exit_code == 3,
        "exit_code": exit_code,
        "errors": errors,
    }
