"""`--format json` on validate, plan, sync and resync: one JSON object on stdout on every exit,
the error exits (2) included, through a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer

from connector.state import StateLock, lock_path
from tests.factories import HR_FIELDS, hr_row, write_csv

RUN_COMMANDS = ["validate", "plan", "sync", "resync"]
TARGET_COMMANDS = ["sync", "resync"]  # validate and plan contact nobody
SECRET = "client-secret-that-must-never-be-printed"
COUNT_KINDS = {"create", "update", "activate", "deactivate", "delete", "grant", "withdraw"}


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_setup(directory: Path, base_url: str | None = None, extra: str = "") -> Path:
    rows = [hr_row(n) for n in range(1, 4)]
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n\n'
        f'[target]\nbase_url = "{base_url or f"http://127.0.0.1:{closed_port()}/v2"}"\n\n'
        f"[target.retry]\nattempts = 1\n\n"
        f'[state]\npath = "state.db"\n{extra}',
        encoding="utf-8",
    )
    return config


def command_line(command: str, config: Path, *more: str) -> list[str]:
    args = [command, "--config", str(config), "--format", "json", *more]
    if command == "resync":
        args += ["--employee", f"{hr_row(1)['organisation_code']}:{hr_row(1)['employee_id']}"]
    return args


def run_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """Run the CLI; stdout must be exactly one JSON object."""
    result = subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    answer = json.loads(result.stdout)  # raises on anything but one JSON document
    assert isinstance(answer, dict)
    assert "Traceback" not in result.stderr
    return result.returncode, answer, result.stderr


def assert_stopped(
    code: int, answer: dict[str, Any], stderr: str, command: str, kind: str, expected: str
) -> None:
    """Exit 2, the contract's fields with nothing counted, one error of this kind, and the
    same message as the one line on stderr."""
    assert code == 2, (answer, stderr)
    assert answer["exit_code"] == 2
    assert answer["command"] == command
    assert isinstance(answer["run_id"], str) and answer["run_id"]
    assert answer["dry_run"] is (command in ("validate", "plan"))
    assert answer["counts"] == dict.fromkeys(COUNT_KINDS, 0)
    assert answer["rejected"] == [] and answer["warnings"] == [] and answer["failures"] == []
    assert answer["safety_stopped"] is False
    [error] = answer["errors"]
    assert error["kind"] == kind, error
    assert expected in error["message"]
    assert stderr.strip() == f"error: {error['message']}"


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_config_that_does_not_exist(tmp_path: Path, command: str) -> None:
    code, answer, stderr = run_json(*command_line(command, tmp_path / "nope.toml"))
    assert_stopped(code, answer, stderr, command, "config", "nope.toml")
    assert answer["as_of"] is None  # the run date comes from the config's time zone


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_config_with_a_bad_key(tmp_path: Path, command: str) -> None:
    config = write_setup(tmp_path, extra="\n[lifecycle]\ntimezon = 'Europe/Brussels'\n")
    code, answer, stderr = run_json(*command_line(command, config, "--as-of", "2026-12-01"))
    assert_stopped(code, answer, stderr, command, "config", "lifecycle.timezon")
    assert answer["as_of"] == "2026-12-01"  # given, so known before the config was read


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_hr_file_that_is_missing(tmp_path: Path, command: str) -> None:
    config = write_setup(tmp_path)
    (tmp_path / "hr.csv").unlink()
    code, answer, stderr = run_json(*command_line(command, config))
    assert_stopped(code, answer, stderr, command, "input", "hr.csv")
    assert isinstance(answer["as_of"], str)  # today, once the config was read


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_bad_as_of(tmp_path: Path, command: str) -> None:
    config = write_setup(tmp_path)
    code, answer, stderr = run_json(*command_line(command, config, "--as-of", "1 december"))
    assert_stopped(code, answer, stderr, command, "usage", "--as-of")
    assert answer["as_of"] is None


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("command", TARGET_COMMANDS)
def test_target_that_is_down(tmp_path: Path, command: str, dry_run: bool) -> None:
    config = write_setup(tmp_path)
    more = ["--as-of", "2026-12-01"] + (["--dry-run"] if dry_run else [])
    code, answer, stderr = run_json(*command_line(command, config, *more))
    assert code == 2 and answer["dry_run"] is dry_run
    assert answer["errors"][0]["kind"] == "target"
    assert answer["as_of"] == "2026-12-01" and answer["exit_code"] == 2
    assert stderr.strip() == f"error: {answer['errors'][0]['message']}"


@pytest.mark.parametrize("command", TARGET_COMMANDS)
def test_state_lock_held_by_another_process(tmp_path: Path, command: str) -> None:
    config = write_setup(tmp_path)
    with StateLock(lock_path(tmp_path / "state.db")):  # this test's process holds it
        code, answer, stderr = run_json(*command_line(command, config))
    assert_stopped(code, answer, stderr, command, "lock", "another sync is running")


class RefusingTokenEndpoint(BaseHTTPRequestHandler):
    """A token endpoint that refuses every client."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": "invalid_client"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_token_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingTokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", TARGET_COMMANDS)
def test_authentication_refused_names_no_secret(
    tmp_path: Path, command: str, refusing_token_url: str
) -> None:
    auth = (
        '\n[target.auth]\nmethod = "client_secret_basic"\n'
        f'token_url = "{refusing_token_url}"\nclient_id = "connector"\n'
        'client_secret_env = "TEST_CLIENT_SECRET"\n'
    )
    config = write_setup(tmp_path, extra=auth)
    code, answer, stderr = run_json(
        *command_line(command, config), env={"TEST_CLIENT_SECRET": SECRET}
    )
    assert_stopped(code, answer, stderr, command, "auth", "connector")
    assert SECRET not in json.dumps(answer) + stderr


def test_resync_without_a_selection(tmp_path: Path) -> None:
    config = write_setup(tmp_path)
    code, answer, stderr = run_json("resync", "--config", str(config), "--format", "json")
    assert_stopped(code, answer, stderr, "resync", "usage", "--employee")


def test_resync_of_a_bad_national_number_does_not_echo_it(tmp_path: Path) -> None:
    config = write_setup(tmp_path)
    bad = "85073003329"  # bad check digits
    code, answer, stderr = run_json(
        "resync", "--config", str(config), "--format", "json", "--person", bad
    )
    assert code == 2 and answer["exit_code"] == 2 and answer["errors"]
    assert bad not in json.dumps(answer) + stderr


def test_text_format_keeps_stdout_empty_and_one_line_on_stderr(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connector", "plan", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_a_report_has_an_empty_errors_list(tmp_path: Path) -> None:
    config = write_setup(tmp_path)
    code, answer, _ = run_json("validate", "--config", str(config), "--format", "json")
    assert code == 0 and answer["errors"] == [] and answer["exit_code"] == 0


def test_a_safety_stop_that_escapes_as_an_error_answers_exit_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from connector.cli.exits import guarded
    from connector.cli.output import Format
    from connector.cli.runs import Attempt
    from connector.errors import SafetyStop

    attempt = Attempt("sync", Format.JSON, dry_run=False)

    def action() -> None:
        raise SafetyStop("too many deactivations")

    with pytest.raises(typer.Exit) as stopped:
        guarded(action, attempt.answer())
    assert stopped.value.exit_code == 3
    answer = json.loads(capsys.readouterr().out)
    assert answer["exit_code"] == 3 and answer["safety_stopped"] is True
    assert answer["errors"] == [{"kind": "safety", "message": "too many deactivations"}]
    assert answer["run_id"] == attempt.run_id
