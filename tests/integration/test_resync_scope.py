"""`resync --employee X` reports and exits on X alone (issue 15), against scim2-server on
loopback: another person's rejected row is counted in a warning, not reported as a rejection,
and does not make the resync exit 1; X's own bad row does. A plain `sync` still reports every
rejected row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connector import cli
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv
from tests.integration.conftest import ScimTenants
from tests.postgres import state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

DAY = "2026-12-01"
ONE = f"{GENT}:E0001"


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


def run(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """A CLI command with `--format json`: its exit code and its answer."""
    result = CliRunner().invoke(
        cli.app, [*args, "--config", str(config), "--as-of", DAY, "--format", "json"]
    )
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def synced(scim_tenants: ScimTenants, tmp_path: Path) -> Path:
    """Three people synced, all rows good."""
    config = configure(tmp_path, scim_tenants.new().base_url, [hr_row(n) for n in (1, 2, 3)])
    code, answer = run(config, "sync")
    assert code == 0 and answer["counts"]["create"] == 3, answer
    return config


def rewrite(config: Path, rows: list[dict[str, str]]) -> None:
    write_csv(config.parent / "hr.csv", rows, fields=HR_FIELDS)


def warnings_of(answer: dict[str, Any]) -> dict[str, str]:
    return {w["kind"]: w["message"] for w in answer["warnings"]}


def test_resync_with_another_persons_bad_row_exits_0_and_only_counts_it(synced: Path) -> None:
    bad = hr_row(2, start_date="2026-13-01", email="not an address")  # one row, two reasons
    rewrite(synced, [hr_row(1, family_name="Peeters"), bad, hr_row(3)])
    code, answer = run(synced, "resync", "--employee", ONE)
    assert code == 0, answer
    assert answer["exit_code"] == 0 and answer["rejected"] == []
    assert answer["counts"]["update"] == 1  # person 1's own change is applied
    assert answer["rejected_elsewhere"] == {"other_people_rows": 1, "unattributed_rows": 0}
    message = warnings_of(answer)["rejected_elsewhere"]
    assert message.startswith("1 HR row about other people rejected")
    text = json.dumps(answer)
    assert "E0002" not in text and "Given2" not in text  # a count, nobody named


def test_resync_with_its_own_bad_row_exits_1_and_reports_only_that_row(synced: Path) -> None:
    rows = [hr_row(1, end_date="2026-02-30"), hr_row(2, email="x"), hr_row(3)]
    rewrite(synced, rows)
    code, answer = run(synced, "resync", "--employee", ONE)
    assert code == 1
    assert [(r["row"], r["field"]) for r in answer["rejected"]] == [(1, "end_date")]
    assert answer["rejected_elsewhere"]["other_people_rows"] == 1


def test_a_row_that_names_nobody_is_a_warning_of_a_resync_not_a_rejection(synced: Path) -> None:
    anyones = hr_row(9, employee_id="", national_id="not a number")
    rewrite(synced, [hr_row(1), hr_row(2), hr_row(3), anyones])
    code, answer = run(synced, "resync", "--employee", ONE)
    assert code == 0 and answer["rejected"] == []
    assert answer["rejected_elsewhere"] == {"other_people_rows": 0, "unattributed_rows": 1}
    assert "could be anyone's" in warnings_of(answer)["unattributed_rows"]


def test_resync_of_someone_whose_only_row_is_rejected_reports_that_row(synced: Path) -> None:
    newcomer = hr_row(4, start_date="2026-13-01")  # never synced: only this bad row holds E0004
    rewrite(synced, [hr_row(1), hr_row(2), hr_row(3), newcomer])
    code, answer = run(synced, "resync", "--employee", f"{GENT}:E0004")
    assert code == 1, answer
    assert [(r["row"], r["field"]) for r in answer["rejected"]] == [(4, "start_date")]


def test_a_plain_sync_still_reports_every_rejected_row(synced: Path) -> None:
    anyones = hr_row(9, employee_id="", national_id="not a number")
    rewrite(synced, [hr_row(1), hr_row(2, email="x"), hr_row(3), anyones])
    code, answer = run(synced, "sync")
    assert code == 1
    assert sorted({r["row"] for r in answer["rejected"]}) == [2, 4]
    assert "rejected_elsewhere" not in answer


def test_the_exit_code_of_a_resync_process_follows_its_own_rows(synced: Path) -> None:
    rewrite(synced, [hr_row(1), hr_row(2, email="x"), hr_row(3)])
    command = [sys.executable, "-m", "connector", "resync", "--config", str(synced)]
    common = ["--as-of", DAY]
    theirs = subprocess.run(
        [*command, "--employee", ONE, *common], capture_output=True, text=True, timeout=120
    )
    assert theirs.returncode == 0, theirs.stderr
    assert "1 HR row about other people rejected" in theirs.stdout
    own = subprocess.run(
        [*command, "--employee", f"{GENT}:E0002", *common],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert own.returncode == 1, own.stderr
