"""National numbers: stdnum's rules, tightened, and masking that never reveals the serial."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector import nationalid
from connector.hr.records import NationalId
from connector.nationalid import (
    InvalidNationalId,
    find_national_ids,
    mask_national_ids,
    parse_national_id,
)
from tests.factories import format_nn, make_bis, make_nn, make_raw_nn, masked_nn

NN_1985 = make_nn(dt.date(1985, 7, 30), 33)  # 85.07.30-033.28, the contract's example


def test_the_contracts_example_number_is_accepted_in_every_usual_formatting() -> None:
    assert NN_1985 == "85073003328"
    for text in ["85.07.30-033.28", "85073003328", "85 07 30 033 28", " 850730-033-28 "]:
        assert parse_national_id(text).digits == NN_1985


def test_a_rijksregisternummer_is_of_kind_nn() -> None:
    assert parse_national_id(NN_1985).kind == "nn"


def test_a_birth_in_the_2000s_uses_the_2_prefixed_checksum() -> None:
    digits = make_nn(dt.date(2017, 7, 30), 33)
    assert digits == "17073003384"  # stdnum's own example
    assert parse_national_id(digits).digits == digits


def test_a_2000s_number_with_a_1900s_checksum_is_accepted_as_a_1900s_birth() -> None:
    digits = make_raw_nn("170730", 33, born_2000s=False)
    assert parse_national_id(digits).digits == digits


def test_29_february_exists_in_2000_but_not_in_1900() -> None:
    assert parse_national_id(make_raw_nn("000229", 33, born_2000s=True))
    with pytest.raises(InvalidNationalId, match="not a real date"):
        parse_national_id(make_raw_nn("000229", 33, born_2000s=False))


def test_a_birth_date_in_a_future_year_is_rejected() -> None:
    with pytest.raises(InvalidNationalId):
        parse_national_id(make_raw_nn("990101", 33, born_2000s=True))


def test_30_february_is_rejected_although_stdnum_accepts_it() -> None:
    from stdnum.be import nn

    digits = make_raw_nn("850230", 33)
    assert nn.is_valid(digits)
    with pytest.raises(InvalidNationalId, match="not a real date"):
        parse_national_id(digits)


def test_31_april_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="not a real date"):
        parse_national_id(make_raw_nn("850431", 33))


@pytest.mark.parametrize("yymmdd", ["850000", "850700", "850031", "000001"])
def test_day_or_month_00_means_unknown_and_is_accepted(yymmdd: str) -> None:
    assert parse_national_id(make_raw_nn(yymmdd, 33)).kind == "nn"


def test_a_day_above_31_is_rejected_even_with_an_unknown_month() -> None:
    with pytest.raises(InvalidNationalId, match="day"):
        parse_national_id(make_raw_nn("850032", 33))


def test_month_13_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="month"):
        parse_national_id(make_raw_nn("851301", 33))


@pytest.mark.parametrize("serial", [1, 2, 997, 998])
def test_serials_001_to_998_are_accepted(serial: int) -> None:
    assert parse_national_id(make_nn(dt.date(1985, 7, 30), serial))


def test_serial_000_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="serial"):
        parse_national_id(make_raw_nn("850730", 0))


def test_serial_999_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="serial"):
        parse_national_id(make_raw_nn("850730", 999))


def test_a_bad_checksum_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="check digits"):
        parse_national_id("85.07.30-033.29")


def test_a_bisnummer_with_month_plus_40_is_accepted_as_bis() -> None:
    digits = make_bis(dt.date(1998, 7, 28), 997)
    assert digits == "98472899765"  # stdnum's own example
    assert parse_national_id(format_nn(digits)).kind == "bis"


def test_a_bisnummer_with_month_plus_20_is_accepted_as_bis() -> None:
    digits = make_bis(dt.date(2001, 9, 7), 1, gender_known=False)
    assert parse_national_id(digits).kind == "bis"


def test_a_bisnummer_born_in_the_2000s_is_accepted() -> None:
    assert parse_national_id("01 49 07 001 85").kind == "bis"  # stdnum's own example


@pytest.mark.parametrize("yymmdd", ["852000", "854000", "854700"])
def test_a_bisnummer_with_unknown_month_or_day_is_accepted(yymmdd: str) -> None:
    assert parse_national_id(make_raw_nn(yymmdd, 33)).kind == "bis"


def test_a_bisnummer_with_an_impossible_date_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="not a real date"):
        parse_national_id(make_raw_nn("854230", 33))


@pytest.mark.parametrize("month", ["13", "19", "33", "39", "53", "99"])
def test_months_outside_the_nn_and_bis_ranges_are_rejected(month: str) -> None:
    with pytest.raises(InvalidNationalId, match="month"):
        parse_national_id(make_raw_nn(f"85{month}01", 33))


def test_a_bad_bisnummer_checksum_is_rejected() -> None:
    with pytest.raises(InvalidNationalId, match="check digits"):
        parse_national_id("98.47.28-997.66")


def test_a_number_that_lost_its_leading_zero_gets_a_hint() -> None:
    digits = make_nn(dt.date(2005, 3, 12), 33)
    with pytest.raises(InvalidNationalId, match="leading 0"):
        parse_national_id(digits[1:])


@pytest.mark.parametrize("text", ["", "  ", "8507300332", "850730033281", "85O73003328", "١٢"])
def test_wrong_lengths_and_non_digits_are_rejected(text: str) -> None:
    with pytest.raises(InvalidNationalId):
        parse_national_id(text)


def test_an_invalid_number_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_national_id("85.07.30-033.29")


@pytest.mark.parametrize(
    "text",
    [
        "85.07.30-033.29",
        make_raw_nn("850230", 33),
        make_raw_nn("850730", 999),
        make_raw_nn("851301", 33),
        "8507300332",
    ],
)
def test_a_rejection_reason_never_contains_the_number(text: str) -> None:
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(text)
    digits = "".join(c for c in text if c.isdigit())
    assert digits not in str(caught.value)
    assert digits[6:] not in "".join(c for c in str(caught.value) if c.isdigit())


def test_str_and_repr_of_a_national_id_are_masked() -> None:
    national_id = parse_national_id(NN_1985)
    assert str(national_id) == "85.07.30-***.**"
    assert NN_1985 not in repr(national_id)
    assert "033" not in repr(national_id)


@pytest.mark.parametrize(
    "text",
    [
        "85.07.30-033.28",
        "85073003328",
        "85 07 30 033 28",
        "850730-033.28",
        "850730 03328",
        "85.07.30 - 033.28",
        "85/07/30/033/28",
    ],
)
def test_mask_hides_serial_and_check_digits_in_any_usual_formatting(text: str) -> None:
    assert mask_national_ids(f"person {text}, row 7") == "person 85.07.30-***.**, row 7"


def test_mask_also_hides_numbers_with_a_bad_checksum() -> None:
    assert mask_national_ids("id=85073003329") == "id=85.07.30-***.**"


def test_mask_leaves_longer_and_shorter_digit_runs_alone() -> None:
    text = "run 20261129T072830Z kbo 0207.451.227 ts 1700000000000 tel +32 470 12 34 56"
    assert mask_national_ids(text) == text


def test_mask_handles_several_numbers_in_one_text() -> None:
    other = make_bis(dt.date(1998, 7, 28), 997)
    text = f"{NN_1985} and {format_nn(other)}"
    assert mask_national_ids(text) == f"{masked_nn(NN_1985)} and {masked_nn(other)}"


# ---------------------------------------------------------------------------- properties

births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today())
serials = st.integers(min_value=1, max_value=998)
kinds = st.sampled_from(["nn", "bis20", "bis40"])
separators = st.sampled_from(["", " ", ".", "-", " - ", ". "])


def _make(kind: str, birth: dt.date, serial: int) -> str:
    if kind == "nn":
        return make_nn(birth, serial)
    return make_bis(birth, serial, gender_known=kind == "bis40")


def _written(digits: str, seps: list[str]) -> str:
    groups = [digits[0:2], digits[2:4], digits[4:6], digits[6:9], digits[9:11]]
    return groups[0] + "".join(sep + group for sep, group in zip(seps, groups[1:], strict=True))


@given(kinds, births, serials, st.lists(separators, min_size=4, max_size=4))
def test_every_valid_number_is_accepted_in_every_usual_formatting(
    kind: str, birth: dt.date, serial: int, seps: list[str]
) -> None:
    digits = _make(kind, birth, serial)
    national_id = parse_national_id(f" {_written(digits, seps)} ")
    assert national_id.digits == digits
    assert national_id.kind == ("nn" if kind == "nn" else "bis")


@given(kinds, births, serials, st.lists(separators, min_size=4, max_size=4), st.text())
def test_mask_never_reveals_the_serial_of_a_valid_number(
    kind: str, birth: dt.date, serial: int, seps: list[str], prefix: str
) -> None:
    digits = _make(kind, birth, serial)
    prefix = prefix.rstrip("0123456789 \t.-/")
    text = f"{prefix} {_written(digits, seps)} end"
    assert mask_national_ids(text) == mask_national_ids(prefix) + f" {masked_nn(digits)} end"


@given(st.text())
def test_masking_is_idempotent(text: str) -> None:
    once = mask_national_ids(text)
    assert mask_national_ids(once) == once


def test_find_national_ids_returns_only_valid_numbers_in_free_text() -> None:
    other = make_bis(dt.date(1998, 7, 28), 997)
    text = f'{{"id": "{format_nn(NN_1985)}", "x": "85.07.30-033.29", "y": {other}'
    assert [n.digits for n in find_national_ids(text)] == [NN_1985, other]


# Every character the separators may be: dots, dashes and any white space (ASCII or not).
any_separators = st.text(
    alphabet=st.sampled_from(".- \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2003\u3000"), max_size=3
)


@given(st.lists(any_separators, min_size=4, max_size=4), any_separators, any_separators)
def test_any_dots_dashes_and_white_space_separate_the_digits(
    seps: list[str], before: str, after: str
) -> None:
    assert parse_national_id(before + _written(NN_1985, seps) + after).digits == NN_1985


@pytest.mark.parametrize("text", ["85.07.30/033.28", "85_07_30_033_28", "85.07.30-033.28x"])
def test_other_characters_between_the_digits_are_rejected(text: str) -> None:
    with pytest.raises(InvalidNationalId, match="characters other than digits"):
        parse_national_id(text)


@given(st.integers(1900, 2099), st.integers(1, 12), st.integers(1, 31))
def test_a_birth_date_is_checked_against_the_real_calendar(year: int, month: int, day: int) -> None:
    try:
        birth = dt.date(year, month, day)
    except ValueError:
        raw = make_raw_nn(f"{year % 100:02d}{month:02d}{day:02d}", 33, born_2000s=year >= 2000)
        with pytest.raises(InvalidNationalId):
            parse_national_id(raw)
    else:
        if birth.year < dt.date.today().year:  # stdnum rejects 2000s births in a future year
            assert parse_national_id(make_nn(birth)).digits == make_nn(birth)


def test_with_a_cache_each_number_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    validate = nationalid._stdnum_validate

    def counting(digits: str, kind: str) -> None:
        calls.append(digits)
        validate(digits, kind)

    monkeypatch.setattr(nationalid, "_stdnum_validate", counting)
    cache: dict[str, NationalId] = {}
    first = parse_national_id(format_nn(NN_1985), cache)
    again = parse_national_id(NN_1985, cache)
    assert again is first and cache == {NN_1985: first}
    assert calls == [NN_1985]
    assert parse_national_id(NN_1985) is not first  # no cache: validated anew
    assert calls == [NN_1985, NN_1985]


def test_an_invalid_number_is_not_cached_and_fails_every_time() -> None:
    cache: dict[str, NationalId] = {}
    for _ in range(2):
        with pytest.raises(InvalidNationalId, match="check digits"):
            parse_national_id("85.07.30-033.29", cache)
    assert cache == {}
