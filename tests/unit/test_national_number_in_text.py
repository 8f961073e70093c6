"""A national number in a free-text cell (a name, organisation name, department, job title, a
right, an e-mail address) rejects its row and is never shown: not in a report (text or JSON),
not in what would be pushed or kept in the state store. A shifted column is the usual cause."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from connector import cli
from connector.desired import desired_state
from connector.hr.read import ReadPolicy, read_hr
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import load_mapping
from connector.nationalid import holds_national_id
from connector.planning import Inputs
from tests.factories import GENT, HR_FIELDS, hr_row, make_nn, write_csv

MAPPING = load_mapping()
RIGHT = "Premiezoeker Gebruiker"
TEXT_FIELDS = ("given_name", "family_name", "organisation_name", "department", "job_title")
SEPARATORS = st.sampled_from([".", "-", " ", "/", "\t", "\u00a0", ". ", " - ", ""])
AROUND = st.text(
    alphabet=st.characters(categories=["L", "Zs"], exclude_characters="\u2028\u2029"), max_size=8
)


@st.composite
def national_numbers(draw: st.DrawFn) -> str:
    """The 11 digits of a valid national number."""
    birth = draw(st.dates(dt.date(1920, 1, 1), dt.date(2025, 12, 31)))
    return make_nn(birth, serial=draw(st.integers(1, 998)))


EMAIL_SEPARATORS = st.sampled_from([".", "-", "_", ""])  # what a local part can hold
LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.", max_size=6)


@st.composite
def written(draw: st.DrawFn, digits: str, separators: st.SearchStrategy[str] = SEPARATORS) -> str:
    """The number as someone could write it: any separators between any of its digits."""
    out = digits[0]
    for digit in digits[1:]:
        out += (draw(separators) if draw(st.booleans()) else "") + digit
    return out


def _visible(digits: str, text: str) -> bool:
    """Whether the number can be read in `text` (its digits, whatever stands between them)."""
    return re.search(r"[^0-9]{0,4}".join(digits), text) is not None


def _config(directory: Path) -> Path:
    config = directory / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\ngrants = "grants.csv"\n\n'
        '[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    return config


@settings(max_examples=30, deadline=None)
@given(
    digits=national_numbers(),
    data=st.data(),
    field=st.sampled_from((*TEXT_FIELDS, "rights", "right", "email")),
    before=AROUND,
    after=AROUND,
)
def test_a_national_number_in_any_text_cell_rejects_the_row_and_is_never_shown(
    digits: str, data: st.DataObject, field: str, before: str, after: str
) -> None:
    cell = (before + data.draw(written(digits)) + after).strip()
    if field == "email":  # the number as (part of) the local part, or in the domain
        number = data.draw(written(digits, EMAIL_SEPARATORS))
        local = data.draw(LETTERS) + number + data.draw(LETTERS)
        cell = data.draw(st.sampled_from([f"{local}@gent.be", f"info@{number}.gent.be"]))
    rows = [hr_row(1, rights=RIGHT), hr_row(2, rights=RIGHT)]
    grants = [{"organisation_code": GENT, "employee_id": "E0001", "right": RIGHT}]
    if field == "right":
        grants.append({"organisation_code": GENT, "employee_id": "E0002", "right": cell})
    else:
        rows[1][field] = cell
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
        write_csv(
            directory / "grants.csv", grants, fields=("organisation_code", "employee_id", "right")
        )
        read = read_hr(
            directory / "hr.csv", ReadPolicy(), MAPPING.right_names, directory / "grants.csv"
        )
        config = _config(directory)
        answers = [
            CliRunner().invoke(
                cli.app, ["validate", "-c", str(config), "--as-of", "2026-06-01", *f]
            )
            for f in (("--format", "json"), ())
        ]

    assert [r.row for r in read.rejected if r.field == field] == [2]  # (a tab: for that)
    assert [str(r.key) for r in read.records] == (
        [f"{GENT}:E0001", f"{GENT}:E0002"] if field == "right" else [f"{GENT}:E0001"]
    )
    inputs = Inputs.of(read, MAPPING)
    desired = desired_state(
        inputs.people, MAPPING, KnownState({}, {}), Keyring(b"k"), dt.date(2026, 6, 1),
        holds=inputs.holds,
    )  # fmt: skip
    pushed = repr([dataclasses.astuple(u) for u in desired.users.values()])
    for shown in (*(a.stdout + a.stderr for a in answers), repr(read), pushed):
        assert not _visible(digits, shown)
    assert answers[0].exit_code == 1
    assert json.loads(answers[0].stdout)["exit_code"] == 1


def test_numbers_that_are_not_national_numbers_stay_in_the_text() -> None:
    assert not holds_national_id("Dienst 12, lokaal 3.04")
    assert not holds_national_id("+32 9 266 11 11")  # ten digits
    assert not holds_national_id("90.01.01-005.18")  # the check digits do not match
    assert holds_national_id("Dienst 90.01.01-005.19")
    assert holds_national_id("9 0 0 1 0 1 0 0 5 1 9")


def test_a_shifted_column_is_refused_with_a_reason_that_does_not_echo_the_number(
    tmp_path: Path,
) -> None:
    row = hr_row(1, department="90.01.01-005.19", given_name="90010100519")
    write_csv(tmp_path / "hr.csv", [row], fields=HR_FIELDS)
    read = read_hr(tmp_path / "hr.csv", ReadPolicy(), MAPPING.right_names)
    assert read.records == []
    assert [(r.field, r.reason.split(";")[0]) for r in read.rejected] == [
        ("given_name", "holds a national number"),
        ("department", "holds a national number"),
    ]


def test_an_email_made_of_a_national_number_is_refused_without_echoing_it(tmp_path: Path) -> None:
    rows = [hr_row(1, email="90010100519@gent.be"), hr_row(2, email="jan.90.01.01-005.19@gent.be")]
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    read = read_hr(tmp_path / "hr.csv", ReadPolicy(), MAPPING.right_names)
    assert read.records == []
    assert [(r.row, r.field, r.reason.split(";")[0]) for r in read.rejected] == [
        (1, "email", "holds a national number"),
        (2, "email", "holds a national number"),
    ]
    assert not any(_visible("90010100519", str(r)) for r in read.rejected)
    ok = hr_row(3, email="dienst.2024-0012@gent.be")  # digits, not a national number
    write_csv(tmp_path / "hr.csv", [ok], fields=HR_FIELDS)
    assert [r.email for r in read_hr(tmp_path / "hr.csv", ReadPolicy()).records] == [ok["email"]]
