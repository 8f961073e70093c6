"""`[state]`: a SQLite file (`path`, the default) or a PostgreSQL database (`url`), its password
from the environment or a file, never in the URL or a message; a bad key is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import load_config
from connector.errors import ConfigError
from connector.state import PostgresAddress

BASE = '[source]\npath = "hr.csv"\n[target]\nbase_url = "http://127.0.0.1:8080/v2"\n'
URL = "postgresql://scim_connector@db.example.be:5432/scim_connector"
SECRET = "not-a-real-password-4711"


def config_error(tmp_path: Path, state: str) -> ConfigError:
    (tmp_path / "c.toml").write_text(BASE + "[state]\n" + state, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "c.toml").state.location  # noqa: B018 (read when used)
    return caught.value


def test_path_is_the_default_and_a_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(BASE, encoding="utf-8")
    assert load_config(tmp_path / "c.toml").state.location == tmp_path / "state.db"


def test_url_with_its_password_and_tls_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    text = (
        f'url = "{URL}"\npassword_env = "DB_PASSWORD"\nsslmode = "verify-full"\n'
        'sslrootcert = "ca.pem"\nsecret_env = "STATE_SECRET"\n'
    )
    (tmp_path / "c.toml").write_text(BASE + "[state]\n" + text, encoding="utf-8")
    location = load_config(tmp_path / "c.toml").state.location
    assert location == PostgresAddress(URL, SECRET, "verify-full", tmp_path / "ca.pem")
    assert SECRET not in repr(location) and SECRET not in str(location)


@pytest.mark.parametrize(
    ("state", "key", "says"),
    [
        (f'url = "{URL.replace("@", ":" + SECRET + "@")}"\nsecret_env = "S"\n', "state.url",
         "must not contain a password"),
        ('url = "mysql://db/x"\nsecret_env = "S"\n', "state.url", "postgresql://"),
        (f'url = "{URL}"\n', "state.secret_file", "needs its secret given"),
        ('password_env = "DB_PASSWORD"\n', "state.password_env", "only used with state.url"),
        ('sslmode = "require"\n', "state.sslmode", "only used with state.url"),
        (f'url = "{URL}"\nsecret_env = "S"\nsslmode = "sometimes"\n', "state.sslmode", ""),
        (f'url = "{URL}"\nsecret_env = "S"\npassword_env = "UNSET_PASSWORD_VARIABLE"\n',
         "state.password_env", "is not set"),
        (f'url = "{URL}"\nsecret_env = "S"\npassword_file = "missing"\n', "state.password_file",
         "cannot read"),
    ],
)  # fmt: skip
def test_a_bad_state_key_is_named_and_no_password_shown(
    tmp_path: Path, state: str, key: str, says: str
) -> None:
    error = config_error(tmp_path, state)
    assert error.key == key and says in str(error)
    assert SECRET not in str(error)
