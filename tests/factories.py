"""Builders of valid test identifiers: national numbers, bisnummers, KBO numbers, HR files.

Check digits are computed here, so tests never depend on real people's numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from connector.hr.columns import HR_COLUMNS


def nn_check(nine_digits: str, *, born_2000s: bool) -> str:
    """The two check digits of a national number: 97 - (number mod 97), '2' prefixed for 2000+."""
    base = int(("2" if born_2000s else "") + nine_digits)
    return f"{97 - base % 97:02d}"


def make_raw_nn(yymmdd: str, serial: int, *, born_2000s: bool = False) -> str:
    """11 digits from a raw date part (e.g. `850000` for an unknown month) and a serial."""
    nine = f"{yymmdd}{serial:03d}"
    return nine + nn_check(nine, born_2000s=born_2000s)


def make_nn(birth: dt.date, serial: int = 33) -> str:
    """A valid rijksregisternummer (11 digits) for a birth date and serial (1-998)."""
    return make_raw_nn(f"{birth:%y%m%d}", serial, born_2000s=birth.year >= 2000)


def make_bis(birth: dt.date, serial: int = 33, *, gender_known: bool = True) -> str:
    """A valid bisnummer: month + 40 when the gender is known, + 20 when it is not."""
    month = birth.month + (40 if gender_known else 20)
    return make_raw_nn(f"{birth:%y}{month:02d}{birth:%d}", serial, born_2000s=birth.year >= 2000)


def format_nn(digits: str) -> str:
    """The usual written form: `85.07.30-033.28`."""
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:11]}"


def masked_nn(digits: str) -> str:
    """The masked form the connector must show: `85.07.30-***.**`."""
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-***.**"


def make_kbo(first_eight: int) -> str:
    """A valid 10-digit KBO number from its first 8 digits (0 <= first_eight < 2 * 10**7)."""
    return f"{first_eight:08d}{97 - first_eight % 97:02d}"


def format_kbo(digits: str) -> str:
    """The usual written form: `0207.451.227`."""
    return f"{digits[0:4]}.{digits[4:7]}.{digits[7:10]}"


GENT = make_kbo(2074512)  # 0207.451.227, as written in the examples
IGS = make_kbo(2167045)

HR_FIELDS = HR_COLUMNS


def hr_row(n: int = 1, **overrides: str) -> dict[str, str]:
    """A valid HR row for person number `n` (distinct n: distinct people and employee ids)."""
    row = {
        "employee_id": f"E{n:04d}",
        "national_id": format_nn(make_nn(dt.date(1985, 7, 30), serial=n)),
        "given_name": f"Given{n}",
        "family_name": f"Family{n}",
        "email": f"person{n}@gent.be",
        "organisation_code": GENT,
        "organisation_name": "Gemeente Gent",
        "department": "",
        "job_title": "",
        "relation": "employee",
        "employer_code": "",
        "start_date": "2024-01-01",
        "end_date": "",
        "rights": "",
    }
    row.update(overrides)
    return row


def write_csv(
    path: Path,
    rows: Sequence[Mapping[str, str]],
    *,
    fields: Sequence[str] = HR_FIELDS,
    delimiter: str = ",",
    bom: bool = False,
) -> Path:
    """Write rows as CSV with a header; values are quoted only where needed."""

    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(fields), delimiter=delimiter, extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8", newline="")
    return path


def write_jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """Write rows as JSON Lines, one object per line."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
