"""`scim-connector resolve` and the shared-address warning of `validate`, at the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from connector.cli import app
from connector.config import load_config
from connector.known import Digests, KnownUser
from connector.planning import keyring
from connector.state import CorrelationCase, StateStore
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv

runner = CliRunner()
REPOSITORY = Path(__file__).parents[2]
NEWCOMER = "99.09.09-302.18"


def test_validate_warns_that_two_people_of_the_demo_data_share_one_address() -> None:
    config = REPOSITORY / "config" / "demo" / "connector.toml"
    result = runner.invoke(app, ["validate", "--config", str(config), "--format", "json"])
    report = json.loads(result.stdout)
    [warning] = [w for w in report["warnings"] if w["kind"] == "shared_email"]
    assert "marieke.aerts@scheldeveld.be" in warning["message"]
    assert "0216293766:G1012" in warning["message"] and "0216293766:G1026" in warning["message"]
    assert "73010925644" not in result.stdout and "85073003328" not in result.stdout
    assert not (config.parent / "state.db").exists()


def held(tmp_path: Path) -> tuple[Path, str]:
    """A config whose state store holds one open case (the newcomer, employee B7) about an
    account the store links to another person; the newcomer's person key."""
    write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    config = tmp_path / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    key = keyring(load_config(config)).person_key("99090930218")
    store = StateStore.open(tmp_path / "state.db")
    store.save_user(
        KnownUser(
            key="leaver",
            label="66.06.06-***.**",
            scim_id="acc-a",
            user_name="jan.peeters@gent.be",
            active=False,
            digests=Digests(),
        )
    )
    store.open_case(
        CorrelationCase(
            person_key=key,
            label="99.09.09-***.**",
            name="Jan Peeters",
            employee_keys=(f"{GENT}:B7",),
            scim_id="acc-a",
            account_user_name="jan.peeters@gent.be",
            account_external_id="leaver",
            account_national_id="66.06.06-***.**",
            reason="its externalId is another person's",
        ),
        "run-2",
    )
    store.close()
    return config, key


def test_resolve_to_a_new_account_by_employee_key_answers_json_and_exits_0(
    tmp_path: Path,
) -> None:
    config, key = held(tmp_path)
    args = ["resolve", "--config", str(config), "--employee", f"{GENT}:B7", "--new-account"]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["resolution"] == "new_account" and answer["exit_code"] == 0
    assert answer["case"]["person"]["employees"] == [f"{GENT}:B7"]
    store = StateStore.open(tmp_path / "state.db")
    case = store.case_of(key)
    assert case is not None and case.status == "resolved"
    assert store.cases("open") == []
    # Until the next sync applies it, a resolution can be changed by resolving again.
    changed = [*args[:-1], "--link", "acc-a", "--format", "json"]
    again = runner.invoke(app, changed)
    assert again.exit_code == 0, again.output
    case = store.case_of(key)
    assert case is not None and (case.resolution, case.link_scim_id) == ("link", "acc-a")
    # Once a sync applied it, the case is closed: nothing left to resolve (exit 2).
    store.close_case(key, "run-3")
    closed = runner.invoke(app, changed)
    assert closed.exit_code == 2
    assert json.loads(closed.stdout)["errors"][0]["kind"] == "resolve"


def test_resolve_by_national_number_with_a_link_drops_the_other_persons_link(
    tmp_path: Path,
) -> None:
    config, key = held(tmp_path)
    result = runner.invoke(
        app, ["resolve", "--config", str(config), "--person", NEWCOMER, "--link", "acc-a"]
    )
    assert result.exit_code == 0, result.output
    assert "acc-a" in result.stdout and "66.06.06-***.**" in result.stdout
    assert "99090930218" not in result.stdout
    store = StateStore.open(tmp_path / "state.db")
    assert store.load_known().users == {}
    case = store.case_of(key)
    assert case is not None and (case.resolution, case.link_scim_id) == ("link", "acc-a")


def test_resolve_needs_one_person_and_one_resolution(tmp_path: Path) -> None:
    config, _ = held(tmp_path)
    base = ["resolve", "--config", str(config)]
    for args in (
        ["--employee", f"{GENT}:B7"],
        ["--employee", f"{GENT}:B7", "--new-account", "--link", "acc-a"],
        ["--new-account"],
        ["--employee", f"{GENT}:NOBODY", "--new-account"],
        ["--person", "85.07.30-033.29", "--new-account"],
    ):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 2, (args, result.output)
