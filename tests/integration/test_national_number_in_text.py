"""A national number in a free-text cell never reaches the state store nor the target (a sync
against scim2-server on loopback): its row is rejected and the others go through."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector import cli
from tests.factories import HR_FIELDS, hr_row, make_nn, write_csv
from tests.integration.conftest import ScimServer
from tests.integration.target_state import everything
from tests.postgres import StateBackend

pytestmark = pytest.mark.integration


def test_a_shifted_department_with_a_national_number_is_kept_out_of_state_and_target(
    scim_server: ScimServer, tmp_path: Path, state_backend: StateBackend
) -> None:
    digits = make_nn(dt.date(1990, 1, 1), serial=5)
    shown = f"{digits[:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:]}"
    rows = [hr_row(1), hr_row(2, department=shown), hr_row(3, job_title=f"Dienst {digits}")]
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    config = tmp_path / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n\n[target]\nbase_url = "{scim_server.base_url}"\n\n'
        f"[state]\n{state_backend.toml(tmp_path)}",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli.app, ["sync", "-c", str(config), "--as-of", "2026-06-01", "--format", "json"]
    )
    answer = json.loads(result.stdout)
    assert result.exit_code == 1, result.output
    assert answer["counts"]["create"] == 1
    assert {(r["row"], r["field"]) for r in answer["rejected"]} == {
        (2, "department"),
        (3, "job_title"),
    }
    stored = state_backend.stored_text(tmp_path)
    assert stored, "the run recorded what it did"
    held = json.dumps(everything(scim_server))
    for text in (result.stdout, stored, held):
        assert digits not in text and shown not in text
