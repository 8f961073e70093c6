"""The ACM/IDM SCIM extension as a scim2-models `Extension`, and the Users the connector pushes.

Mirrors `connector/schemas/acmidm-user.json` attribute for attribute (the integration tests
compare the two). Dates (`validFrom`, `validTo`) are ISO calendar dates as strings
(`YYYY-MM-DD`, both inclusive): HR dates have no time of day, and a SCIM `dateTime` would come
back as a timestamp with a time zone the HR data never had.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field
from scim2_models import (
    URN,
    CaseExact,
    ComplexAttribute,
    EnterpriseUser,
    Extension,
    Required,
    Uniqueness,
    User,
)

ACMIDM_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
NATIONAL_ID_PATH = f"{ACMIDM_USER_SCHEMA}:nationalId"
USER_TYPES = ("employee", "external")


class WorkRelation(ComplexAttribute):
    """A work relation ('werkrelatie') of the person with one organisation."""

    organization_code: Annotated[str | None, Required.true] = None
    """KBO number (10 digits) or OVO code of the organisation."""

    organization_name: str | None = None
    """Name of the organisation, e.g. 'Gemeente Gent'."""

    email: str | None = None
    """Work e-mail address of this work relation."""

    user_type: str | None = Field(None, examples=list(USER_TYPES))
    """'employee' or 'external'."""

    employer_organization_code: str | None = None
    """For externals: KBO number or OVO code of the employer (e.g. the IGS)."""

    valid_from: str | None = None
    """First day of the work relation, ISO date (YYYY-MM-DD)."""

    valid_to: str | None = None
    """Last day of the work relation, inclusive, ISO date (YYYY-MM-DD); absent: open-ended."""

    active: bool | None = None
    """Whether the work relation is active."""


class Right(ComplexAttribute):
    """A right granted to the person for one organisation, optionally with dates."""

    value: Annotated[str | None, Required.true] = None
    """Name of the right, e.g. 'Premiezoeker Gebruiker'."""

    organization_code: str | None = None
    """KBO number or OVO code of the organisation the right is granted for."""

    valid_from: str | None = None
    """First day of the grant, ISO date (YYYY-MM-DD); absent: from the start."""

    valid_to: str | None = None
    """Last day of the grant, inclusive, ISO date (YYYY-MM-DD); absent: open-ended."""


class AcmIdmUser(Extension):
    """ACM/IDM User: national number, work relations and rights of a person."""

    __schema__ = URN(ACMIDM_USER_SCHEMA)

    national_id: Annotated[str | None, CaseExact.true, Uniqueness.server] = None
    """Rijksregisternummer or bisnummer: 11 digits, no separators. Personal data: returned by
    default so that a provisioning client can match and adopt accounts, but never to be put in a
    URL (filter on it with POST .search)."""

    work_relations: list[WorkRelation] | None = None
    """The person's work relations, one per organisation."""

    WorkRelations: ClassVar[type[ComplexAttribute]] = WorkRelation

    rights: list[Right] | None = None
    """The rights granted to the person."""

    Rights: ClassVar[type[ComplexAttribute]] = Right


AcmUser = User[EnterpriseUser | AcmIdmUser]
"""The User the connector pushes to a target serving the ACM/IDM extension."""

PlainUser = User[EnterpriseUser]
"""The User pushed to a target without the ACM/IDM extension: core and enterprise only."""


def acmidm_of(user: User[Any]) -> AcmIdmUser | None:
    """The ACM/IDM extension of a user; None when absent or when the user's model lacks it."""
    if ACMIDM_USER_SCHEMA not in user.get_extension_models():
        return None
    extension = user[AcmIdmUser]
    return extension if isinstance(extension, AcmIdmUser) else None


def national_id_of(user: User[Any]) -> str | None:
    """The national number a user carries in the ACM/IDM extension, if any."""
    extension = acmidm_of(user)
    return extension.national_id if extension else None
