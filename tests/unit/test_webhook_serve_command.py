"""`scim-connector serve` refuses to start, with one line and exit code 2, when it cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from tests.factories import HR_FIELDS, hr_row, write_csv

runner = CliRunner()


def config_with(tmp_path: Path, service: str) -> Path:
    write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    config = tmp_path / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        f'[state]\npath = "state.db"\n\n[service]\n{service}\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            'webhook_secret_env = "SCIM_CONNECTOR_TEST_UNSET_SECRET"',
            "service.webhook_secret_env: environment variable "
            "SCIM_CONNECTOR_TEST_UNSET_SECRET is not set",
        ),
        ('webhook_secret_file = "missing.secret"', "service.webhook_secret_file: cannot read"),
        ('schedule = "61 * * * *"', "service.schedule: '61 * * * *' is not a valid cron"),
        ('listen = "8000"', "service.listen: '8000' is not HOST:PORT"),
        ("ready_max_failed_age_seconds = -1", "service.ready_max_failed_age_seconds"),
    ],
)
def test_serve_with_a_configuration_it_cannot_use_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str, message: str
) -> None:
    monkeypatch.delenv("SCIM_CONNECTOR_TEST_UNSET_SECRET", raising=False)
    result = runner.invoke(app, ["serve", "--config", str(config_with(tmp_path, service))])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
