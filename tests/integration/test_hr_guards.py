"""HR exports that go wrong, against a real SCIM server (scim2-server on loopback): a renamed
column stops the run (exit 2), the same mistake accepted or with the column emptied stops at
the activations threshold (exit 3), and a small organisation, or one organisation of several,
is protected by stops of its own (issue 14, kinds 2, 3 and 4). Nothing is applied in any of
these runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connector import cli
from tests.factories import HR_FIELDS, hr_row, make_kbo, write_csv
from tests.integration.conftest import ScimTenants
from tests.integration.target_state import everything
from tests.postgres import state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

RIGHT = "Premiezoeker Gebruiker"
BRUGGE = make_kbo(2075292)
LEAVERS = (1, 2, 3)  # their last working day: 2026-06-30


def staff(count: int, **overrides: str) -> list[dict[str, str]]:
    rows = []
    for n in range(1, count + 1):
        row = hr_row(n, rights=RIGHT if n <= 6 else "")
        if n in LEAVERS:
            row["end_date"] = "2026-06-30"
        row.update(overrides)
        rows.append(row)
    return rows


def configure(directory: Path, base_url: str, rows: list[dict[str, str]]) -> Path:
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"

[target]
base_url = "{base_url}"

[state]
{state_toml(directory)}
""",
        encoding="utf-8",
    )
    return config


def run(command: str, config: Path, day: str, *flags: str) -> tuple[int, dict[str, Any]]:
    """A CLI command with `--format json`: its exit code and its answer."""
    result = CliRunner().invoke(
        cli.app, [command, "--config", str(config), "--as-of", day, "--format", "json", *flags]
    )
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def leavers_deactivated(scim_tenants: ScimTenants, tmp_path: Path) -> tuple[Path, Any]:
    """20 people synced in June; three left on 2026-06-30 and were deactivated in December."""
    server = scim_tenants.new()
    config = configure(tmp_path, server.base_url, staff(20))
    assert run("sync", config, "2026-06-01")[0] == 0
    code, answer = run("sync", config, "2026-12-01")
    assert code == 0 and answer["counts"]["deactivate"] == 3, answer
    return config, server


def test_end_date_renamed_einddatum_stops_at_exit_2_and_reactivates_no_leaver(
    leavers_deactivated: tuple[Path, Any], tmp_path: Path
) -> None:
    config, server = leavers_deactivated
    before = everything(server)
    rows = staff(20)
    for row in rows:
        row["einddatum"] = row.pop("end_date")
    fields = [("einddatum" if f == "end_date" else f) for f in HR_FIELDS]
    write_csv(tmp_path / "hr.csv", rows, fields=fields)

    for command in ("plan", "sync"):
        code, answer = run(command, config, "2026-12-02")
        assert code == 2, answer
        [error] = answer["errors"]
        assert error["kind"] == "input"
        assert "column(s) end_date missing" in error["message"]
        assert "'einddatum'" in error["message"]  # the columns found
        assert "--accept-columns" in error["message"]
    assert everything(server) == before  # nothing applied: the leavers stay inactive

    # Accepted, the same mistake is stopped by the activations threshold: 3 of 20 is 15%.
    code, answer = run("sync", config, "2026-12-02", "--accept-columns")
    assert code == 3, answer
    assert answer["planned"]["activate"] == 3 and answer["counts"]["activate"] == 0
    assert {"what": "activations", "organisation": None} | {
        "threshold": "safety.max_activations_percent"
    } in [{k: t[k] for k in ("what", "organisation", "threshold")} for t in answer["safety"]]
    assert everything(server) == before


def test_the_end_date_column_emptied_stops_at_the_activations_threshold(
    leavers_deactivated: tuple[Path, Any], tmp_path: Path
) -> None:
    config, server = leavers_deactivated
    before = everything(server)
    write_csv(tmp_path / "hr.csv", staff(20, end_date=""), fields=HR_FIELDS)
    code, answer = run("sync", config, "2026-12-02")
    assert code == 3, answer
    assert answer["planned"]["activate"] == 3 and answer["planned"]["grant"] == 3
    messages = [w["message"] for w in answer["warnings"] if w["kind"] == "safety"]
    assert any("3 activations" in m and "safety.max_activations_percent" in m for m in messages)
    assert everything(server) == before


def test_an_accepted_column_change_is_the_new_reference_once_a_sync_applied(
    leavers_deactivated: tuple[Path, Any], tmp_path: Path
) -> None:
    config, _ = leavers_deactivated
    rows = staff(20)
    fields = [f for f in HR_FIELDS if f != "department"]  # dropped on purpose
    write_csv(tmp_path / "hr.csv", rows, fields=fields)
    assert run("sync", config, "2026-12-02")[0] == 2
    assert run("sync", config, "2026-12-02", "--accept-columns")[0] == 0
    assert run("sync", config, "2026-12-03")[0] == 0  # no flag needed any more
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)  # a column added back: fine
    assert run("sync", config, "2026-12-04")[0] == 0


def test_a_header_only_export_stops_even_with_four_managed_people(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    config = configure(tmp_path, server.base_url, [hr_row(n) for n in range(1, 5)])
    assert run("sync", config, "2026-12-01")[0] == 0
    before = everything(server)
    write_csv(tmp_path / "hr.csv", [], fields=HR_FIELDS)
    code, answer = run("sync", config, "2026-12-02")
    assert code == 3, answer
    assert answer["planned"]["deactivate"] == 4 and answer["counts"]["deactivate"] == 0
    messages = [w["message"] for w in answer["warnings"] if w["kind"] == "safety"]
    assert any("no accepted data rows while the connector manages 4 people" in m for m in messages)
    assert everything(server) == before


def test_losing_one_organisation_of_several_stops_though_the_total_is_under_the_threshold(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    gent = [hr_row(n) for n in range(1, 21)]
    brugge = [hr_row(n, organisation_code=BRUGGE) for n in range(21, 25)]
    config = configure(tmp_path, server.base_url, gent + brugge)
    assert run("sync", config, "2026-12-01")[0] == 0
    before = everything(server)
    write_csv(tmp_path / "hr.csv", gent, fields=HR_FIELDS)  # 4 of 24 people: 17% in total
    code, answer = run("sync", config, "2026-12-02")
    assert code == 3, answer
    assert answer["planned"]["deactivate"] == 4 and answer["counts"]["deactivate"] == 0
    stops = [(t["organisation"], t["threshold"]) for t in answer["safety"]]
    assert stops == [(BRUGGE, "an organisation losing all its people")]
    assert everything(server) == before
