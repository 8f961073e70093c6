"""Output details: `--help` reads cleanly, `log` speaks the configured time zone, a file where
a folder is expected is an error, not a traceback."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer._click import core as click
from typer.testing import CliRunner

from connector.cli import app
from connector.config import load_config
from connector.state import StateStore

runner = CliRunner()


def _commands(group: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the app, subcommands of groups included, as argv paths."""
    found = [path]
    subcommands: dict[str, click.Command] = getattr(group, "commands", {})
    for name, command in subcommands.items():
        found += _commands(command, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def help_of(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_and_subcommand_is_checked() -> None:
    assert {("state", "backup"), ("state", "restore"), ("approve",), ()} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "scim-connector")
def test_help_reads_cleanly(command: tuple[str, ...]) -> None:
    text = help_of(*command)
    assert "<bool>" not in text
    assert "{" not in text and "}" not in text
    if "--config" in text:
        assert "Configuration file [default: $SCIM_CONNECTOR_CONFIG" in text


def test_help_shows_the_defaults_written_in_brackets() -> None:
    text = help_of("sync")
    assert "[default: $SCIM_CONNECTOR_CONFIG or config/connector.toml]" in text
    assert "[default: today in the configured time zone]" in text
    assert "[default: a temporary directory, removed on exit]" in help_of("sandbox")
    assert "[default: 30]" in help_of("upcoming")


def test_approve_names_its_argument_run_id() -> None:
    text = help_of("approve")
    assert "approve [OPTIONS] RUN_ID" in text


def configure(tmp_path: Path, timezone: str | None = None) -> Path:
    (tmp_path / "hr.csv").write_text("employee_id\n", encoding="utf-8")
    config = tmp_path / "connector.toml"
    text = '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n'
    if timezone:
        text += f'\n[lifecycle]\ntimezone = "{timezone}"\n'
    config.write_text(text, encoding="utf-8")
    return config


@pytest.mark.parametrize(
    ("utc", "shown", "iso"),
    [
        (dt.datetime(2026, 7, 1, 6, 30, tzinfo=dt.UTC), "2026-07-01 08:30:00 CEST", "+02:00"),
        (dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC), "2026-12-02 00:30:00 CET", "+01:00"),
    ],
)
def test_log_shows_times_in_the_configured_time_zone(
    tmp_path: Path, utc: dt.datetime, shown: str, iso: str
) -> None:
    config = configure(tmp_path)
    store = StateStore.open(load_config(config).state.path, clock=lambda: utc)
    try:
        store.journal("run-1", "create", "done", label="0207451227:T1 (85.07.30-***.**)")
    finally:
        store.close()
    result = runner.invoke(
        app, ["log", "--config", str(config), "--run", "run-1"], env={"COLUMNS": "200"}
    )
    assert shown in result.stdout
    as_json = runner.invoke(
        app, ["log", "--config", str(config), "--run", "run-1", "--format", "json"]
    )
    answer = json.loads(as_json.stdout)
    assert answer["timezone"] == "Europe/Brussels"
    (entry,) = answer["entries"]
    assert entry["at"].endswith(iso)
    assert dt.datetime.fromisoformat(entry["at"]) == utc


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("command", "option"), [("demo", "--state"), ("sandbox", "--key-dir")])
def test_a_file_where_a_folder_is_expected_is_an_error_not_a_traceback(
    tmp_path: Path, command: str, option: str
) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x", encoding="utf-8")
    extra = ["--port", "0"] if command == "sandbox" else []
    done = run_cli(command, option, str(a_file), *extra)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{option}: {a_file} is a file" in done.stderr


def hr_config(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    from tests.factories import HR_FIELDS, write_csv

    config = configure(tmp_path)
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    return config


def test_rows_rejected_counts_rows_and_reasons_apart(tmp_path: Path) -> None:
    from tests.factories import hr_row

    # one row with two bad fields, one row with one
    rows = [hr_row(1), hr_row(2, email="no-at", start_date="soon"), hr_row(3, email="x")]
    result = runner.invoke(
        app, ["validate", "--config", str(hr_config(tmp_path, rows))], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "Rejected rows (2; 3 reasons)" in result.stdout
    assert "2 rows rejected." in result.stdout


def test_validate_summary_has_no_all_zero_operation_line(tmp_path: Path) -> None:
    from tests.factories import hr_row

    result = runner.invoke(
        app, ["validate", "--config", str(hr_config(tmp_path, [hr_row(1)]))], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0
    assert "create 0" not in result.stdout and "deactivate" not in result.stdout
    assert "rejected rows 0, warnings 0" in result.stdout
