"""A write is done when its effect is there, and a target that cannot do something says so once.

scim2-server on loopback behind the fault proxy, which imitates what it does not do itself: a
PATCH answered 200 with the user as it was (no effect), a create answered 501.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.report import Report
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.faultproxy import FORWARD, Fault, FaultKind, FaultPlan, fault_proxy
from tests.integration.conftest import ScimServer, ScimTenants
from tests.postgres import state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

DAY = dt.date(2026, 12, 1)


def write(directory: Path, base_url: str, rows: list[dict[str, str]], extra: str = "") -> Path:
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n[target]\nbase_url = "{base_url}"\n{extra}\n'
        f'[target.auth]\nmethod = "none"\n[state]\n{state_toml(directory)}',
        encoding="utf-8",
    )
    return config


def sync(config: Path, day: dt.date = DAY) -> Report:
    return asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), day))


def through(tenants: ScimTenants, server: ScimServer, plan: FaultPlan):  # type: ignore[no-untyped-def]
    return fault_proxy(tenants.root, plan)


def user(server: ScimServer, user_name: str) -> dict[str, object]:
    found = httpx2.get(f"{server.base_url}/Users", params={"count": 100}).json()["Resources"]
    return next(u for u in found if u["userName"] == user_name)


def test_a_deactivation_answered_200_without_effect_is_a_failure_and_done_next_run(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    rows = [hr_row(1), hr_row(2)]
    assert sync(write(tmp_path, server.base_url, rows)).exit_code == 0
    rows[0]["end_date"] = "2026-11-30"

    def swallow_user_patches(method: str, path: str, index: int) -> Fault:
        return Fault(FaultKind.SWALLOW) if method == "PATCH" and "/Users/" in path else FORWARD

    with through(scim_tenants, server, swallow_user_patches) as proxy:
        base_url = proxy.base_url(server.base_url.removeprefix(scim_tenants.root))
        swallowed = sync(write(tmp_path, base_url, rows))
    assert swallowed.exit_code == 1, json.dumps(swallowed.to_json())
    assert swallowed.counts["deactivate"] == 0
    [failure] = swallowed.failures
    assert failure.operation == "deactivate"
    assert "does not hold active=False" in failure.reason
    assert user(server, "person1@gent.be")["active"] is True

    again = sync(write(tmp_path, server.base_url, rows))
    assert again.exit_code == 0 and again.counts["deactivate"] == 1
    assert user(server, "person1@gent.be")["active"] is False


def test_a_target_that_creates_no_users_is_told_once_and_asked_once(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()

    def no_creates(method: str, path: str, index: int) -> Fault:
        creating = method == "POST" and path.split("?")[0].endswith("/Users")
        return Fault(FaultKind.NOT_IMPLEMENTED) if creating else FORWARD

    with through(scim_tenants, server, no_creates) as proxy:
        base_url = proxy.base_url(server.base_url.removeprefix(scim_tenants.root))
        rows = [hr_row(n) for n in range(1, 6)]
        config = write(
            tmp_path, base_url, rows, "concurrency = 1\n[target.capabilities]\nbulk = false"
        )
        report = sync(config)
        creates = [s for s in proxy.seen if s.method == "POST" and s.path.endswith("/Users")]
    assert report.exit_code == 1
    assert len(creates) == 1, "one refusal as not implemented is enough"
    assert len(report.failures) == 5
    said = [w.message for w in report.warnings if w.kind == "target"]
    assert said == [
        "the target does not create users (POST answered 501): no joiner can be provisioned"
    ]
    first, *others = report.failures
    assert "501" in first.reason
    assert all("skipped: the target does not create users" in f.reason for f in others)
