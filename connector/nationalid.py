"""Belgian national numbers (rijksregisternummer, bisnummer): parsing, validation, masking.

Validation is python-stdnum's `stdnum.be.nn` / `stdnum.be.bis`, tightened: the serial
(digits 7-9) must be 001-998, and when both month and day are known (non-zero) the date must
exist (stdnum accepts 30 February as "day unknown"). Day or month `00` means "unknown" and is
accepted. Error reasons never contain the number, so they are safe to report and log.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import MutableMapping

from stdnum.be import bis, nn
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

from connector.hr.records import NationalId, mask_digits

# Separators people and systems put in national numbers: dots, dashes and any whitespace.
_SEPARATORS = re.compile(r"[\s.\-]+")
# The same, for ASCII text (every ASCII character `\s` matches, plus dot and dash): faster.
_ASCII_SEPARATORS = str.maketrans("", "", " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f.-")
_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")
_NON_DIGITS = re.compile(r"[^0-9]")
# Days per month in a common year (index 1-12); February gains one in leap years.
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# An 11-digit national-number-like sequence in free text, grouped 2-2-2-3-2 with up to three
# separator characters (space, tab, dot, dash, slash) between the groups, not part of a longer
# digit run. Deliberately ignores the checksum: this is the last line of defence in logs.
_SEP = r"[ \t.\-/]{0,3}"
_NN_LIKE = re.compile(
    rf"(?<![0-9])([0-9]{{2}}){_SEP}([0-9]{{2}}){_SEP}([0-9]{{2}}){_SEP}[0-9]{{3}}{_SEP}[0-9]{{2}}"
    r"(?![0-9])"
)


class InvalidNationalId(ValueError):
    """A national number that is not valid; the message never contains the number."""


def parse_national_id(
    text: str, cache: MutableMapping[str, NationalId] | None = None
) -> NationalId:
    """Validate a rijksregisternummer or bisnummer in any usual formatting.

    With a `cache` (digits -> NationalId, e.g. one dict per file read), a number already
    validated is not validated again, and every spelling of it gives the same object.
    """
    digits = _compact(text)
    if cache is not None:
        known = cache.get(digits)
        if known is not None:
            return known
    kind = _kind(int(digits[2:4]))
    if not 1 <= int(digits[6:9]) <= 998:
        raise InvalidNationalId("the serial (digits 7-9) must be 001-998")
    _stdnum_validate(digits, kind)
    _check_birth_date(digits, _century(digits))
    national_id = NationalId(digits=digits, kind=kind)
    if cache is not None:
        cache[digits] = national_id
    return national_id


def mask_national_ids(text: str) -> str:
    """Mask every national-number-like digit sequence in free text as `85.07.30-***.**`."""
    return _NN_LIKE.sub(lambda m: mask_digits(m.group(1) + m.group(2) + m.group(3)), text)


def find_national_ids(text: str) -> list[NationalId]:
    """The valid national numbers written anywhere in free text (e.g. an unparsable row)."""
    found = []
    for match in _NN_LIKE.finditer(text):
        try:
            found.append(parse_national_id(_NON_DIGITS.sub("", match.group(0))))
        except InvalidNationalId:
            continue
    return found


# A run of at least 11 digits with separators between any of them (dots, dashes, underscores,
# slashes, any white space): where a national number in any formatting could hide in free text.
_DIGIT_CHAIN = re.compile(r"[0-9](?:[\s./_\-]*[0-9]){10,}")


def holds_national_id(text: str) -> bool:
    """Whether free text holds a valid national number in any formatting (any separators
    between its digits, next to other digits or not): a cell that must be refused, not shown."""
    for match in _DIGIT_CHAIN.finditer(text):
        digits = _NON_DIGITS.sub("", match.group(0))
        for start in range(len(digits) - 10):
            try:
                parse_national_id(digits[start : start + 11])
            except InvalidNationalId:
                continue
            return True
    return False


_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]+)?[eE][+]?[0-9]+")


def _compact(text: str) -> str:
    if text.isascii():
        if text.isprintable():  # the usual case: the only white space is the space
            digits = text.replace(".", "").replace("-", "").replace(" ", "")
        else:
            digits = text.translate(_ASCII_SEPARATORS)
    else:
        digits = _SEPARATORS.sub("", text)
    if _ELEVEN_DIGITS.fullmatch(digits):
        return digits
    if not digits:
        raise InvalidNationalId("is empty")
    if _SCIENTIFIC.fullmatch(text.strip()):
        raise InvalidNationalId(
            "is a number in scientific notation (like 8.5073E+10): it was exported as a number"
            " (e.g. by a spreadsheet) and its last digits are lost: export the number as text"
        )
    if not digits.isascii() or not digits.isdigit():
        raise InvalidNationalId(
            "contains characters other than digits and separators (dots, dashes, spaces)"
        )
    if len(digits) == 10:
        raise InvalidNationalId(
            "has 10 digits, expected 11; a leading 0 may have been lost"
            " (e.g. by a spreadsheet): export the number as text"
        )
    raise InvalidNationalId(f"has {len(digits)} digits, expected 11")


def _kind(raw_month: int) -> str:
    if 0 <= raw_month <= 12:
        return "nn"
    if 20 <= raw_month <= 32 or 40 <= raw_month <= 52:
        return "bis"
    raise InvalidNationalId(
        "the month part (digits 3-4) must be 00-12, or 20-32 / 40-52 for a bisnummer"
    )


def _stdnum_validate(digits: str, kind: str) -> None:
    try:
        (nn if kind == "nn" else bis).validate(digits)
    except InvalidChecksum:
        raise InvalidNationalId("the check digits do not match") from None
    except InvalidComponent:
        raise InvalidNationalId("the birth date part is not valid") from None
    except ValidationError:
        raise InvalidNationalId("is not a valid national number") from None


def _century(digits: str) -> int:
    """The birth century: 2000+ births have their checksum computed over '2' + 9 digits."""
    base, check = int(digits[:9]), int(digits[9:])
    return 1900 if 97 - base % 97 == check else 2000


def _check_birth_date(digits: str, century: int) -> None:
    month, day = int(digits[2:4]) % 20, int(digits[4:6])
    if day > 31:
        raise InvalidNationalId("the day part (digits 5-6) must be 00-31")
    if day > 28 and month and day > _days_in_month(century + int(digits[:2]), month):
        raise InvalidNationalId("the birth date part is not a real date")


def _days_in_month(year: int, month: int) -> int:
    """`calendar.monthrange(year, month)[1]`, without its weekday computation."""
    return _MONTH_DAYS[month] + (month == 2 and calendar.isleap(year))
