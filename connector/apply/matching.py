"""Finding new people in the target before creating them: by its size, one read of every user
or one lookup per person (externalId, then national number, then userName). Whichever way an
account is found, it is adopted only with proof of identity (`connector.identity.proof`);
otherwise the person is a correlation case (`CorrelationFound`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from connector.apply.context import ApplyContext
from connector.errors import TargetError
from connector.identity import Account, CorrelationFound, Seeker, account_of, proof
from connector.target.client import ScimUser
from connector.target.errors import (
    Conflict,
    Rejected,
)

log = structlog.get_logger(__name__)


# How new people are matched, decided by the target's size (`GET /Users?count=0`) in `_prefetch`:
# - an empty target: not at all (nothing can match), every create goes straight out;
# - at most PREFETCH_FACTOR users per create (or a target that cannot filter): every user is
#   read once, in pages of PREFETCH_PAGE_SIZE, and matched here; that reads at most twice as
#   many users as per-person lookups would, in 1/500th of the requests;
# - more (a few joiners on a big target): each new person is looked up (see `_match`).
# A target that does not give its size is read whole from PREFETCH_FROM creates on.
PREFETCH_FACTOR = 2
PREFETCH_FROM = 50
PREFETCH_PAGE_SIZE = 500
# The attributes new people are looked up by (casefolded, as `TargetProfile.untrusted_filters`).
LOOKUP_ATTRIBUTES = frozenset({"externalid", "nationalid", "username"})


@dataclass(slots=True)
class TargetIndex:
    """The target's users by externalId, national number and userName (case-insensitive)."""

    by_external_id: dict[str, list[str]] = field(default_factory=dict)
    by_national_id: dict[str, list[str]] = field(default_factory=dict)
    by_user_name: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0
    accounts: dict[str, Account] = field(default_factory=dict)  # by SCIM id

    def add(self, user: ScimUser) -> None:
        """Index one user (once, however often it is given: a listing of a target that changes
        meanwhile may show a user twice, and that is not two users)."""
        account = account_of(user)
        if account is None or account.scim_id in self.accounts:
            return
        self.accounts[account.scim_id] = account
        self.count += 1
        if account.external_id:
            self.by_external_id.setdefault(account.external_id, []).append(account.scim_id)
        if account.national_id:
            self.by_national_id.setdefault(account.national_id, []).append(account.scim_id)
        if account.user_name:
            self.by_user_name.setdefault(account.user_name.casefold(), []).append(account.scim_id)

    def pages(self, page_size: int) -> int:
        """How many list requests reading the index took."""
        return max(1, -(-self.count // page_size))

    def match(self, person: str, digits: str | None, user_name: str) -> str | None:
        """Like a live lookup: externalId, then national number, then userName."""
        found = self.match_by(person, digits, user_name)
        return found[0].scim_id if found else None

    def match_by(
        self, person: str, digits: str | None, user_name: str
    ) -> tuple[Account, str] | None:
        """The match and the attribute it was found by (casefolded, as filters name it)."""
        for attribute, found in (
            ("externalid", self.by_external_id.get(person, [])),
            ("nationalid", self.by_national_id.get(digits, []) if digits else []),
            ("username", self.by_user_name.get(user_name.casefold(), [])),
        ):
            if len(found) == 1:
                return self.accounts[found[0]], attribute
            if len(found) > 1:
                raise Conflict("match user", "several users in the target match this person")
        return None

    def holds_user_name(self, user_name: str) -> bool:
        """True when some user has this userName (ignoring case)."""
        return bool(self.by_user_name.get(user_name.casefold()))


class Matching(ApplyContext):
    """Finding a person in the target."""

    async def _prefetch(self, creates: int) -> None:
        """Decide, by the target's size, how new people are matched (see PREFETCH_FACTOR)."""
        if creates == 0:
            return
        self.result.requests += 1
        try:
            total = await self.client.count_users()
        except TargetError as exc:
            # An optional probe: without the size, decide as if it were unknown.
            log.warning("apply.size_unknown", run_id=self.run_id, reason=str(exc))
            total = None
        small = total is not None and total <= PREFETCH_FACTOR * creates
        listing = small or (total is None and creates >= PREFETCH_FROM)
        if total == 0:
            self.index = TargetIndex()  # nothing to match: every create goes straight out
            how = "empty target"
        elif listing or not self.client.capabilities.filter or self._filters_untrusted():
            self.index = await self._read_all_users()
            how = "listed"
        else:
            how = "looked up one by one"
        log.info("apply.matching", run_id=self.run_id, creates=creates, users=total, how=how)

    def _filters_untrusted(self) -> bool:
        """Whether a lookup filter of this target was found to give wrong results."""
        return bool(LOOKUP_ATTRIBUTES & self.profile.untrusted_filters)

    def _proven(self, seeker: Seeker, account: Account) -> str:
        """The account's SCIM id if it may be adopted for `seeker` (`identity.proof`), claimed
        for them at once (no other person of this run can adopt it then); else
        CorrelationFound. The same rule whichever way the account was found."""
        verdict = proof(seeker, account, self.owners.get(account.scim_id))
        if not verdict.adopt:
            raise CorrelationFound(seeker, account, verdict.reason)
        self.owners[account.scim_id] = seeker.key
        return account.scim_id

    async def _match_by_listing(
        self, person: str, digits: str | None, user_name: str
    ) -> Account | None:
        """Find the person by reading every user: after a 409 that the filtered lookups
        cannot explain. A match found this way proves a filter wrong: remembered."""
        self.index = index = await self._read_all_users()
        found = index.match_by(person, digits, user_name)
        if found is None:
            return None
        account, attribute = found
        if attribute not in self.profile.untrusted_filters:
            untrusted = self.profile.untrusted_filters | {attribute}
            self.profile = self.profile.model_copy(update={"untrusted_filters": untrusted})
            log.warning("apply.filter_untrusted", run_id=self.run_id, attribute=attribute)
        return account

    async def _read_all_users(self) -> TargetIndex:
        index = TargetIndex()
        async for user in self.client.iter_users(page_size=PREFETCH_PAGE_SIZE):
            index.add(user)
        self.result.requests += index.pages(PREFETCH_PAGE_SIZE)
        return index

    async def _match(self, person: str, digits: str | None, user_name: str) -> Account | None:
        """Find the person in the target: externalId, then national number, then userName.

        One equality lookup after the other; with `combined_lookup`
        (`target.lookup_in_one_search`), one `POST .search` with the three in an `or` filter
        where the target searches, its answer classified here with the same precedence.
        """
        if self.combined_lookup and self.client.capabilities.search:
            self.result.requests += 1
            try:
                found = await self.client.find_user_candidates(person, digits, user_name)
            except Rejected as exc:
                if exc.status not in (400, 501):
                    raise
                self.combined_lookup = False
                log.info("apply.combined_lookup_refused", run_id=self.run_id, reason=str(exc))
            else:
                candidates = TargetIndex()
                for user in found:
                    candidates.add(user)
                matched = candidates.match_by(person, digits, user_name)
                return matched[0] if matched else None
        lookups: list[Callable[[], Awaitable[list[ScimUser]]]] = [
            lambda: self.client.find_users_by_external_id(person),
        ]
        if digits:
            lookups.append(lambda: self.client.find_users_by_national_id(digits))
        lookups.append(lambda: self.client.find_users_by_user_name(user_name))
        for lookup in lookups:
            self.result.requests += 1
            users = await lookup()
            accounts = {a.scim_id: a for a in map(account_of, users) if a is not None}
            if len(accounts) == 1:
                return next(iter(accounts.values()))
            if len(accounts) > 1:
                raise Conflict("match user", "several users in the target match this person")
        return None

    async def _user_name_taken(self, user_name: str, live: bool) -> bool:
        """Whether some user of the target has this userName (the index, or a lookup)."""
        if self.index is not None and not live:
            return self.index.holds_user_name(user_name)
        self.result.requests += 1
        return bool(await self.client.find_users_by_user_name(user_name))
