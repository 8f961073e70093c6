"""The state store, its lock and its secret are private (0600, new folders 0700) whatever the
umask; a store others may read is named with the `chmod` that fixes it; webhook secrets are long
enough."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from connector import jobs
from connector.cli import app
from connector.config import MIN_WEBHOOK_SECRET_BYTES, load_config
from connector.errors import ConfigError
from connector.state import StateLock, StateStore, lock_path
from tests.factories import HR_FIELDS, hr_row, write_csv

runner = CliRunner()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def permissive_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def write_config(directory: Path, extra: str = "", state: str = "data/state.db") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        f'[state]\npath = "{state}"\n{extra}',
        encoding="utf-8",
    )
    return config


# ---------------------------------------------------------------------------- created private


def test_store_wal_shm_lock_and_secret_are_created_0600_in_a_0700_folder(
    tmp_path: Path, permissive_umask: int
) -> None:
    settings = load_config(write_config(tmp_path, state="private/deeper/state.db"))
    path = settings.state.path

    with StateLock(lock_path(path)):
        store = StateStore.open(path)
        store.journal("run-1", "create", "before")  # something in the WAL
        settings.state_secret()
        files = {p.name: mode(p) for p in path.parent.iterdir()}
        store.close()

    assert files == {
        "state.db": 0o600,
        "state.db-wal": 0o600,
        "state.db-shm": 0o600,
        "state.db.lock": 0o600,
        "state.db.secret": 0o600,
    }
    assert mode(tmp_path / "private") == 0o700
    assert mode(tmp_path / "private" / "deeper") == 0o700
    assert jobs.loose_state_files(settings) == []


def test_the_service_inbox_store_is_private_too(tmp_path: Path, permissive_umask: int) -> None:
    store = StateStore.open(tmp_path / "state.db", durable=True)
    store.journal("run-1", "create", "before")
    files = {p.name: mode(p) for p in tmp_path.iterdir() if p.name.startswith("state.db")}
    store.close()  # SQLite removes -wal and -shm when the last connection closes

    assert files == {
        "state.db": 0o600,
        "state.db-wal": 0o600,
        "state.db-shm": 0o600,
    }


def test_an_existing_folder_and_store_keep_their_modes(
    tmp_path: Path, permissive_umask: int
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    StateStore.open(folder / "state.db").close()
    os.chmod(folder / "state.db", 0o640)

    StateStore.open(folder / "state.db").close()

    assert mode(folder) == 0o755  # the user's folder: not the connector's to change
    assert mode(folder / "state.db") == 0o640  # the user's choice: warned about, not changed


# ---------------------------------------------------------------------------- loose, warned


def test_an_existing_0644_store_and_secret_are_named_with_their_fix(tmp_path: Path) -> None:
    settings = load_config(write_config(tmp_path, state="state.db"))
    StateStore.open(settings.state.path).close()
    settings.state_secret()
    os.chmod(settings.state.path, 0o644)
    os.chmod(settings.state.generated_secret_path, 0o604)

    loose = jobs.loose_state_files(settings)

    assert [(f.path, f.mode) for f in loose] == [
        (settings.state.path, 0o644),
        (settings.state.generated_secret_path, 0o604),
    ]
    message = loose[0].message
    assert str(settings.state.path) in message
    assert "0644" in message
    assert f"chmod 600 {settings.state.path}" in message


def test_a_configured_secret_file_readable_by_others_is_named(tmp_path: Path) -> None:
    secret = tmp_path / "state-secret"
    secret.write_text("a state secret of enough length\n", encoding="utf-8")
    os.chmod(secret, 0o644)
    settings = load_config(write_config(tmp_path, 'secret_file = "state-secret"\n'))

    assert [f.path for f in jobs.loose_state_files(settings)] == [secret]
    assert mode(secret) == 0o644  # the user's file: only warned about


def test_warned_once_in_the_log_and_in_the_report_of_a_cli_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, state="state.db")
    settings = load_config(config)
    StateStore.open(settings.state.path).close()
    os.chmod(settings.state.path, 0o644)

    with structlog.testing.capture_logs() as logs:
        jobs.warn_loose_state_files(settings)
    assert logs == [
        {
            "event": "state.file_not_private",
            "log_level": "warning",
            "file": str(settings.state.path),
            "mode": "0644",
            "fix": f"chmod 600 {settings.state.path}",
        }
    ]

    result = runner.invoke(app, ["validate", "--config", str(config), "--format", "json"])
    report = json.loads(result.stdout)
    warnings = [w for w in report["warnings"] if w["kind"] == "permissions"]
    assert len(warnings) == 1
    assert warnings[0]["file"] == str(settings.state.path)
    assert f"chmod 600 {settings.state.path}" in warnings[0]["message"]
    assert "state.file_not_private" in result.stderr


# ---------------------------------------------------------------------------- webhook secret


@pytest.mark.parametrize("source", ["env", "file"])
def test_a_short_webhook_secret_is_refused_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    short = "x" * (MIN_WEBHOOK_SECRET_BYTES - 1)
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", short)
    (tmp_path / "webhook.secret").write_text(short + "\n", encoding="utf-8")
    key = "webhook_secret_env" if source == "env" else "webhook_secret_file"
    value = "TEST_WEBHOOK_SECRET" if source == "env" else "webhook.secret"
    settings = load_config(write_config(tmp_path, f'\n[service]\n{key} = "{value}"\n'))

    with pytest.raises(ConfigError) as caught:
        settings.service.resolve_webhook_secret()

    assert caught.value.key == f"service.{key}"
    assert f"at least {MIN_WEBHOOK_SECRET_BYTES} bytes" in str(caught.value)
    assert short not in str(caught.value)


def test_a_random_webhook_secret_of_32_bytes_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "/ehyhADxVIDn6ya8p5XKD817ZOn4FHCh"  # `openssl rand -base64 24`: 32 bytes
    assert len(secret.encode()) == MIN_WEBHOOK_SECRET_BYTES
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", secret)
    config = write_config(tmp_path, '\n[service]\nwebhook_secret_env = "TEST_WEBHOOK_SECRET"\n')

    assert load_config(config).service.resolve_webhook_secret() == secret


def test_serve_with_a_short_webhook_secret_exits_2_without_showing_it(tmp_path: Path) -> None:
    short = "one-character-is-too-few"
    (tmp_path / "webhook.secret").write_text(short, encoding="utf-8")
    config = write_config(tmp_path, '\n[service]\nwebhook_secret_file = "webhook.secret"\n')

    result = subprocess.run(
        [sys.executable, "-m", "connector", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCIM_CONNECTOR_")},
        check=False,
    )

    assert result.returncode == 2, result.stderr
    output = " ".join((result.stdout + result.stderr).split())
    assert "service.webhook_secret_file" in output
    assert f"at least {MIN_WEBHOOK_SECRET_BYTES} bytes" in output
    assert short not in output
    assert "Traceback" not in output
