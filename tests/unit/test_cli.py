"""The command line: exit codes, one-line errors, the JSON report, and masked output."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.state.store import StateStore
from tests.factories import HR_FIELDS, hr_row, make_nn, write_csv

runner = CliRunner()
DIGITS = re.compile(r"\d{11}")


def setup_files(tmp_path: Path, bad_rows: bool = True) -> tuple[Path, list[dict[str, str]]]:
    rows = [hr_row(n, rights="Premiezoeker Gebruiker" if n < 3 else "") for n in range(1, 6)]
    if bad_rows:
        rows.append(hr_row(6, national_id="85.07.30-033.29"))  # bad checksum
        rows.append(hr_row(7, email="no-at-sign.example.be"))
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    config = tmp_path / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    return config, rows


def national_numbers(rows: list[dict[str, str]]) -> list[str]:
    numbers = []
    for row in rows:
        digits = "".join(ch for ch in row["national_id"] if ch.isdigit())
        numbers += [digits, row["national_id"]]
    return numbers


def test_validate_lists_each_rejected_row_and_exits_1(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    result = runner.invoke(app, ["validate", "--config", str(config), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(r["file"], r["row"], r["field"]) for r in report["rejected"]] == [
        ("hr.csv", 6, "national_id"),
        ("hr.csv", 7, "email"),
    ]


def test_validate_of_clean_input_exits_0(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path, bad_rows=False)
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.output


def test_plan_json_report_has_the_documented_fields(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    result = runner.invoke(
        app, ["plan", "--config", str(config), "--as-of", "2026-12-01", "--format", "json"]
    )
    report = json.loads(result.stdout)
    for key in ("run_id", "as_of", "dry_run", "counts", "rejected", "warnings", "failures"):
        assert key in report
    assert report["as_of"] == "2026-12-01" and report["dry_run"] is True
    assert set(report["counts"]) == {
        "create",
        "update",
        "activate",
        "deactivate",
        "delete",
        "grant",
        "withdraw",
    }
    assert report["counts"]["create"] == 5 and report["counts"]["grant"] == 2
    assert report["exit_code"] == result.exit_code == 1


def test_plan_writes_nothing_to_the_state_store(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    runner.invoke(app, ["plan", "--config", str(config)])
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_national_number_in_clear_in_any_output(tmp_path: Path, command: str, fmt: str) -> None:
    config, rows = setup_files(tmp_path)
    result = runner.invoke(app, [command, "--config", str(config), "--format", fmt])
    output = result.stdout + result.stderr
    for number in national_numbers(rows):
        assert number not in output
    assert not DIGITS.search(output.replace(rows[0]["organisation_code"], ""))


def test_bad_config_key_exits_2_naming_the_key(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    config.write_text(config.read_text() + "\n[lifecycle]\ntimezon = 'Europe/Brussels'\n")
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 2
    assert "lifecycle.timezon" in result.stderr


def test_bad_as_of_exits_2(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    result = runner.invoke(app, ["plan", "--config", str(config), "--as-of", "1 december"])
    assert result.exit_code == 2
    assert "--as-of" in result.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", *args], capture_output=True, text=True, timeout=60
    )


def test_unreadable_hr_file_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    (tmp_path / "hr.csv").unlink()
    result = run_cli("validate", "--config", str(config))
    assert result.returncode == 2
    assert "hr.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_config_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = run_cli("plan", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nope.toml" in result.stderr


def test_person_argument_is_never_echoed_in_clear(tmp_path: Path) -> None:
    config, _ = setup_files(tmp_path)
    bad = make_nn(dt.date(1990, 1, 1), serial=5)[:-2] + "00"  # wrong check digits
    result = runner.invoke(app, ["log", "--config", str(config), "--person", bad])
    assert bad not in result.stdout + result.stderr


def test_validate_refuses_an_export_whose_end_date_column_was_renamed_as_plan_does(
    tmp_path: Path,
) -> None:
    config, _ = setup_files(tmp_path, bad_rows=False)
    store = StateStore.open(tmp_path / "state.db")
    store.save_source_columns("20260101T000000Z-aaaaaa", {"hr": HR_FIELDS})
    store.close()
    hr = tmp_path / "hr.csv"
    hr.write_text(hr.read_text(encoding="utf-8").replace(",end_date,", ",einddatum,", 1))
    before = (tmp_path / "state.db").read_bytes()

    answers = {c: runner.invoke(app, [c, "-c", str(config)]) for c in ("validate", "plan")}
    assert [a.exit_code for a in answers.values()] == [2, 2]
    assert answers["validate"].stderr == answers["plan"].stderr
    assert "column(s) end_date missing" in answers["validate"].stderr
    assert "'einddatum'" in answers["validate"].stderr
    as_json = runner.invoke(app, ["validate", "-c", str(config), "--format", "json"])
    assert json.loads(as_json.stdout)["errors"][0]["kind"] == "input"
    accepted = runner.invoke(app, ["validate", "-c", str(config), "--accept-columns"])
    assert accepted.exit_code == 0, accepted.output
    assert (tmp_path / "state.db").read_bytes() == before  # read-only
