"""`scim-connector resolve`: a person's word on a correlation case, recorded in the state store
and applied by the next sync (which closes the case). Contacts nobody.

- `link`: the person's account is that SCIM id; the next sync adopts it for them (writes
  their values over it). If the state store links that account to someone else, that link is
  dropped now: the account is not theirs (the connector no longer manages them).
- `new_account`: the person gets an account of their own; the next sync creates it under
  their e-mail if no user has that userName, else under the first free of
  `local.2@domain` ... `local.99@domain` (`identity.user_names_for_new_account`).
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Settings
from connector.errors import ConnectorError
from connector.hr.records import EmployeeKey
from connector.nationalid import InvalidNationalId, parse_national_id
from connector.planning import keyring
from connector.state import CorrelationCase, StateStore, sync_lock


class ResolveError(ConnectorError):
    """A `resolve` that cannot be recorded: no such case, or no single resolution given."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """What `resolve` recorded."""

    case: CorrelationCase
    resolution: str  # link | new_account
    link_scim_id: str | None
    unlinked: str | None  # the person (masked label) whose link to that account was dropped

    def to_json(self) -> dict[str, object]:
        """The `--format json` answer's fields."""
        return {
            "case": self.case.to_json(),
            "resolution": self.resolution,
            "link": self.link_scim_id,
            "unlinked": self.unlinked,
        }


def resolve(
    settings: Settings,
    run_id: str,
    *,
    employee: EmployeeKey | None = None,
    person: str | None = None,
    link: str | None = None,
    new_account: bool = False,
) -> Resolved:
    """Record how one person's correlation case is resolved (applied by the next sync)."""
    if (employee is None) == (person is None):
        raise ResolveError("resolve needs exactly one of --employee ORG:ID or --person NUMBER")
    if (link is None) == (not new_account):
        raise ResolveError("resolve needs exactly one of --link SCIM_ID or --new-account")
    if link is not None and not link.strip():
        raise ResolveError("--link: an empty SCIM id")
    with sync_lock(settings.state.location):
        store = StateStore.open(settings.state.location)
        try:
            case = _case(settings, store, employee, person)
            unlinked = None
            with store.transaction():
                if link is not None:
                    other = store.person_for_account(link)
                    if other is not None and other != case.person_key:
                        unlinked = _unlink(store, run_id, other, link)
                resolution = "link" if link is not None else "new_account"
                store.resolve_case(case.person_key, resolution, link)
                detail = f"link {link}" if link is not None else "new account"
                store.journal(run_id, "resolve", "done", case.person_key, case.label, detail)
        finally:
            store.close()
    return Resolved(case, resolution, link, unlinked)


def _case(
    settings: Settings, store: StateStore, employee: EmployeeKey | None, person: str | None
) -> CorrelationCase:
    if person is not None:
        try:
            key = keyring(settings).person_key(parse_national_id(person).digits)
        except InvalidNationalId as exc:
            raise ResolveError(f"--person: {exc}") from None
        case = store.case_of(key)
        named = "--person (that national number)"
    else:
        assert employee is not None
        case = store.case_of_employee(str(employee))
        named = f"--employee {employee}"
    if case is None:
        raise ResolveError(f"{named}: no open correlation case in the state store")
    return case


def _unlink(store: StateStore, run_id: str, other: str, scim_id: str) -> str:
    """Drop another person's link to the account a case is resolved to: the masked label."""
    known = store.load_known().users.get(other)
    label = known.label if known else "?"
    store.journal(run_id, "resolve", "note", other, label, f"no longer linked to {scim_id}")
    store.forget_user(other)
    return label
