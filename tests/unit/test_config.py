"""Configuration: loading, validation messages by key, environment overrides and secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from connector.config import (
    DEFAULT_CONFIG_PATH,
    Settings,
    config_path_from_env,
    load_config,
)
from connector.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

# DESIGN.md's minimal file, verbatim: it must work as written.
MINIMAL = """\
[source]
path = "hr.csv"
grants = "grants.csv"                 # optional

[target]
base_url = "http://127.0.0.1:8080/v2"

[target.auth]
method = "bearer"                     # token from the environment variable named here
token_env = "SCIM_TOKEN"              # (token_file = "..." reads it from a file instead)

[state]
path = "state.db"
"""

BASE = """\
[source]
path = "hr.csv"

[target]
base_url = "http://127.0.0.1:8080/v2"
"""

SECRET = "Zq8-very-secret-value-4711"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SCIM_CONNECTOR_* or test secret variables leak in from the caller's environment."""
    for name in list(os.environ):
        if name.upper().startswith("SCIM_CONNECTOR_") or name in {"SCIM_TOKEN", "CLIENT_SECRET"}:
            monkeypatch.delenv(name)


def write(directory: Path, text: str, name: str = "connector.toml") -> Path:
    """Write a config file and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    """The ConfigError that loading `path` raises."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


# ---------------------------------------------------------------------------- loading


def test_minimal_file_loads_as_written(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL))

    assert settings.target.base_url == "http://127.0.0.1:8080/v2"
    assert settings.target.auth.method == "bearer"
    assert settings.target.auth.token_env == "SCIM_TOKEN"
    assert settings.source.kind == "auto"
    assert settings.mapping.file is None  # the built-in mapping
    assert settings.lifecycle.timezone == "Europe/Brussels"
    assert settings.lifecycle.on_missing == "deactivate"
    assert settings.safety.max_deactivations_percent == 20
    assert settings.safety.max_deactivations_count == 500
    assert settings.target.concurrency == 8
    assert settings.config_file == tmp_path / "connector.toml"


def test_repository_minimal_file_is_the_design_one() -> None:
    path = REPO / "config" / "minimal.toml"
    assert path.read_text(encoding="utf-8") == MINIMAL
    assert load_config(path).source.path == REPO / "config" / "hr.csv"


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "connector"
    write(
        folder,
        MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_file = "secrets/token"')
        + '\n[mapping]\nfile = "/opt/mapping.toml"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = load_config(Path("../etc/connector/connector.toml"))

    assert settings.source.path == folder / "hr.csv"
    assert settings.source.grants == folder / "grants.csv"
    assert settings.state.path == folder / "state.db"
    assert settings.target.auth.token_file == folder / "secrets" / "token"
    assert settings.mapping.file == Path("/opt/mapping.toml")  # absolute paths stay as they are


def test_absent_state_section_defaults_to_a_store_beside_the_config(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, BASE))

    assert settings.state.path == tmp_path / "state.db"
    assert settings.target.auth.method == "none"  # no [target.auth]: no authentication


def test_example_configuration_loads() -> None:
    settings = load_config(REPO / "config" / "example.toml")

    assert settings.source.path == REPO / "config" / "demo" / "hr.csv"
    assert settings.source.grants == REPO / "config" / "demo" / "grants.csv"
    assert settings.source.path.exists()
    assert settings.source.grants.exists()


def test_source_kind_follows_the_file_name_when_auto(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, BASE.replace("hr.csv", "hr.jsonl")))

    assert settings.source.kind_of(settings.source.path) == "jsonl"
    assert settings.source.kind_of(Path("grants.csv")) == "csv"


def test_a_safety_limit_can_be_switched_off(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, BASE + "\n[safety]\nmax_deactivations_count = false\n"))

    assert settings.safety.max_deactivations_count is None
    assert settings.safety.max_deactivations_percent == 20


# ---------------------------------------------------------------------------- errors by key


@pytest.mark.parametrize(
    ("extra", "key", "hint"),
    [
        ('\n[target.auth]\nmethod = "none"\nclientid = "x"\n', "target.auth.clientid", "client_id"),
        ("\n[lifecycle]\ntimezon = 'UTC'\n", "lifecycle.timezon", "timezone"),
        ("\n[sate]\npath = 'x.db'\n", "sate", "state"),
    ],
)
def test_unknown_key_is_reported_by_dotted_name(
    tmp_path: Path, extra: str, key: str, hint: str
) -> None:
    error = config_error(write(tmp_path, BASE + extra))

    assert error.key == key
    first_line = str(error).splitlines()[0]
    assert f"{key}: unknown" in first_line
    assert f"did you mean {hint!r}" in first_line


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v2?x=1", "http://127.0.0.1:8080/v2#f"])
def test_a_base_url_with_a_query_or_fragment_is_refused_naming_the_key(
    tmp_path: Path, url: str
) -> None:
    error = config_error(write(tmp_path, BASE.replace("http://127.0.0.1:8080/v2", url)))

    assert error.key == "target.base_url"
    assert "query (?) or fragment (#)" in str(error)


def test_a_typo_is_reported_before_the_required_key_it_hides(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, BASE.replace("base_url", "base_ur")))

    assert error.key == "target.base_ur"
    assert "target.base_url: is required" in str(error)


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ('method = "client_secret_basic"\nclient_id = "c"\nclient_secret_env = "S"', "token_url"),
        (
            'method = "client_secret_post"\ntoken_url = "https://idp/token"\n'
            'client_secret_env = "S"',
            "client_id",
        ),
        (
            'method = "client_secret_basic"\ntoken_url = "https://idp/token"\nclient_id = "c"',
            "client_secret_env",
        ),
        (
            'method = "client_secret_basic"\ntoken_url = "https://idp/token"\nclient_id = "c"\n'
            'client_secret_env = "S"\nclient_secret_file = "s.txt"',
            "client_secret_file",
        ),
        (
            'method = "private_key_jwt"\ntoken_url = "https://idp/token"\nclient_id = "c"',
            "private_key_file",
        ),
        ('method = "bearer"', "token_env"),
        ('token_env = "SCIM_TOKEN"', "token_env"),  # no method: "none", which takes no token
    ],
)
def test_auth_method_names_the_key_it_misses_or_does_not_use(
    tmp_path: Path, auth: str, key: str
) -> None:
    error = config_error(write(tmp_path, BASE + f"\n[target.auth]\n{auth}\n"))

    assert error.key == f"target.auth.{key}"
    assert str(error).splitlines()[0].startswith(f"{tmp_path / 'connector.toml'}: target.auth.")


def test_complete_oauth_methods_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE + '\n[target.auth]\nmethod = "private_key_jwt"\ntoken_url = "https://idp/token"\n'
        'client_id = "c"\nprivate_key_file = "key.pem"\nscope = "scim"\naudience = "a"\n',
    )
    auth = load_config(path).target.auth

    assert auth.private_key_file == tmp_path / "key.pem"
    assert auth.signing_alg == "RS256"


def test_bad_timezone_names_the_key(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, BASE + '\n[lifecycle]\ntimezone = "Europe/Brusel"\n'))

    assert error.key == "lifecycle.timezone"
    assert "not a known time zone" in str(error)


def test_every_error_is_reported_one_per_line(tmp_path: Path) -> None:
    text = BASE.replace('"hr.csv"', '"hr.csv"\nkind = "xls"') + "\n[safety]\nmin_holders = -1\n"
    error = config_error(write(tmp_path, text))

    lines = str(error).splitlines()
    assert error.key == "source.kind"
    assert "source.kind: must be 'auto', 'csv' or 'jsonl' (got 'xls')" in lines[0]
    assert any("safety.min_holders: must be greater than or equal to 0" in line for line in lines)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, '[source]\npath = "hr.csv"\n[target\n'))

    assert error.key == "line 3"
    assert "invalid TOML" in str(error)


def test_missing_file_is_a_config_error_on_the_option(tmp_path: Path) -> None:
    error = config_error(tmp_path / "nope.toml")

    assert error.key == "--config"
    assert "nope.toml" in str(error)


def test_config_path_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_path_from_env() == DEFAULT_CONFIG_PATH == Path("config/connector.toml")
    monkeypatch.setenv("SCIM_CONNECTOR_CONFIG", "/etc/scim/connector.toml")
    assert config_path_from_env() == Path("/etc/scim/connector.toml")


# ---------------------------------------------------------------------------- environment


def test_environment_overrides_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_CONNECTOR_TARGET__BASE_URL", "https://scim.example.org/v2/")
    monkeypatch.setenv("scim_connector_target__auth__method", "bearer")  # case-insensitive
    monkeypatch.setenv("SCIM_CONNECTOR_TARGET__AUTH__TOKEN_ENV", "OTHER_TOKEN")
    monkeypatch.setenv("SCIM_CONNECTOR_SAFETY__MAX_DEACTIVATIONS_COUNT", "7")
    monkeypatch.setenv("SCIM_CONNECTOR_SOURCE__PATH", "today/hr.jsonl")

    settings = load_config(write(tmp_path, BASE))

    assert settings.target.base_url == "https://scim.example.org/v2"
    assert settings.target.auth.method == "bearer"
    assert settings.target.auth.token_env == "OTHER_TOKEN"
    assert settings.safety.max_deactivations_count == 7
    assert settings.source.path == tmp_path / "today" / "hr.jsonl"


def test_bad_environment_override_names_key_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_CONNECTOR_TARGET__CONCURRENCY", "many")

    error = config_error(write(tmp_path, BASE))

    assert error.key == "target.concurrency"
    assert "SCIM_CONNECTOR_TARGET__CONCURRENCY" in str(error)


def test_environment_variable_for_no_section_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_CONNECTOR_TARGT__BASE_URL", "https://x")

    error = config_error(write(tmp_path, BASE))

    assert "SCIM_CONNECTOR_TARGT__BASE_URL" in str(error)


# ---------------------------------------------------------------------------- secrets


def test_token_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_config(write(tmp_path, MINIMAL))
    monkeypatch.setenv("SCIM_TOKEN", SECRET)  # read at use, not at load

    assert settings.target.auth.resolve_token() == SECRET
    assert SECRET not in repr(settings)


def test_token_from_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SECRET + "\n", encoding="utf-8")
    text = MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_file = "token"')

    settings = load_config(write(tmp_path, text))

    assert settings.target.auth.resolve_token() == SECRET


@pytest.mark.parametrize("from_file", [False, True])
def test_client_secret_from_environment_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_file: bool
) -> None:
    if from_file:
        (tmp_path / "client-secret").write_text(SECRET, encoding="utf-8")
        where = 'client_secret_file = "client-secret"'
    else:
        monkeypatch.setenv("CLIENT_SECRET", SECRET)
        where = 'client_secret_env = "CLIENT_SECRET"'
    auth = (
        f'\n[target.auth]\nmethod = "client_secret_basic"\ntoken_url = "https://idp/token"\n'
        f'client_id = "connector"\n{where}\n'
    )

    settings = load_config(write(tmp_path, BASE + auth))

    assert settings.target.auth.resolve_client_secret() == SECRET


def test_missing_secret_variable_names_the_key(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL))

    with pytest.raises(ConfigError) as caught:
        settings.target.auth.resolve_token()

    assert caught.value.key == "target.auth.token_env"
    assert str(caught.value) == "target.auth.token_env: environment variable SCIM_TOKEN is not set"


def test_missing_secret_file_names_the_key(tmp_path: Path) -> None:
    text = MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_file = "absent"')
    settings = load_config(write(tmp_path, text))

    with pytest.raises(ConfigError) as caught:
        settings.target.auth.resolve_token()

    assert caught.value.key == "target.auth.token_file"
    assert "cannot read" in str(caught.value)


def test_private_key_must_be_private(tmp_path: Path) -> None:
    (tmp_path / "key.jwk").write_text(json.dumps({"kty": "RSA", "n": SECRET, "e": "AQAB"}))
    auth = (
        '\n[target.auth]\nmethod = "private_key_jwt"\ntoken_url = "https://idp/token"\n'
        'client_id = "c"\nprivate_key_file = "key.jwk"\n'
    )
    settings = load_config(write(tmp_path, BASE + auth))

    with pytest.raises(ConfigError) as caught:
        settings.target.auth.resolve_private_key()

    assert caught.value.key == "target.auth.private_key_file"
    assert "public JWK" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        # a secret pasted inline, under a key that does not exist
        MINIMAL.replace(
            'token_env = "SCIM_TOKEN"', f'token_env = "SCIM_TOKEN"\ntoken = "{SECRET}"'
        ),
        # a secret pasted where the name of its variable belongs
        MINIMAL.replace('token_env = "SCIM_TOKEN"', f'token_env = "{SECRET}"'),
        # credentials in the URL
        MINIMAL.replace("http://127.0.0.1", f"http://user:{SECRET}@127.0.0.1"),
    ],
)
def test_config_error_never_shows_a_secret_at_load(tmp_path: Path, text: str) -> None:
    error = config_error(write(tmp_path, text))

    assert error.key.startswith("target.")
    assert SECRET not in str(error)


def test_config_error_never_shows_a_secret_at_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = "s3cr3t!"
    monkeypatch.setenv("SCIM_CONNECTOR_STATE_SECRET", short)
    path = write(tmp_path, BASE + '\n[state]\nsecret_env = "SCIM_CONNECTOR_STATE_SECRET"\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path).state_secret()

    assert caught.value.key == "state.secret_env"
    assert "too short" in str(caught.value)
    assert short not in str(caught.value)


# ---------------------------------------------------------------------------- state secret


def test_state_secret_is_generated_beside_the_store_with_mode_0600(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL))
    secret_file = tmp_path / "state.db.secret"
    assert not secret_file.exists()

    first = settings.state_secret()

    assert secret_file.exists()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert settings.state_secret() == first
    assert load_config(tmp_path / "connector.toml").state_secret() == first
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_state_secret_from_environment_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_SECRET", SECRET)
    from_env = load_config(write(tmp_path, BASE + '\n[state]\nsecret_env = "STATE_SECRET"\n'))
    (tmp_path / "state-secret").write_text(SECRET + "\n", encoding="utf-8")
    from_file = load_config(write(tmp_path, BASE + '\n[state]\nsecret_file = "state-secret"\n'))

    assert from_env.state_secret() == SECRET.encode()
    assert from_file.state_secret() == SECRET.encode()
    assert not (tmp_path / "state.db.secret").exists()


def test_settings_built_without_a_file_keep_their_paths() -> None:
    settings = Settings.model_validate(
        {"source": {"path": "hr.csv"}, "target": {"base_url": "http://localhost:1/v2"}}
    )

    assert settings.source.path == Path("hr.csv")
    assert settings.config_file is None
