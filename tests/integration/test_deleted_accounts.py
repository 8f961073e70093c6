"""A leaver whose account an administrator deleted: the goal (no active account) is reached.

scim2-server on loopback; the administrator's delete is a plain DELETE on the server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.report import Report
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.integration.conftest import ScimServer, ScimTenants
from tests.postgres import state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

DAY = dt.date(2026, 12, 1)


def write(directory: Path, server: ScimServer, rows: list[dict[str, str]]) -> Path:
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n[target]\nbase_url = "{server.base_url}"\n'
        f'[target.auth]\nmethod = "none"\n[state]\n{state_toml(directory)}',
        encoding="utf-8",
    )
    return config


def sync(config: Path, *, full: bool = False) -> Report:
    return asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), DAY, full=full))


def users(server: ScimServer) -> dict[str, dict[str, object]]:
    listed = httpx2.get(f"{server.base_url}/Users", params={"count": 100}).json()["Resources"]
    return {u["userName"]: u for u in listed}


def delete_by_hand(server: ScimServer, user_name: str) -> None:
    scim_id = users(server)[user_name]["id"]
    assert httpx2.delete(f"{server.base_url}/Users/{scim_id}").status_code == 204


@pytest.mark.parametrize("full", [False, True])
def test_a_leaver_deleted_by_hand_is_done_not_failed_and_never_created_again(
    scim_tenants: ScimTenants, tmp_path: Path, full: bool
) -> None:
    server = scim_tenants.new()
    rows = [hr_row(1), hr_row(2)]
    config = write(tmp_path, server, rows)
    assert sync(config).exit_code == 0
    delete_by_hand(server, "person1@gent.be")
    rows[0]["end_date"] = "2026-11-30"
    write(tmp_path, server, rows)

    leaving = sync(config, full=full)
    assert leaving.exit_code == 0, leaving.to_json()
    assert leaving.failures == []
    assert leaving.counts["create"] == 0
    assert "person1@gent.be" not in users(server)
    for again in (sync(config), sync(config, full=True)):
        assert again.exit_code == 0 and sum(again.counts.values()) == 0, again.to_json()
    assert set(users(server)) == {"person2@gent.be"}


def test_an_inactive_account_deleted_by_hand_is_not_created_again_by_a_full_sync(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    rows = [hr_row(1, end_date="2026-11-30"), hr_row(2)]
    config = write(tmp_path, server, [hr_row(1), hr_row(2)])
    assert sync(config).exit_code == 0
    write(tmp_path, server, rows)
    assert sync(config).counts["deactivate"] == 1
    delete_by_hand(server, "person1@gent.be")

    full = sync(config, full=True)
    assert full.exit_code == 0 and full.counts["create"] == 0, full.to_json()
    assert set(users(server)) == {"person2@gent.be"}
    assert sum(sync(config, full=True).counts.values()) == 0
