"""Property: whatever lost answers and killed runs interleave with a short sequence of HR
changes, the next `sync --full` (and a plain sync after it) leaves the target, and the state
store's idea of what the connector owns, exactly as an uninterrupted run of the same HR
sequence does; and a member added by hand is never removed.

Each example runs the same days twice, against two fresh tenants of one scim2-server: once
plainly (the reference), once with the drawn faults. Faults, per day:

- **lost answers**: the first k writes (of users, of groups, or of both) are forwarded by the
  fault proxy and done by the server, but their answers never come (DROP_AFTER); with two
  attempts per write, k = 1 is a lost answer the retry recovers from, k >= 2 a write given up;
- **a killed run**: the run dies as the answer to its n-th write arrives (the server did the
  write, the connector never records it) or just before its n-th write is sent. The run is
  stopped in-process, by an exception no layer of the connector catches, raised from an httpx
  event hook, rather than by SIGKILL of a subprocess: for the state store it is the same (each
  journal entry and uncertain mark is committed before its write is sent, and a transaction in
  progress is rolled back either way; the run stays `running`, as after a SIGKILL), and an
  example then costs a fraction of a second instead of an interpreter start per kill. The
  subprocess kill itself is tested in test_interrupted.py and test_uncertain.py.

Writes go one at a time (`target.concurrency = 1`), so "the n-th write" is one request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from connector import jobs
from connector.config import load_config
from connector.report import Report
from connector.state import StateStore
from tests.faultproxy import answering
from tests.integration.conftest import ScimTenants
from tests.integration.test_rights import RIGHT, SCHELDEVELD, Rights, email, person
from tests.integration.test_uncertain import FEW_RETRIES, LOST, through_proxy

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

D = dt.date
FIRST_DAY = D(2026, 12, 1)
CANDIDATES = (1, 2, 3, 4)  # person 4 is not in the HR input at first: a joiner to be
BY_HAND = 5  # in the HR input, never granted the right: added to the group by hand
CONFIG = FEW_RETRIES + "[safety]\nmax_deactivations_percent = false\n"
WRITES = {
    "users": r"^(POST \S*/(Users|Bulk)|(PATCH|PUT|DELETE) \S*/Users/)",
    "groups": r"^(POST \S*/Groups|(PATCH|PUT) \S*/Groups/)",
    "all": r"^(POST \S*/(Users|Groups|Bulk)|(PATCH|PUT|DELETE) \S*/(Users|Groups)/)",
}


class Killed(BaseException):
    """The run's process died here (a BaseException: nothing in the connector handles it)."""


# --- the HR input, as a pure model of the drawn changes -------------------------------------


@dataclass
class Hr:
    """The HR export and grants file as the drawn changes leave them."""

    rows: dict[int, dict[str, str]] = field(default_factory=dict)
    vanished: dict[int, dict[str, str]] = field(default_factory=dict)
    grants: dict[int, dict[str, str]] = field(default_factory=dict)  # one grant row per person

    @classmethod
    def first(cls) -> Hr:
        hr = cls({n: person(n) for n in (1, 2, 3, BY_HAND)})
        hr.grants[1] = _grant(1, "")  # the group exists from the first day on
        return hr

    def change(self, kind: str, n: int, day: dt.date) -> None:
        """One HR change as of `day` (a change that does not apply to person n is no change)."""
        yesterday = (day - dt.timedelta(days=1)).isoformat()
        row = self.rows.get(n)
        if kind == "join" and row is None and n not in self.vanished:
            self.rows[n] = person(n, start_date=day.isoformat())
        elif kind == "leave" and row is not None and not row.get("end_date"):
            if row["start_date"] <= yesterday:
                row["end_date"] = yesterday
        elif kind == "grant" and n not in self.grants:
            self.grants[n] = _grant(n, day.isoformat())
        elif kind == "ungrant" and n in self.grants and not self.grants[n]["end_date"]:
            if (self.grants[n]["begin_date"] or yesterday) <= yesterday:
                self.grants[n]["end_date"] = yesterday
            else:
                del self.grants[n]  # granted today, taken back the same day
        elif kind == "vanish" and row is not None:
            self.vanished[n] = self.rows.pop(n)
        elif kind == "correct":  # HR's correction: back in the export, not ended
            back = self.vanished.pop(n, None) or row
            if back is not None:
                back["end_date"] = ""
                self.rows[n] = back

    def put(self, rights: Rights) -> None:
        """Into a connector's files (written at its next run); a grant of someone not in the
        export is left out (a grant row naming nobody is rejected: not what is tested here)."""
        rights.rows = [dict(row) for _, row in sorted(self.rows.items())]
        rights.grants = [dict(g) for n, g in sorted(self.grants.items()) if n in self.rows]


def _grant(n: int, begin: str) -> dict[str, str]:
    return {
        "organisation_code": SCHELDEVELD,
        "employee_id": f"E{n:04d}",
        "right": RIGHT,
        "begin_date": begin,
        "end_date": "",
    }


# --- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong in one day's run."""

    kind: str  # none | lost | kill_after | kill_before
    writes: str = "all"  # which writes (WRITES) a lost answer hits
    n: int = 1  # how many answers are lost; or the write the run dies at

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}({self.writes}, {self.n})"


FAULTS = st.one_of(
    st.just(Fault("none")),
    st.builds(Fault, st.just("lost"), st.sampled_from(sorted(WRITES)), st.integers(1, 3)),
    st.builds(
        Fault, st.sampled_from(["kill_after", "kill_before"]), st.just("all"), st.integers(1, 2)
    ),
)
CHANGE = st.tuples(
    st.sampled_from(["join", "leave", "grant", "ungrant", "vanish", "correct"]),
    st.sampled_from(CANDIDATES),
)
# A day: one or two HR changes, and what goes wrong in that day's run.
STEPS = st.lists(
    st.tuples(st.lists(CHANGE, min_size=1, max_size=2), FAULTS), min_size=3, max_size=5
)


@dataclass(slots=True)
class Killer:
    """httpx2 hooks that stop the run at its n-th write: as it is sent, or as its answer comes."""

    n: int
    after: bool
    writes: int = 0

    async def request(self, request: httpx2.Request) -> None:
        if not _is_write(request):
            return
        self.writes += 1
        if self.writes == self.n and not self.after:
            raise Killed(f"before write {self.n}")

    async def response(self, response: httpx2.Response) -> None:
        if _is_write(response.request) and self.writes == self.n and self.after:
            raise Killed(f"after write {self.n}")


def _is_write(request: httpx2.Request) -> bool:
    path = request.url.path
    return request.method in {"POST", "PUT", "PATCH", "DELETE"} and not path.endswith("/.search")


def run(rights: Rights, day: dt.date, fault: Fault, **kw: Any) -> Report | None:
    """One sync as of `day` with `fault`; its report (None: the run was killed)."""
    if fault.kind.startswith("kill"):
        killer = Killer(fault.n, after=fault.kind == "kill_after")
        hooks = {"request": [killer.request], "response": [killer.response]}
        settings_ = load_config(rights.write())
        try:
            return asyncio.run(jobs.sync(settings_, jobs.new_run_id(), day, event_hooks=hooks))
        except BaseException as exc:  # a TaskGroup hands it on inside a group
            if _killed(exc):
                return None
            raise
    lost = fault.kind == "lost"
    proxy = through_proxy(rights, answering(WRITES[fault.writes], "", LOST, times=fault.n))
    with proxy if lost else nullcontext():
        return rights.run(day, **kw)


def _killed(exc: BaseException) -> bool:
    if isinstance(exc, Killed):
        return True
    return isinstance(exc, BaseExceptionGroup) and any(_killed(e) for e in exc.exceptions)


# --- what is compared ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndState:
    """The target and the state store's ownership, by person number."""

    users: dict[int, bool]  # who has a user, and whether it is active
    members: frozenset[int]  # who is in the right's group
    owned: frozenset[int]  # whose membership the state store says is the connector's
    foreign: frozenset[int]  # whose membership it says is someone else's


def end_state(rights: Rights) -> EndState:
    users = {_number(name): bool(user["active"]) for name, user in rights.users().items()}
    store = StateStore.open(rights.state.location(rights.directory))
    try:
        known = store.load_known().users.values()
    finally:
        store.close()

    def numbers(owned: bool) -> frozenset[int]:
        return frozenset(
            int(key.employee_id.removeprefix("E"))
            for user in known
            for key in user.employee_keys
            if RIGHT in (user.memberships if owned else user.foreign_memberships)
        )

    return EndState(users, frozenset(rights.members()), numbers(True), numbers(False))


def _number(user_name: str) -> int:
    return int(user_name.removeprefix("person").split("@")[0])


# --- the property -----------------------------------------------------------------------------


@contextmanager
def two_targets(tenants: ScimTenants) -> Iterator[tuple[Rights, Rights]]:
    """A connector for the reference and one for the faulted runs, each with a fresh tenant."""
    with tempfile.TemporaryDirectory() as reference, tempfile.TemporaryDirectory() as faulted:
        pair = []
        for directory in (reference, faulted):
            rights = Rights(tenants.new(), Path(directory), extra_config=CONFIG)
            rights.target_config = "concurrency = 1"
            pair.append(rights)
        yield pair[0], pair[1]


# Shrinking is off: an example costs seconds, and the failure message names the steps drawn.
@settings(
    max_examples=12,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=STEPS)
# Found by the property: a joiner made by a killed run, gone from the export the next day.
@example(
    steps=[
        ([("join", 4)], Fault("kill_after", n=1)),
        ([("vanish", 4)], Fault("none")),
        ([("grant", 2), ("grant", 3)], Fault("lost", "groups", 2)),
    ]
)
def test_after_lost_answers_and_killed_runs_a_full_sync_ends_as_an_uninterrupted_run(
    scim_tenants: ScimTenants, steps: list[tuple[list[tuple[str, int]], Fault]]
) -> None:
    hr = Hr.first()
    with two_targets(scim_tenants) as (reference, faulted):
        for rights in (reference, faulted):
            hr.put(rights)
            rights.sync(FIRST_DAY)
            rights.add_by_hand(BY_HAND)  # someone else's: no grant of the right
        day = FIRST_DAY
        for changes, fault in steps:
            day += dt.timedelta(days=1)
            for kind, n in changes:
                hr.change(kind, n, day)
            hr.put(reference)
            done = reference.run(day)
            assert done.exit_code == 0, f"reference {steps}: {done.to_json()}"
            hr.put(faulted)
            run(faulted, day, fault)

        full = faulted.run(day, full=True)
        plain = faulted.run(day)
        shown = f"steps {[(c, str(f)) for c, f in steps]}"
        assert full.exit_code in (0, 1), shown
        assert plain.exit_code == 0, f"{shown}: {plain.to_json()}"
        assert sum(plain.counts.values()) == 0, f"{shown}: {plain.to_json()}"
        expected, actual = end_state(reference), end_state(faulted)
        assert actual == expected, shown
        assert BY_HAND in actual.members and BY_HAND not in actual.owned, shown
        assert {email(n) for n in actual.users} <= set(faulted.users()), shown


# --- what the property found, each on its own ---------------------------------------------------


@pytest.mark.parametrize("then", ["leave", "vanish"])
def test_a_joiner_created_by_a_killed_run_is_deactivated_when_hr_ends_them_before_the_next_run(
    scim_tenants: ScimTenants, tmp_path: Path, then: str
) -> None:
    hr = Hr.first()
    rights = Rights(scim_tenants.new(), tmp_path, extra_config=CONFIG)
    rights.target_config = "concurrency = 1"
    hr.put(rights)
    rights.sync(FIRST_DAY)
    hr.change("join", 4, D(2026, 12, 2))
    hr.put(rights)
    assert run(rights, D(2026, 12, 2), Fault("kill_after", n=1)) is None  # at the create
    assert rights.users()[email(4)]["active"] is True  # made, never recorded

    # HR ends them (a mistaken hire, say) before the next run: last day the 2nd, or gone
    hr.rows[4]["end_date"] = "2026-12-02"
    if then == "vanish":
        hr.change("vanish", 4, D(2026, 12, 3))
    hr.put(rights)
    after = rights.sync(D(2026, 12, 3))

    assert after.counts["deactivate"] == 1, after.to_json()
    assert rights.users()[email(4)]["active"] is False
    assert sum(rights.sync(D(2026, 12, 4), full=True).counts.values()) == 0
    assert rights.users()[email(4)]["active"] is False
