"""Organisation codes: KBO numbers in any usual writing, OVO codes in any letter case."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.organisation import InvalidOrganisationCode, normalise_organisation_code
from tests.factories import GENT, format_kbo, make_kbo


def test_the_factory_builds_the_example_kbo_number() -> None:
    assert GENT == "0207451227"


@pytest.mark.parametrize(
    "text",
    [
        "0207451227",
        "0207.451.227",
        "0207 451 227",
        "BE0207451227",
        "BE 0207.451.227",
        "be0207451227",
        " 0207-451-227 ",
    ],
)
def test_a_kbo_number_is_normalised_to_10_digits_whatever_its_writing(text: str) -> None:
    assert normalise_organisation_code(text) == "0207451227"


def test_the_old_9_digit_form_gets_its_leading_zero() -> None:
    assert normalise_organisation_code("207.451.227") == "0207451227"
    assert normalise_organisation_code("BE207451227") == "0207451227"


def test_a_kbo_number_starting_with_1_is_accepted() -> None:
    kbo = make_kbo(10_000_000 + 123)
    assert normalise_organisation_code(format_kbo(kbo)) == kbo


def test_a_bad_kbo_checksum_is_rejected() -> None:
    with pytest.raises(InvalidOrganisationCode, match="check digits"):
        normalise_organisation_code("0207.451.228")


def test_a_kbo_number_starting_with_2_is_rejected() -> None:
    with pytest.raises(InvalidOrganisationCode, match="starts with 0 or 1"):
        normalise_organisation_code(make_kbo(20_000_000 + 123))


@pytest.mark.parametrize("text", ["02074512", "02074512277", "020745122700"])
def test_a_kbo_number_with_the_wrong_number_of_digits_is_rejected(text: str) -> None:
    with pytest.raises(InvalidOrganisationCode, match="10 digits"):
        normalise_organisation_code(text)


@pytest.mark.parametrize("text", ["OVO002949", "ovo002949", "Ovo002949", " OVO002949 "])
def test_an_ovo_code_is_accepted_in_any_letter_case_and_normalised_uppercase(text: str) -> None:
    assert normalise_organisation_code(text) == "OVO002949"


@pytest.mark.parametrize("text", ["OVO", "OVO12345", "OVO1234567", "OVOABCDEF", "OVO 002949"])
def test_an_ovo_code_is_ovo_followed_by_exactly_6_digits(text: str) -> None:
    with pytest.raises(InvalidOrganisationCode, match="OVO"):
        normalise_organisation_code(text)


@pytest.mark.parametrize("text", ["", "   ", "Gemeente Gent", "NL0207451227", "0207,451,227"])
def test_text_that_is_neither_kbo_nor_ovo_is_rejected(text: str) -> None:
    with pytest.raises(InvalidOrganisationCode):
        normalise_organisation_code(text)


def test_an_invalid_code_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        normalise_organisation_code("0207.451.228")


@given(st.integers(min_value=1, max_value=19_999_999), st.sampled_from(["", "BE", "BE "]))
def test_every_valid_kbo_number_is_accepted_with_or_without_be_prefix(
    first_eight: int, prefix: str
) -> None:
    kbo = make_kbo(first_eight)
    assert normalise_organisation_code(prefix + format_kbo(kbo)) == kbo


@given(st.text())
def test_any_text_is_normalised_or_rejected_with_invalid_organisation_code(text: str) -> None:
    try:
        code = normalise_organisation_code(text)
    except InvalidOrganisationCode:
        return
    assert len(code) == 10 or code.startswith("OVO")
