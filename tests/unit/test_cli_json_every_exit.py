"""Every command that takes `--format json` prints exactly one JSON object on every exit, with
`exit_code` and `errors`, errors included; and the state commands' smaller promises: a backup
into a folder that does not exist, or a restore from a folder, is a clear error (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from connector.cli import app
from connector.state import StateStore
from tests.factories import HR_FIELDS, hr_row, write_csv

runner = CliRunner()


def _with_format(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the app that has a `--format` option, as argv paths."""
    found = []
    for name, command in getattr(group, "commands", {}).items():
        here = (*path, name)
        found += _with_format(command, here)
        if any("--format" in getattr(p, "opts", ()) for p in command.params):
            found.append(here)
    return found


FORMATTED = _with_format(typer.main.get_command(app))
ARGUMENTS = {("approve",): ["20260101T000000Z-abcdef"], ("state", "backup"): ["b.db"]}
ARGUMENTS[("state", "restore")] = ["b.db"]
ARGUMENTS[("log",)] = ["--run", "x"]
ARGUMENTS[("state", "migrate")] = ["--to", "postgresql://connector@127.0.0.1:9/none"]
ARGUMENTS[("resync",)] = ["--employee", "0207451227:E1"]
ARGUMENTS[("resolve",)] = ["--employee", "0207451227:E1", "--new-account"]


def json_of(*args: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, [*args, "--format", "json"])
    return result.exit_code, json.loads(result.stdout), result.stderr


def setup(directory: Path) -> Path:
    write_csv(directory / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n\n[lifecycle]\ntimezone = "Europe/Brussels"\n',
        encoding="utf-8",
    )
    return config


def test_the_state_commands_are_among_those_with_a_format() -> None:
    assert {("log",), ("approve",), ("resolve",), ("state", "backup"), ("state", "restore")} <= set(
        FORMATTED
    )


@pytest.mark.parametrize("command", FORMATTED, ids=" ".join)
def test_a_missing_config_answers_one_json_object_with_exit_2(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    args = [*command, *ARGUMENTS.get(command, []), "--config", str(tmp_path / "none.toml")]
    code, answer, stderr = json_of(*args)
    assert code == 2
    assert answer["exit_code"] == 2
    assert [e["kind"] for e in answer["errors"]] == ["config"]
    assert "error:" in stderr


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["--employee", "no-colon"], "usage"),
        ([], "usage"),
        (["--run", "a", "--employee", "0207451227:E1"], "usage"),
    ],
)
def test_log_answers_json_on_a_bad_selector(args: list[str], kind: str, tmp_path: Path) -> None:
    code, answer, _ = json_of("log", *args, "--config", str(setup(tmp_path)))
    assert (code, answer["command"], answer["exit_code"]) == (2, "log", 2)
    assert [e["kind"] for e in answer["errors"]] == [kind]


def test_log_json_of_a_run_has_exit_code_and_errors(tmp_path: Path) -> None:
    config = setup(tmp_path)
    StateStore.open(tmp_path / "state.db").close()
    code, answer, _ = json_of("log", "--run", "20260101T000000Z-abcdef", "--config", str(config))
    assert (code, answer["exit_code"], answer["errors"], answer["entries"]) == (0, 0, [], [])
    assert answer["timezone"] == "Europe/Brussels"


def test_backup_and_restore_answer_json_and_refuse_a_missing_folder_or_a_folder(
    tmp_path: Path,
) -> None:
    config = setup(tmp_path)
    StateStore.open(tmp_path / "state.db").close()
    code, answer, _ = json_of("state", "backup", str(tmp_path / "b.db"), "-c", str(config))
    assert (code, answer["command"], answer["exit_code"], answer["errors"]) == (
        0,
        "state backup",
        0,
        [],
    )
    missing = tmp_path / "no-such-folder" / "b.db"
    code, answer, stderr = json_of("state", "backup", str(missing), "-c", str(config))
    assert code == 2 and "no-such-folder does not exist" in answer["errors"][0]["message"]
    assert not missing.parent.exists()
    code, answer, stderr = json_of("state", "restore", str(tmp_path), "-c", str(config))
    assert code == 2 and "is a folder" in stderr
    assert "disk I/O" not in stderr
    code, answer, _ = json_of("state", "restore", str(tmp_path / "b.db"), "-c", str(config))
    assert (code, answer["command"], answer["exit_code"]) == (0, "state restore", 0)


def test_approve_of_an_unknown_run_answers_json(tmp_path: Path) -> None:
    config = setup(tmp_path)
    code, answer, _ = json_of("approve", "20260101T000000Z-abcdef", "-c", str(config))
    assert (code, answer["command"], answer["exit_code"]) == (2, "approve", 2)
    assert answer["errors"]


def test_approve_gives_its_expiry_in_the_configured_time_zone(tmp_path: Path) -> None:
    config = setup(tmp_path)
    store = StateStore.open(tmp_path / "state.db")
    store.record_stopped("20260101T000000Z-abcdef", "sync", dt.date(2026, 1, 1), "f" * 32)
    store.close()
    text = runner.invoke(app, ["approve", "20260101T000000Z-abcdef", "-c", str(config)])
    assert text.exit_code == 0, text.output
    assert re.search(r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T\.", text.stdout)
    code, answer, _ = json_of("approve", "20260101T000000Z-abcdef", "-c", str(config))
    assert (code, answer["exit_code"], answer["errors"]) == (0, 0, [])
    assert answer["timezone"] == "Europe/Brussels"
    assert re.search(r"\+0[12]:00$", answer["expires_at"])
