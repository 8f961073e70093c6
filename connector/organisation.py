"""Organisation codes: KBO enterprise numbers and OVO codes, normalised.

A KBO number (ondernemingsnummer) is normalised to its 10 digits (`0207451227`), whatever the
dots, spaces, dashes or `BE` prefix it was written with. The old 9-digit form (and a 10-digit
number whose leading 0 a spreadsheet dropped) is given its leading 0: that is what the 10-digit
number is by definition, and the checksum is still verified. An OVO code (Vlaamse overheid
organisation register) is `OVO` + 6 digits, accepted in any letter case, normalised uppercase.
"""

from __future__ import annotations

import functools
import re

from stdnum.be import vat
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

_OVO = re.compile(r"OVO[0-9]{6}")
_KBO_CHARACTERS = re.compile(r"(?:BE)?[0-9 .\-]+")
_NON_DIGITS = re.compile(r"[^0-9]")


class InvalidOrganisationCode(ValueError):
    """An organisation code that is neither a valid KBO number nor an OVO code."""


@functools.lru_cache(maxsize=4096)
def normalise_organisation_code(text: str) -> str:
    """A KBO number as 10 digits or an OVO code as `OVO` + 6 digits; raises if neither."""
    code = text.strip().upper()
    if not code:
        raise InvalidOrganisationCode("is empty")
    if code.startswith("OVO"):
        return _ovo(code)
    return _kbo(code)


def _ovo(code: str) -> str:
    if not _OVO.fullmatch(code):
        raise InvalidOrganisationCode("an OVO code is 'OVO' followed by 6 digits, e.g. OVO002949")
    return code


def _kbo(code: str) -> str:
    if not _KBO_CHARACTERS.fullmatch(code):
        raise InvalidOrganisationCode(
            "is neither a KBO number (10 digits, e.g. 0207.451.227)"
            " nor an OVO code (OVO + 6 digits)"
        )
    digits = _NON_DIGITS.sub("", code)
    if len(digits) not in (9, 10):
        raise InvalidOrganisationCode(f"a KBO number has 10 digits, this has {len(digits)}")
    try:
        return str(vat.validate(digits))
    except InvalidChecksum:
        raise InvalidOrganisationCode("the KBO number's check digits do not match") from None
    except InvalidComponent:
        raise InvalidOrganisationCode("a KBO number starts with 0 or 1") from None
    except ValidationError:
        raise InvalidOrganisationCode("is not a valid KBO number") from None
