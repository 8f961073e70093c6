"""Corrupted HR exports through the sync command, against a real SCIM server (scim2-server on
loopback): a file cut short stops the run and applies nothing; a leaver's end date with a typo
keeps them as last pushed (their account and right: their only row is rejected, so they are
left exactly as they are) while a valid leaver beside them is ended.
A renamed column is tests/integration/test_hr_guards.py; every single corruption against the
pure core is the property in tests/unit/test_corrupted_export.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.integration.conftest import ScimServer, ScimTenants
from tests.integration.target_state import everything
from tests.integration.test_hr_guards import RIGHT, configure, run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]


def accounts(server: ScimServer) -> dict[str, dict[str, Any]]:
    """Every user, by userName."""
    users = httpx2.get(f"{server.base_url}/Users", params={"count": 100}).json()["Resources"]
    return {user["userName"]: user for user in users}


def members(server: ScimServer) -> set[str]:
    """The userNames of the right's group members."""
    by_id = {user["id"]: name for name, user in accounts(server).items()}
    groups = httpx2.get(f"{server.base_url}/Groups").json().get("Resources", [])
    (group,) = [g for g in groups if g["displayName"] == RIGHT]
    return {by_id[m["value"]] for m in group.get("members", [])}


def test_an_hr_file_cut_short_in_its_last_row_stops_at_exit_2_and_ends_nobody(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    config = configure(tmp_path, server.base_url, [hr_row(n, rights=RIGHT) for n in range(1, 13)])
    assert run("sync", config, "2026-12-01")[0] == 0
    before = everything(server)
    hr = tmp_path / "hr.csv"
    text = hr.read_text(encoding="utf-8")
    hr.write_text(text[: text.rindex("person12@")], encoding="utf-8")  # an interrupted copy
    # Read as it is, person 12 would look gone: 1 of 12 is under every threshold.
    for command in ("plan", "sync"):
        code, answer = run(command, config, "2026-12-02")
        assert code == 2, answer
        [error] = answer["errors"]
        assert error["kind"] == "input"
        assert "ends in the middle of row 12 (line 13)" in error["message"]
        assert "85.07" not in error["message"]
    assert everything(server) == before
    write_csv(hr, [hr_row(n, rights=RIGHT) for n in range(1, 13)], fields=HR_FIELDS)
    code, answer = run("sync", config, "2026-12-02")  # exported again: nothing to do
    assert code == 0 and not any(answer["counts"].values()), answer


def test_a_leavers_end_date_with_a_typo_keeps_them_as_pushed_while_a_valid_leaver_is_ended(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    rows = [hr_row(n, rights=RIGHT) for n in range(1, 5)]
    rows[0]["end_date"] = rows[1]["end_date"] = "2026-12-31"  # both leave at the end of the year
    config = configure(tmp_path, server.base_url, rows)
    assert run("sync", config, "2026-12-01")[0] == 0
    rows[0]["end_date"] = "2026-12-32"  # person 1's end date: a typo in the next export
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    code, answer = run("sync", config, "2027-01-01")
    assert code == 1, answer  # a row was rejected
    assert [(r["file"], r["row"], r["field"]) for r in answer["rejected"]] == [
        ("hr.csv", 1, "end_date")
    ]
    assert (answer["counts"]["deactivate"], answer["counts"]["withdraw"]) == (1, 1)
    users = accounts(server)
    assert users["person1@gent.be"]["active"] is True  # as last pushed
    assert users["person2@gent.be"]["active"] is False  # ended as the export says
    assert members(server) == {"person1@gent.be", "person3@gent.be", "person4@gent.be"}
    held = [w["message"] for w in answer["warnings"] if w["kind"] == "held"]
    assert held == [
        "person 0207451227:E0001 (85.07.30-***.**) left unchanged: all their HR rows were rejected"
        " (hr.csv row 1)"
    ]
