"""`scim-connector serve --config FOLDER`: one organisation per configuration file, refused with
one line and exit code 2 (naming the file and key) when the folder cannot be served as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.errors import ConfigError
from connector.service.organisations import load_organisations, sharing_a_secret
from tests.factories import HR_FIELDS, hr_row, write_csv

runner = CliRunner()


def organisation(folder: Path, name: str, *, state: str = "", service: str = "") -> Path:
    """`<folder>/<name>.toml`, its HR file and state in `<folder>/<name>/`."""
    data = folder / name
    data.mkdir(parents=True, exist_ok=True)
    write_csv(data / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    config = folder / f"{name}.toml"
    state = state or f'path = "{name}/state.db"'
    config.write_text(
        f'[source]\npath = "{name}/hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        f"[state]\n{state}\n\n[service]\n{service}\n",
        encoding="utf-8",
    )
    return config


def serve(folder: Path) -> str:
    result = runner.invoke(app, ["serve", "--config", str(folder)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_each_configuration_file_is_an_organisation_named_after_it(tmp_path: Path) -> None:
    for name in ("gent", "brugge", "sint-niklaas"):
        organisation(tmp_path, name)
    (tmp_path / "README.txt").write_text("not a configuration")

    found = load_organisations(tmp_path)

    assert [o.name for o in found] == ["brugge", "gent", "sint-niklaas"]
    assert found[1].settings.state.path == tmp_path / "gent" / "state.db"


def test_two_organisations_on_one_sqlite_store_are_refused(tmp_path: Path) -> None:
    organisation(tmp_path, "gent", state='path = "shared.db"')
    organisation(tmp_path, "brugge", state='path = "shared.db"')

    message = serve(tmp_path)

    assert "state.path" in message
    assert "brugge.toml and gent.toml keep their state in the same place" in message


def test_two_organisations_in_one_postgresql_schema_are_refused(tmp_path: Path) -> None:
    for name in ("gent", "brugge"):
        state = (
            f'path = "{name}/state.db"\nurl = "postgresql://connector@db.example.be/state"\n'
            'schema = "lokaal"\nsecret_env = "STATE_SECRET"'
        )
        organisation(tmp_path, name, state=state)

    with pytest.raises(ConfigError, match=r"state\.schema: brugge\.toml and gent\.toml"):
        load_organisations(tmp_path)


def test_organisations_must_agree_on_what_the_process_does_once(tmp_path: Path) -> None:
    organisation(tmp_path, "gent", service='listen = "127.0.0.1:8000"')
    organisation(tmp_path, "brugge", service='listen = "127.0.0.1:8001"')

    message = serve(tmp_path)

    assert "service.listen" in message
    assert "brugge.toml says '127.0.0.1:8001', gent.toml says '127.0.0.1:8000'" in message


def test_a_file_name_that_cannot_name_an_organisation_is_refused(tmp_path: Path) -> None:
    organisation(tmp_path, "Gent Stad")

    message = serve(tmp_path)

    assert "Gent Stad.toml" in message and "rename the file" in message


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    message = serve(tmp_path)

    assert "a folder without configuration files" in message


def test_one_organisations_bad_configuration_names_its_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCIM_CONNECTOR_TEST_UNSET_SECRET", raising=False)
    organisation(tmp_path, "gent")
    organisation(
        tmp_path, "brugge", service='webhook_secret_env = "SCIM_CONNECTOR_TEST_UNSET_SECRET"'
    )

    message = serve(tmp_path)

    assert "brugge.toml" in message
    assert "service.webhook_secret_env: environment variable" in message


def test_a_folder_given_to_a_command_for_one_organisation_says_so(tmp_path: Path) -> None:
    organisation(tmp_path, "gent")

    result = runner.invoke(app, ["plan", "--config", str(tmp_path)])

    assert result.exit_code == 2, result.output
    assert "is a folder" in result.output and "serve" in result.output


def test_organisations_sharing_a_webhook_secret_are_named() -> None:
    secrets = {"brugge": "s1", "gent": "s2", "kortrijk": "s1", "mechelen": None, "ninove": None}

    assert sharing_a_secret(secrets) == [("brugge", "kortrijk")]


def test_a_toml_entry_that_is_not_a_file_is_refused_not_skipped(tmp_path: Path) -> None:
    organisation(tmp_path, "gent")
    (tmp_path / "mechelen.toml").symlink_to(tmp_path / "not-mounted-yet" / "mechelen.toml")

    message = serve(tmp_path)

    assert "mechelen.toml is not a file (a broken link?)" in message
    (tmp_path / "mechelen.toml").unlink()
    (tmp_path / "leuven.toml").mkdir()
    assert "leuven.toml is a folder" in serve(tmp_path)


def test_an_environment_override_of_an_organisations_own_key_is_refused_with_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    organisation(tmp_path, "gent")
    organisation(tmp_path, "brugge")
    monkeypatch.setenv("SCIM_CONNECTOR_TARGET__BASE_URL", "http://127.0.0.1:9/other/v2")

    message = serve(tmp_path)

    assert "SCIM_CONNECTOR_TARGET__BASE_URL would set target.base_url for every organisation" in (
        message
    )
    monkeypatch.setenv("SCIM_CONNECTOR_TARGET__BASE_URL", "")  # empty: unset, as documented
    monkeypatch.setenv("SCIM_CONNECTOR_SERVICE__LISTEN", "127.0.0.1:8123")  # the process's own
    found = load_organisations(tmp_path)
    assert {o.settings.service.listen for o in found} == {"127.0.0.1:8123"}


def test_a_shared_key_left_at_its_default_is_said_to_be_the_default(tmp_path: Path) -> None:
    organisation(tmp_path, "gent")
    organisation(tmp_path, "brugge", service='listen = "127.0.0.1:8001"')

    message = serve(tmp_path)

    assert "gent.toml leaves it at the default '127.0.0.1:8000'" in message
