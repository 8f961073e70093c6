"""Who a report is about: people by employee key(s), name and masked number; organisations by
name. Colleagues born on one day share a masked number; their keys tell them apart."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from connector.cli import app
from connector.hr.records import EmployeeKey, HrRecord, NationalId, Warning_
from connector.people import merge_people
from connector.people_display import display_of, label_of
from connector.plan import Plan
from connector.report import Failure, Report
from tests.factories import GENT, HR_FIELDS, hr_row, make_nn, write_csv

runner = CliRunner()


def setup(tmp_path: Path, *, names: bool | None = None, bad_row: bool = False) -> Path:
    rows = [hr_row(n, rights="Premiezoeker Gebruiker") for n in (1, 2)]
    if bad_row:  # a second relation of person 2, with a bad e-mail: that relation is held
        # (person 2 named by the keys of their accepted rows; the row is listed as rejected)
        rows.append(hr_row(2, employee_id="E0902", email="no-at-sign"))
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    config = tmp_path / "connector.toml"
    text = (
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n'
    )
    if names is not None:
        text += f"\n[report]\nnames = {str(names).lower()}\n"
    config.write_text(text, encoding="utf-8")
    return config


def plan(config: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["plan", "--config", str(config), "--as-of", "2026-12-01", *extra],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.stdout


def test_two_colleagues_born_the_same_day_are_told_apart_by_key_and_name(tmp_path: Path) -> None:
    _, text = plan(setup(tmp_path))
    assert f"{GENT}:E0001 Given1 Family1 (85.07.30-***.**)" in text
    assert f"{GENT}:E0002 Given2 Family2 (85.07.30-***.**)" in text


def test_organisation_is_named_where_the_export_gives_a_name(tmp_path: Path) -> None:
    _, text = plan(setup(tmp_path))
    assert f"Premiezoeker Gebruiker via Gemeente Gent ({GENT})" in text


def test_names_can_be_switched_off_in_text_and_json(tmp_path: Path) -> None:
    config = setup(tmp_path, names=False)
    _, text = plan(config)
    assert "Given1" not in text and f"{GENT}:E0001 (85.07.30-***.**)" in text
    _, answer = plan(config, "--format", "json")
    for op in json.loads(answer)["operations"]:
        assert "name" not in op and op["employee_keys"] in ([f"{GENT}:E0001"], [f"{GENT}:E0002"])


def test_json_operations_carry_employee_keys_and_name(tmp_path: Path) -> None:
    _, answer = plan(setup(tmp_path), "--format", "json")
    operations = json.loads(answer)["operations"]
    creates = sorted(
        (op for op in operations if op["kind"] == "create"), key=lambda op: op["person"]
    )
    assert [(op["employee_keys"], op["name"]) for op in creates] == [
        ([f"{GENT}:E0001"], "Given1 Family1"),
        ([f"{GENT}:E0002"], "Given2 Family2"),
    ]
    assert creates[0]["person"] == f"{GENT}:E0001 (85.07.30-***.**)"


def test_a_held_relation_names_its_person_in_the_warning_and_in_json(tmp_path: Path) -> None:
    config = setup(tmp_path, bad_row=True)
    code, text = plan(config)
    assert code == 1
    assert f"person {GENT}:E0002 Given2 Family2 (85.07.30-***.**): work relation" in text
    _, answer = plan(config, "--format", "json")
    report = json.loads(answer)
    assert report["held"] == []  # only the rejected relation is held, not the person
    (held,) = [w for w in report["warnings"] if w["kind"] == "held"]
    assert held["person"] == f"{GENT}:E0002 (85.07.30-***.**)"
    assert held["employee_keys"] == [f"{GENT}:E0002"]
    assert held["name"] == "Given2 Family2"


def record(employee: str, given: str, start: dt.date) -> HrRecord:
    return HrRecord(
        source="hr.csv",
        row=1,
        employee_id=employee,
        national_id=NationalId(make_nn(dt.date(1985, 7, 30)), "nn"),
        given_name=given,
        family_name="Peeters",
        email=f"{employee.lower()}@gent.be",
        organisation_code=GENT,
        organisation_name="Gemeente Gent",
        start_date=start,
    )


def test_display_lists_every_relations_key_and_the_latest_name() -> None:
    people = merge_people(
        [record("T1", "Anna", dt.date(2020, 1, 1)), record("T2", "An", dt.date(2024, 1, 1))]
    )
    (shown,) = (display_of(p) for p in people.values())
    assert shown.employee_keys == (f"{GENT}:T1", f"{GENT}:T2")
    assert shown.text() == f"{GENT}:T1, {GENT}:T2 An Peeters (85.07.30-***.**)"
    assert shown.text(names=False) == shown.label == f"{GENT}:T1, {GENT}:T2 (85.07.30-***.**)"
    assert str(EmployeeKey(GENT, "T1")) in shown.label


def test_failures_and_warnings_about_a_person_carry_keys_and_name_in_json() -> None:
    people = merge_people([record("T1", "An", dt.date(2020, 1, 1))])
    label = label_of([f"{GENT}:T1"], "85.07.30-***.**")
    report = Report(
        run_id="r",
        command="sync",
        as_of=dt.date(2026, 12, 1),
        dry_run=False,
        plan=Plan(as_of=dt.date(2026, 12, 1), operations=()),
    )
    report.failures.append(Failure(person=label, operation="create", reason="400: no"))
    report.warnings.append(Warning_(kind="drift", message=f"{label}: put back", person=label))
    report.warnings.append(Warning_(kind="target", message="about nobody"))
    report.name_people(people.values(), names=True)
    answer = report.to_json()
    assert answer["failures"][0]["employee_keys"] == [f"{GENT}:T1"]
    assert answer["failures"][0]["name"] == "An Peeters"
    assert answer["warnings"][0]["name"] == "An Peeters"
    assert "employee_keys" not in answer["warnings"][1]


def test_a_label_two_people_share_gets_no_name() -> None:
    """People without keys in their label (only possible for old state stores) are never
    given someone else's name."""
    people = merge_people([record("T1", "An", dt.date(2020, 1, 1))])
    report = Report(run_id="r", command="plan", as_of=dt.date(2026, 12, 1), dry_run=True)
    report.failures.append(Failure(person="85.07.30-***.**", operation="update", reason="x"))
    report.name_people(people.values(), names=True)
    assert report.to_json()["failures"][0]["name"] is None


def test_a_person_whose_rows_were_all_rejected_is_named_by_their_rows_keys_and_rows(
    tmp_path: Path,
) -> None:
    config = setup(tmp_path)
    rows = [hr_row(n) for n in (1, 2)] + [hr_row(3, email="no-at-sign")]
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    code, text = plan(config)
    assert code == 1
    assert (
        f"person {GENT}:E0003 (85.07.30-***.**) left unchanged: all their HR rows were rejected "
        "(hr.csv row 3)"
    ) in " ".join(text.split())
    _, answer = plan(config, "--format", "json")
    report = json.loads(answer)
    who = {"person": f"{GENT}:E0003 (85.07.30-***.**)", "employee_keys": [f"{GENT}:E0003"]}
    assert report["held"] == [{**who, "name": None}]
    (held,) = [w for w in report["warnings"] if w["kind"] == "held"]
    assert {k: held[k] for k in ("person", "employee_keys", "file", "row")} == {
        **who,
        "file": "hr.csv",
        "row": 3,
    }
