"""A state store belongs to one installation: `state restore` refuses another installation's
backup (another state secret, another target), and a sync refuses a store of another secret,
before anything reaches the target."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector import cli
from connector.state import StateError, StateStore
from tests.integration.conftest import ScimTenants
from tests.integration.test_rights import Rights, person
from tests.postgres import StateBackend

pytestmark = pytest.mark.integration
D = dt.date
OTHER_SECRET = "another installation's state secret, 32 bytes or more\n"


def installation(tenants: ScimTenants, directory: Path, state: StateBackend) -> Rights:
    """A connector of its own, in `directory`, managing three people at Scheldeveld."""
    directory.mkdir()
    return Rights(tenants.new(), directory, [person(n) for n in (1, 2, 3)], state=state)


def state(rights: Rights, *args: str) -> tuple[int, str, str]:
    """`scim-connector state ...` with this connector's configuration: exit code, out, err."""
    result = CliRunner().invoke(cli.app, ["state", *args, "--config", str(rights.write())])
    return result.exit_code, result.stdout, result.stderr


def secret_file(rights: Rights) -> Path:
    """The file holding the state secret of this connector (generated beside a SQLite store)."""
    if rights.state.name == "sqlite":
        return rights.directory / "state.db.secret"
    return rights.directory / rights.state.secret_file


def backup_of(rights: Rights, tmp_path: Path, name: str) -> Path:
    to = tmp_path / name
    code, _, err = state(rights, "backup", str(to))
    assert code == 0, err
    return to


def fingerprints(rights: Rights) -> int:
    """How many state secret fingerprints the connector's store records."""
    store = StateStore.open(rights.state.location(rights.directory))
    try:
        return 0 if store.secret_fingerprint() is None else 1
    finally:
        store.close()


def test_a_backup_made_with_another_state_secret_is_refused_and_the_store_kept(
    scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend
) -> None:
    ours = installation(scim_tenants, tmp_path / "ours", state_backend)
    theirs = installation(scim_tenants, tmp_path / "theirs", state_backend)
    theirs.server = ours.server  # the same target, but their own state secret
    if state_backend.name == "postgresql":  # given, not generated
        secret_file(theirs).write_text(OTHER_SECRET)
    theirs.rows = [person(n) for n in (4, 5)]
    ours.sync(D(2026, 12, 1))
    theirs.sync(D(2026, 12, 1))

    code, out, err = state(ours, "restore", str(backup_of(theirs, tmp_path, "theirs.db")))

    assert code == 2
    assert "another state secret than this installation's" in err
    if state_backend.name == "sqlite":
        generated = ours.directory / "state.db.secret"
        assert f"the generated secret {generated}" in " ".join(err.split())
    for secret in (secret_file(ours), secret_file(theirs)):
        assert secret.read_text().strip() not in out + err
    assert sum(ours.sync(D(2026, 12, 2)).counts.values()) == 0  # ours, unchanged


def test_a_backup_of_another_target_is_refused_naming_both_targets(
    scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend
) -> None:
    ours = installation(scim_tenants, tmp_path / "ours", state_backend)
    test_env = installation(scim_tenants, tmp_path / "test", state_backend)  # another target
    ours.sync(D(2026, 12, 1))
    secret_file(test_env).write_bytes(secret_file(ours).read_bytes())  # the same secret
    test_env.sync(D(2026, 12, 1))

    code, out, _ = state(
        ours, "restore", str(backup_of(test_env, tmp_path, "test.db")), "--format", "json"
    )

    assert code == 2
    (error,) = json.loads(out)["errors"]
    assert f"another target ({test_env.server.base_url})" in error["message"]
    assert f"not of target.base_url {ours.server.base_url}" in error["message"]
    assert sum(ours.sync(D(2026, 12, 2)).counts.values()) == 0


def test_a_backup_from_before_the_fingerprint_is_restored_with_a_warning_and_then_recorded(
    scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend
) -> None:
    ours = installation(scim_tenants, tmp_path / "ours", state_backend)
    ours.sync(D(2026, 12, 1))
    old = backup_of(ours, tmp_path, "old.db")
    with sqlite3.connect(old) as db:  # as a backup made by an older version (SQLite, always)
        db.execute("DELETE FROM installation")

    code, out, err = state(ours, "restore", str(old))

    assert code == 0, err
    assert "cannot be checked to be this installation's" in " ".join(err.split())
    assert "State store restored" in out
    assert sum(ours.sync(D(2026, 12, 2)).counts.values()) == 0
    assert fingerprints(ours) == 1

    # Recorded now: a backup of it is checked like any other.
    secret_file(ours).write_text(OTHER_SECRET)
    code, _, err = state(ours, "restore", str(backup_of(ours, tmp_path, "new.db")))
    assert code == 2 and "another state secret" in err


def test_a_sync_with_another_state_secret_is_refused_before_it_writes(
    scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend
) -> None:
    ours = installation(scim_tenants, tmp_path / "ours", state_backend)
    ours.sync(D(2026, 12, 1))
    users = ours.users()
    secret_file(ours).write_text(OTHER_SECRET)  # lost and made again, or another one given

    with pytest.raises(StateError, match="another state secret than this installation's"):
        ours.run(D(2026, 12, 2))

    assert ours.users() == users and not ours.wire.sent


def test_a_backup_of_this_target_at_its_old_address_is_restored_when_told_it_moved(
    scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend
) -> None:
    ours = installation(scim_tenants, tmp_path / "ours", state_backend)
    ours.sync(D(2026, 12, 1))
    backup = backup_of(ours, tmp_path, "before-the-move.db")
    # The same server, now reached by another name: the configuration's base_url changes.
    ours.server = replace(
        ours.server, base_url=ours.server.base_url.replace("127.0.0.1", "localhost")
    )

    refused, _, err = state(ours, "restore", str(backup))
    assert refused == 2 and "--target-moved" in err

    code, out, _ = state(ours, "restore", str(backup), "--target-moved", "--format", "json")

    assert code == 0
    (warning,) = json.loads(out)["warnings"]
    assert warning["kind"] == "target_moved"
    after = ours.sync(D(2026, 12, 2))
    assert after.exit_code == 0
    assert sum(after.counts.values()) == 0  # the same people, known, nothing created again
    assert len(ours.users()) == 3
