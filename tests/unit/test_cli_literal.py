"""The command line prints data as it is: HR values, right names, reasons and the journal are
never read as Rich markup (a `[/]` in a value must not crash a run's report nor be eaten)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from connector import cli, jobs
from connector.cli import output
from connector.config import load_config
from connector.mapping import builtin_mapping_path
from connector.report import Failure, Report
from connector.state import StateStore
from tests.factories import HR_FIELDS, hr_row, write_csv

runner = CliRunner()
NASTY = ("Bogus [/] right", "[red]x[/red]", 'Odd "Q" [x]/y\\z', "[bold]big :smile: [held]")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no table cell is folded, so that values can be looked for whole."""
    monkeypatch.setattr(output, "out", Console(width=400, soft_wrap=True))


def configure(tmp_path: Path, rights: tuple[str, ...], *, define: bool) -> Path:
    """One person per right in `rights`; `define`: a mapping that defines them (as groups)."""
    write_csv(
        tmp_path / "hr.csv",
        [hr_row(n, rights=right) for n, right in enumerate(rights, start=1)],
        fields=HR_FIELDS,
    )
    mapping = ""
    if define:
        mapping_file = tmp_path / "mapping.toml"
        text = builtin_mapping_path().read_text(encoding="utf-8")
        for right in rights:  # a JSON string is a TOML basic string here
            text += f"\n[rights.{json.dumps(right)}]\ngroup = {json.dumps(right)}\n"
        mapping_file.write_text(text, encoding="utf-8")
        mapping = '[mapping]\nfile = "mapping.toml"\n\n'
    config = tmp_path / "connector.toml"
    config.write_text(
        f'{mapping}[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    return config


def assert_literal(result: Any, expected_exit: int) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == expected_exit, result.output
    assert "Traceback" not in result.output
    for value in NASTY:
        assert value in result.stdout, (value, result.stdout)


def test_validate_prints_rejected_values_literally(tmp_path: Path) -> None:
    config = configure(tmp_path, NASTY, define=False)
    result = runner.invoke(cli.app, ["validate", "--config", str(config)])
    assert_literal(result, 1)
    assert "unknown right 'Bogus [/] right'" in result.stdout


def test_plan_prints_right_names_literally(tmp_path: Path) -> None:
    config = configure(tmp_path, NASTY, define=True)
    result = runner.invoke(cli.app, ["plan", "--config", str(config), "--as-of", "2026-12-01"])
    assert_literal(result, 0)
    assert "Grant (4)" in result.stdout
    assert "warning [backup_holders]" in result.stdout  # the kind is not eaten as a tag either


def test_plan_prints_rejected_values_literally(tmp_path: Path) -> None:
    config = configure(tmp_path, NASTY, define=False)
    result = runner.invoke(cli.app, ["plan", "--config", str(config), "--as-of", "2026-12-01"])
    assert_literal(result, 1)


def test_a_failure_reason_quoting_the_server_prints_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(tmp_path, (), define=False)

    async def failing_sync(settings: Any, run_id: str, as_of: dt.date, **kw: Any) -> Report:
        report = Report(run_id=run_id, command="sync", as_of=as_of, dry_run=False)
        report.extra["planned"] = {"create": len(NASTY)}
        report.failures = [
            Failure(person="85.07.30-***.**", operation="create", reason=f"400: {value}")
            for value in NASTY
        ]
        return report

    monkeypatch.setattr(jobs, "sync", failing_sync)
    result = runner.invoke(cli.app, ["sync", "--config", str(config)])
    assert_literal(result, 1)
    assert "400: Bogus [/] right" in result.stdout


def test_log_of_a_run_prints_journal_details_literally(tmp_path: Path) -> None:
    config = configure(tmp_path, (), define=False)
    store = StateStore.open(load_config(config).state.path)
    try:
        for value in NASTY:
            store.journal("run-1", "create", "failed", label="85.07.30-***.**", detail=value)
    finally:
        store.close()
    result = runner.invoke(cli.app, ["log", "--config", str(config), "--run", "run-1"])
    assert_literal(result, 0)
    as_json = runner.invoke(
        cli.app, ["log", "--config", str(config), "--run", "run-1", "--format", "json"]
    )
    details = [e["detail"] for e in json.loads(as_json.stdout)["entries"]]
    assert details == list(NASTY)


def test_an_error_message_keeps_its_text(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["plan", "--config", str(tmp_path / "[/]nope.toml")])
    assert result.exit_code == 2
    assert "[/]nope.toml" in result.stderr
