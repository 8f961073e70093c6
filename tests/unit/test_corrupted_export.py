"""One corrupted cell in an HR export never cuts anyone off, nor hands access back (issue 14).

The property runs the pure core as a sync does: read the HR file and the grants file, check
their columns against those the last run read, map the desired state, plan, and check the
plan's safety, against a known state that is what earlier runs of the clean export pushed
(planned the same way and recorded with `plan.simulate`, the store's work relations kept as
the state store keeps them). No server: the shell around it is tested in
tests/integration/test_corrupted_export.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from connector.desired import desired_state
from connector.errors import InputError
from connector.hr.columns import GRANT_COLUMNS, HR_COLUMNS
from connector.hr.read import ReadPolicy, read_hr
from connector.keys import Keyring
from connector.known import KnownState, KnownUser, PushedRelation
from connector.mapping import load_mapping
from connector.plan import MembershipOp, OpKind, Plan, UserOp, make_plan, simulate
from connector.planning import Inputs, check_columns
from connector.safety import Thresholds, Trip, check_plan
from tests.factories import format_nn, make_kbo, make_nn

D = dt.date
MAPPING = load_mapping()
KEYS = Keyring(b"corruption-property")
RIGHT = "Premiezoeker Gebruiker"
ORGS = (make_kbo(2074512), make_kbo(2075292), make_kbo(2167045))
FIRST_RUN, LAST_RUN = D(2026, 3, 1), D(2026, 6, 1)  # the clean export's runs, then this one
THRESHOLDS = Thresholds()

Row = dict[str, str]


# ---------------------------------------------------------------------------- the export


@dataclass(frozen=True)
class Export:
    """An HR file's and a grants file's rows, as text cells."""

    hr: tuple[Row, ...]
    grants: tuple[Row, ...]

    def digits_of_row(self, row: Row) -> str:
        return "".join(c for c in row["national_id"] if c.isdigit())

    def digits_of_key(self, organisation: str, employee: str) -> str:
        for row in self.hr:
            if (row["organisation_code"], row["employee_id"]) == (organisation, employee):
                return self.digits_of_row(row)
        raise KeyError(employee)


def _text(fields: Iterable[str], rows: Iterable[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class Files:
    """The two files' text, as a run reads them."""

    hr: str
    grants: str

    @classmethod
    def of(cls, export: Export) -> Files:
        return cls(_text(HR_COLUMNS, export.hr), _text(GRANT_COLUMNS, export.grants))


def _day(draw: st.DrawFn, low: dt.date, high: dt.date) -> dt.date:
    return draw(st.dates(min_value=low, max_value=high))


@st.composite
def exports(draw: st.DrawFn) -> Export:
    """2-12 people with one or two work relations in three organisations, some leaving before
    or after the runs, some with the right in the `rights` column, some in the grants file."""
    hr: list[Row] = []
    grants: list[Row] = []
    for n in range(1, draw(st.integers(2, 12)) + 1):
        national_id = format_nn(make_nn(D(1980, 1, 1) + dt.timedelta(days=97 * n), serial=n))
        organisations = draw(st.lists(st.sampled_from(ORGS), min_size=1, max_size=2, unique=True))
        for organisation in organisations:
            start = _day(draw, D(2018, 1, 1), D(2026, 7, 1))
            end = draw(
                st.none() | st.dates(min_value=max(start, D(2026, 1, 1)), max_value=D(2026, 9, 30))
            )
            employee = f"E{n:04d}"
            hr.append(
                {
                    "employee_id": employee,
                    "national_id": national_id,
                    "given_name": f"Given{n}",
                    "family_name": f"Family{n}",
                    "email": f"person{n}@org{organisation[-3:]}.example.be",
                    "organisation_code": organisation,
                    "organisation_name": f"Gemeente {organisation[-3:]}",
                    "department": draw(st.sampled_from(["", "ICT", "Burgerzaken"])),
                    "job_title": "",
                    "relation": "employee",
                    "employer_code": "",
                    "start_date": start.isoformat(),
                    "end_date": end.isoformat() if end else "",
                    "rights": draw(st.sampled_from(["", RIGHT])),
                }
            )
            if draw(st.integers(0, 2)) == 0:
                begin = draw(
                    st.none() | st.dates(min_value=D(2026, 1, 1), max_value=D(2026, 8, 31))
                )
                until = draw(
                    st.none() | st.dates(min_value=begin or D(2026, 1, 1), max_value=D(2026, 9, 30))
                )
                grants.append(
                    {
                        "organisation_code": organisation,
                        "employee_id": employee,
                        "right": RIGHT,
                        "begin_date": begin.isoformat() if begin else "",
                        "end_date": until.isoformat() if until else "",
                    }
                )
    return Export(tuple(hr), tuple(grants))


# ---------------------------------------------------------------------------- one corruption

BAD_DATES = ("2026-02-30", "31/12/2026", "2026-13-01", "20260631", "9999-99-99")
BAD_NUMBERS = ("85.07.30-033.29", "85073003", "ABCDEFGHIJK")
BAD_EMAILS = ("person@", "not an e-mail", "a@@b.be")
OPTIONAL_VALUES = {"hr": ("end_date", "rights"), "grants": ("begin_date", "end_date")}
RENAMED = ("einddatum", "end date", "x_column", "rechten", "begindatum")


@dataclass(frozen=True)
class Corruption:
    """One mistake in one file: a bad cell, a renamed header column, a deleted row or a file
    cut short (`at`: a fraction of the data part where the file ends)."""

    kind: str  # "cell", "header", "deleted", "truncated"
    file: str  # "hr" or "grants"
    row: int = 0
    field: str = ""
    value: str = ""
    at: float = 0.0

    def apply(self, export: Export) -> Files:
        """The files as the corrupted export has them."""
        if self.kind == "cell":
            rows = list(getattr(export, self.file))
            rows[self.row] = {**rows[self.row], self.field: self.value}
            export = replace(export, **{self.file: tuple(rows)})
        elif self.kind == "deleted":
            rows = list(getattr(export, self.file))
            del rows[self.row]
            export = replace(export, **{self.file: tuple(rows)})
        files = Files.of(export)
        text = getattr(files, self.file)
        if self.kind == "header":
            header, _, rest = text.partition("\n")
            names = header.split(",")
            names[names.index(self.field)] = self.value
            text = ",".join(names) + "\n" + rest
        elif self.kind == "truncated":
            data = len(text.partition("\n")[0]) + 1
            text = text[: data + int((len(text) - data) * self.at)]
        return replace(files, **{self.file: text})

    def cut_visibly(self, export: Export) -> bool:
        """True iff the file ends in the middle of a row with fewer values than its header."""
        if self.kind != "truncated":
            return False
        last = getattr(self.apply(export), self.file).rpartition("\n")[2]
        columns = HR_COLUMNS if self.file == "hr" else GRANT_COLUMNS
        return bool(last) and last.count(",") < len(columns) - 1

    def valid_losses(self, export: Export) -> list[Row]:
        """The rows whose loss the corrupted file states validly: a deleted row, or the rows
        a file cut short lost when the cut cannot be told from an export without them (at
        the end of a row, or in its last value)."""
        rows = getattr(export, self.file)
        if self.kind == "deleted":
            return [rows[self.row]]
        if self.kind != "truncated" or self.cut_visibly(export):
            return []
        text = getattr(Files.of(export), self.file)
        kept = len(getattr(self.apply(export), self.file))
        lost, offset = [], len(text.partition("\n")[0]) + 1
        for row, line in zip(rows, text.splitlines(keepends=True)[1:], strict=True):
            if offset + len(line) - 1 > kept:  # not all of it (its line break aside) kept
                lost.append(row)
            offset += len(line)
        return lost


CELL_FIELDS = {
    "hr": [
        ("start_date", BAD_DATES),
        ("end_date", BAD_DATES),
        ("national_id", BAD_NUMBERS),
        ("email", BAD_EMAILS),
    ],
    "grants": [("begin_date", BAD_DATES), ("end_date", BAD_DATES)],
}


@st.composite
def corruptions(draw: st.DrawFn, export: Export) -> Corruption:
    """One mistake, in a file that has rows."""
    files = ["hr", "grants"] if export.grants else ["hr"]
    file = draw(st.sampled_from(files))
    rows = getattr(export, file)
    kind = draw(st.sampled_from(["cell", "cell", "header", "deleted", "truncated"]))
    row = draw(st.integers(0, len(rows) - 1))
    if kind == "cell":
        field, values = draw(st.sampled_from(CELL_FIELDS[file]))
        return Corruption(kind, file, row, field, draw(st.sampled_from(values)))
    if kind == "header":
        columns = HR_COLUMNS if file == "hr" else GRANT_COLUMNS
        # Half the time one of the optional columns whose absence reads as a change.
        field = draw(st.sampled_from(columns) | st.sampled_from(OPTIONAL_VALUES[file]))
        return Corruption(kind, file, field=field, value=draw(st.sampled_from(RENAMED)))
    if kind == "deleted":
        return Corruption(kind, file, row)
    return Corruption(kind, file, at=draw(st.floats(0.0, 0.999)))


# ---------------------------------------------------------------------------- a run


@dataclass(frozen=True)
class Run:
    """What a run of the core made of the files: the inputs, the plan and its safety trips."""

    inputs: Inputs
    plan: Plan
    trips: list[Trip]


@dataclass(frozen=True)
class Store:
    """What earlier runs recorded: the known state (as loaded, without the work relations),
    and the work relations last pushed (read only for those a run needs them for)."""

    known: KnownState
    pushed: Mapping[str, tuple[PushedRelation, ...]]
    columns: Mapping[str, tuple[str, ...]]  # the columns the last run read

    def lookup(self, keys: frozenset[str]) -> dict[str, tuple[PushedRelation, ...]]:
        return {k: self.pushed[k] for k in keys if k in self.pushed}


EMPTY = Store(KnownState(), {}, {})


def run(files: Files, store: Store, day: dt.date) -> Run:
    """Read, check the columns, map, plan and check: as `sync` does (raises InputError)."""
    with tempfile.TemporaryDirectory() as directory:
        hr, grants = Path(directory, "hr.csv"), Path(directory, "grants.csv")
        hr.write_text(files.hr, encoding="utf-8")
        grants.write_text(files.grants, encoding="utf-8")
        read = read_hr(hr, ReadPolicy(), MAPPING.right_names, grants)
    inputs = Inputs.of(read, MAPPING)
    check_columns(inputs, dict(store.columns))
    desired = desired_state(
        inputs.people,
        MAPPING,
        store.known,
        KEYS,
        day,
        holds=inputs.holds,
        keep_values=False,
        pushed=store.lookup,
    )
    plan = make_plan(desired, store.known, day)
    trips = check_plan(
        plan,
        store.known,
        THRESHOLDS,
        desired=desired,
        hr_rows=inputs.records,
        initial_load=not store.known.users,
    )
    return Run(inputs, plan, trips)


def applied(store: Store, done: Run) -> Store:
    """The store once every operation of the run succeeded, as the applier records it: a
    user's work relations are replaced only when a write carries them."""
    known = simulate(done.plan, store.known)
    pushed = dict(store.pushed)
    for op in done.plan.operations:
        if isinstance(op, UserOp) and op.after is not None and op.after.pushed_relations:
            pushed[op.person] = op.after.pushed_relations
        elif isinstance(op, UserOp) and op.kind is OpKind.DELETE:
            pushed.pop(op.person, None)
    users = {k: replace(u, pushed_relations=None) for k, u in known.users.items()}
    columns = {k: c for k, c in ((k, h.contract) for k, h in done.inputs.columns.items()) if c}
    return Store(KnownState(users, known.groups), pushed, columns)


def synced(export: Export) -> Store:
    """The store after the clean export's runs of FIRST_RUN (the initial load) and LAST_RUN."""
    store = EMPTY
    for day in (FIRST_RUN, LAST_RUN):
        store = applied(store, run(Files.of(export), store, day))  # (stopped or not: forced)
    return store


# ---------------------------------------------------------------------------- the property

REMOVALS = frozenset({OpKind.DEACTIVATE, OpKind.DELETE, OpKind.WITHDRAW})
ADDITIONS = frozenset({OpKind.ACTIVATE, OpKind.CREATE, OpKind.GRANT})
Effect = tuple[OpKind, str, str]  # kind, person key, right ("" for a user operation)


def effects(plan: Plan) -> set[Effect]:
    """What a plan takes away or hands out, per person (and right)."""
    return {
        (op.kind, op.person, op.right if isinstance(op, MembershipOp) else "")
        for op in plan.operations
        if op.kind in REMOVALS | ADDITIONS
    }


def over_the_thresholds(plan: Plan, known: KnownState) -> list[str]:
    """What in the plan the README's default thresholds forbid (removals): more than 20% of
    the managed people deactivated, in total or in an organisation, from 10 managed on; an
    organisation with two or more active people deactivating them all; more than 20% of the
    managed memberships withdrawn, from 10 on."""
    found = []
    ended = {op.person for op in plan.operations if op.kind in (OpKind.DEACTIVATE, OpKind.DELETE)}
    managed: dict[str | None, list[KnownUser]] = {None: list(known.users.values())}
    for user in known.users.values():
        for organisation in {k.organisation_code for k in user.employee_keys}:
            managed.setdefault(organisation, []).append(user)
    for organisation, users in managed.items():
        gone = sum(u.key in ended for u in users)
        if len(users) >= 10 and gone > len(users) * 0.2:
            found.append(f"{gone} of {len(users)} managed people in {organisation or 'all'}")
        active = [u for u in users if u.active]
        if organisation and len(active) >= 2 and all(u.key in ended for u in active):
            found.append(f"every active person of {organisation} deactivated")
    memberships = sum(len(u.memberships) for u in known.users.values())
    withdrawn = len(plan.of_kind(OpKind.WITHDRAW))
    if memberships >= 10 and withdrawn > memberships * 0.2:
        found.append(f"{withdrawn} of {memberships} memberships withdrawn")
    return found


@settings(max_examples=300)
@given(data=st.data())
def test_one_corrupted_cell_never_cuts_anyone_off_nor_hands_access_back(
    data: st.DataObject,
) -> None:
    """For any export and any single mistake in it, either the run stops (exit 2: the input
    cannot be trusted, e.g. a renamed column, or a file that visibly ends mid-row; exit 3: a
    safety check), or its plan takes away and hands out exactly what the clean export's plan
    of the same day would, for everyone the mistake does not validly concern.

    Decided:
    - A bad cell (an impossible or malformed date in start_date/end_date/begin_date/end_date,
      a national number with a bad checksum, a bad e-mail address) is an invalid change: the
      row is rejected, and what it touches is held as last pushed. It may take away less than
      the clean plan (a leaver whose end_date has a typo stays as pushed), never more, and
      hands out nothing the clean plan would not.
    - A deleted row IS a valid change (HR ended that work relation, or that grant): it may end
      that relation and so deactivate its person (when no other relation of theirs is active)
      or withdraw their rights, but only under the thresholds.
    - A file cut short is a deleted tail when the cut cannot be told from an export without
      those rows (at the end of a row, or inside its last value): a valid change, under the
      thresholds. A file whose last line has fewer values than its header visibly ends
      mid-row: nothing it lost may be taken away (the run stops).
    - In every case, nobody with an accepted work relation active that day is deactivated,
      and the plan is within the README's default thresholds for removals.
    """
    export = data.draw(exports(), label="export")
    corruption = data.draw(corruptions(export), label="corruption")
    day = data.draw(st.dates(LAST_RUN, LAST_RUN + dt.timedelta(days=90)), label="day")
    store = synced(export)
    clean = run(Files.of(export), store, day)
    try:
        corrupted = run(corruption.apply(export), store, day)
    except InputError:
        event(f"{corruption.kind}: exit 2")
        return  # nothing applied
    if corrupted.trips:
        event(f"{corruption.kind}: exit 3")
        return  # nothing applied
    event(f"{corruption.kind}: applied")
    concerned = set()
    for row in corruption.valid_losses(export):
        if "national_id" in row:
            digits = export.digits_of_row(row)
        else:
            digits = export.digits_of_key(row["organisation_code"], row["employee_id"])
        concerned.add(KEYS.person_key(digits))
    expected = effects(clean.plan)
    unexplained = sorted(
        (kind.value, store.known.users[p].label if p in store.known.users else p, right)
        for kind, p, right in effects(corrupted.plan) - expected
        if p not in concerned
    )
    assert not unexplained, f"{corruption}: not in the clean export's plan: {unexplained}"
    active = {
        KEYS.person_key(digits)
        for digits, person in corrupted.inputs.people.items()
        if any(
            r.start_date <= day and (r.end_date is None or day <= r.end_date)
            for r in person.relations
        )
    }
    cut_off = [op.label for op in corrupted.plan.of_kind(OpKind.DEACTIVATE) if op.person in active]
    assert not cut_off, f"{corruption}: deactivated with an active relation: {cut_off}"
    assert not over_the_thresholds(corrupted.plan, store.known)
