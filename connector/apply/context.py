"""What one apply run holds, and how an operation is journalled, guarded and counted."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import structlog

from connector.errors import TargetError
from connector.identity import Account, CorrelationFound, Seeker
from connector.keys import Keyring
from connector.plan import OpKind
from connector.report import Failure
from connector.state import CorrelationCase, StateStore
from connector.target.client import TargetClient
from connector.target.errors import (
    Conflict,
    EffectMissing,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetRequestError,
)
from connector.target.profile import TargetProfile
from connector.target.retry import RetryPolicy

if TYPE_CHECKING:
    from connector.apply.matching import TargetIndex

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ApplyResult:
    """What applying a plan achieved."""

    done: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    adopted: int = 0
    restored: int = 0
    correlated: list[CorrelationCase] = field(default_factory=list)  # found by this run
    # Open cases this run closed: nothing against the person was found any more.
    closed: list[CorrelationCase] = field(default_factory=list)
    requests: int = 0
    notes: list[str] = field(default_factory=list)  # what the target cannot do, said once

    def counts(self) -> dict[str, int]:
        """Operations done per kind (every kind present)."""
        return {kind.value: self.done.get(kind.value, 0) for kind in OpKind}


Record = Callable[[], None]
"""What an operation that succeeded writes to the state store (in its `done` transaction)."""

# Operations on a user that is in the target: when one fails for another reason than the user
# being gone, the person's memberships still change (see `ApplyContext._guard`).
MODIFY_KINDS = frozenset({OpKind.UPDATE.value, OpKind.ACTIVATE.value, OpKind.DEACTIVATE.value})


class PartlyDone(TargetError):
    """A user operation that did part of its work: `record` says what it did (written to the
    state store like a success), `reason` why the rest, an attribute update, failed. With
    `kind_done` the operation's own kind (a create, an activation, a deactivation) is done."""

    def __init__(self, reason: TargetError, record: Record, *, kind_done: bool) -> None:
        self.reason = reason
        self.record = record
        self.kind_done = kind_done
        super().__init__(str(reason))


class LinkGone(CorrelationFound):
    """The account a resolved case links the person to is not in the target (404): the case
    opens again, as it was, with this reason."""

    REASON = "the account linked by resolve does not exist in the target; resolve again"

    def __init__(self, seeker: Seeker, earlier: CorrelationCase) -> None:
        self.earlier = earlier
        account = Account(
            scim_id=earlier.scim_id,
            user_name=earlier.account_user_name or "",
            external_id=earlier.account_external_id,
        )
        super().__init__(seeker, account, self.REASON)
        self.args = (
            f"correlation case open again: the account {earlier.link_scim_id} linked by "
            "resolve does not exist in the target",
        )


def correlation_case(person: str, label: str, exc: CorrelationFound) -> CorrelationCase:
    """The correlation case a CorrelationFound opens, both sides as reports show them."""
    if isinstance(exc, LinkGone):
        return replace(
            exc.earlier, reason=exc.reason, status="open", resolution=None, link_scim_id=None
        )
    seeker, account = exc.seeker, exc.account
    name = " ".join(n for n in (seeker.given_name, seeker.family_name) if n) or None
    return CorrelationCase(
        person_key=person,
        label=label,
        name=name,
        employee_keys=seeker.employee_keys,
        scim_id=account.scim_id,
        account_user_name=account.user_name or None,
        account_external_id=account.external_id,
        account_national_id=account.masked_national_id,
        reason=exc.reason,
    )


# Failures the target answered as such: the write did not happen (or, EffectMissing, its
# effect was checked and is not there). Any other failure leaves the write's outcome unknown.
KNOWN_FAILURES = (Conflict, NotFound, PreconditionFailed, Rejected, EffectMissing)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed write may have been applied all the same: no answer came (connection
    lost after sending, a timeout, retries given up), or one that does not say."""
    cause = exc.reason if isinstance(exc, PartlyDone) else exc
    return not isinstance(cause, KNOWN_FAILURES)


def blocks_person(kind: str, exc: TargetError) -> bool:
    """Whether a failed user operation leaves the person's user not in place, so that their
    later operations (memberships, deactivation) are skipped: any failure but that of an update,
    activation or deactivation of a user the target still has."""
    return kind not in MODIFY_KINDS or isinstance(exc, NotFound)


@dataclass
class ApplyContext:
    """Applies one plan; holds the run's collaborators and what it learned along the way."""

    client: TargetClient
    store: StateStore
    run_id: str
    retry: RetryPolicy
    concurrency: int = 8
    batch_size: int = 100
    result: ApplyResult = field(default_factory=ApplyResult)
    scim_ids: dict[str, str] = field(default_factory=dict)  # person key -> SCIM id
    # SCIM id -> the person key it is linked to: the state store's links and this run's claims
    # (an account is adopted for one person at most; see `identity.proof`).
    owners: dict[str, str] = field(default_factory=dict)
    # Resolved correlation cases, by person key: what their create does instead of matching.
    resolutions: dict[str, CorrelationCase] = field(default_factory=dict)
    # The installation's keyring: the digest of a value chosen while applying (a new account's
    # numbered userName) is recorded as the plan records those it chose.
    keyring: Keyring | None = None
    # Open correlation cases, by person key: their create matches again (the same proof), and
    # closes the case when it creates or adopts (`identity.proof`).
    rechecks: dict[str, CorrelationCase] = field(default_factory=dict)
    correlated: set[str] = field(default_factory=set)  # person keys held as correlation cases
    failed: set[str] = field(default_factory=set)  # person keys that failed this run
    failure_reasons: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> label, why
    # The target's users, when known without asking per person: every user read once, or none
    # at all (an empty target). None: look each new person up.
    index: TargetIndex | None = None
    use_bulk: bool = True  # switched off for the rest of the run if the target refuses /Bulk
    # One POST .search per new person (`target.lookup_in_one_search`; off if the target refuses).
    combined_lookup: bool = False
    _bulk_ids: Iterator[int] = field(default_factory=itertools.count)
    # What is known of the target (`connector.target.profile`): the run starts from what earlier
    # runs learned, and replaces it as it learns more (the caller keeps it for the next run).
    profile: TargetProfile = field(default_factory=TargetProfile)
    # Owned paths a write's answer showed the target does not keep as sent (`fit.not_kept`).
    not_kept: set[str] = field(default_factory=set)
    # Operation kinds the target cannot do at all (not implemented), with why.
    incapable: dict[str, str] = field(default_factory=dict)
    # Whether this run already sent a refused user PATCH again path by path, to learn which
    # paths the target refuses (once per run at most; see `users.UserOps`).
    patch_probed: bool = False
    # People whose user write this run ended with an unknown outcome: their uncertain mark stays
    # whatever their later operations do (`connector.state.uncertain`).
    unsure: set[str] = field(default_factory=set)
    # People whose account this run found by their own externalId without a record in the state
    # store (the connector made it; the record was lost): a membership of a right the HR input
    # grants them is the connector's (the ownership rule, `connector.ownership`).
    relinked: set[str] = field(default_factory=set)

    def learned(self) -> TargetProfile:
        """What is known of the target after this run."""
        return self.profile.model_copy(update={"not_kept": self.profile.not_kept | self.not_kept})

    async def _guard(
        self,
        person: str,
        label: str,
        kind: str,
        action: Callable[[], Awaitable[Record | None]],
        *,
        journalled: bool = False,
    ) -> None:
        """Journal the intent (unless already done), act, then record what the action returns
        and journal it done, in one transaction; a TargetError fails this person only, and
        blocks their later operations only if their user is not in place (`blocks_person`).
        An action done in part (`PartlyDone`) records what it did and fails the rest."""
        if person in self.correlated:
            return  # held: reported as a correlation case
        if person in self.failed:
            self._fail(person, label, kind, "skipped: an earlier operation for this person failed")
            return
        incapable = self.incapable.get(kind)
        if incapable is not None:  # the target cannot do this at all: not asked again
            self.failed.add(person)
            self._fail(person, label, kind, f"skipped: {incapable}")
            return
        with self.store.transaction():  # committed before the write is sent
            if not journalled:
                self.store.journal(self.run_id, kind, "intent", person, label)
            self.store.mark_uncertain([(person, None, kind)], self.run_id)
        try:
            record = await action()
        except PartlyDone as exc:
            self._partly_done(person, label, kind, exc)
            return
        except CorrelationFound as exc:
            self._correlated(person, label, kind, exc)
            return
        except TargetError as exc:
            self._settled(person, exc)
            if blocks_person(kind, exc):
                self.failed.add(person)
            self._note_incapable(kind, exc)
            self._fail(person, label, kind, str(exc))
            self.store.journal(self.run_id, kind, "failed", person, label, str(exc))
            return
        with self.store.transaction():
            if record is not None:
                record()
            self.store.journal(self.run_id, kind, "done", person, label)
            self._settled(person)
        self.result.done[kind] += 1

    def _correlated(self, person: str, label: str, kind: str, exc: CorrelationFound) -> None:
        """Hold a person whose found account may not be adopted: record the correlation case
        (open until resolved); their later operations are skipped without a failure."""
        self.correlated.add(person)
        case = correlation_case(person, label, exc)
        with self.store.transaction():
            self.store.open_case(case, self.run_id)
            self.store.journal(self.run_id, kind, "correlation", person, label, str(exc))
            if exc.stale_link is not None:  # their account is gone: resolved like a newcomer's
                detail = f"no longer linked to {exc.stale_link}: not in the target"
                self.store.journal(self.run_id, kind, "note", person, label, detail)
                self.store.forget_user(person)
            self._settled(person)  # nothing was written: the lookup found the account
        self.result.correlated.append(case)
        log.warning(
            "apply.correlation_case",
            run_id=self.run_id,
            person=label,
            scim_id=exc.account.scim_id,
            reason=exc.reason,
        )

    def _settled(self, person: str, exc: BaseException | None = None) -> None:
        """A user write's answer was checked: its uncertain mark goes, unless this write (or an
        earlier one of this run) failed without the target saying whether it happened."""
        if exc is not None and outcome_unknown(exc):
            self.unsure.add(person)
        if person not in self.unsure:
            self.store.clear_uncertain(person)

    def _note_incapable(self, kind: str, exc: TargetError) -> None:
        """A create the target refuses as not implemented (405, 501): it creates no users at
        all. Said once, in one line naming the capability; the run's other creates are not sent."""
        status = exc.status if isinstance(exc, TargetRequestError) else None
        if kind != OpKind.CREATE.value or status not in (405, 501) or kind in self.incapable:
            return
        self.incapable[kind] = f"the target does not create users (POST answered {status})"
        self.result.notes.append(f"{self.incapable[kind]}: no joiner can be provisioned")
        log.error("apply.target_incapable", run_id=self.run_id, capability="create users")

    def _partly_done(self, person: str, label: str, kind: str, exc: PartlyDone) -> None:
        """Record what an operation done in part did; report its failed update."""
        update = OpKind.UPDATE.value
        with self.store.transaction():
            exc.record()
            self._settled(person, exc)
            if exc.kind_done:
                self.store.journal(self.run_id, kind, "done", person, label)
            self.store.journal(self.run_id, update, "failed", person, label, str(exc.reason))
        if exc.kind_done:
            self.result.done[kind] += 1
        self._fail(person, label, update, str(exc.reason))

    def learn_put_paths(self, refused: frozenset[str]) -> None:
        """Remember attribute paths whose PATCH the target refused: written by PUT from now on."""
        new = refused - self.profile.put_paths
        if new:
            log.warning("apply.patch_refused", run_id=self.run_id, paths=sorted(new))
            self.profile = self.profile.model_copy(
                update={"put_paths": self.profile.put_paths | new}
            )

    def _fail(self, person: str, label: str, kind: str, reason: str) -> None:
        self.failure_reasons.setdefault(person, (label, reason))
        self.result.failures.append(Failure(person=label, operation=kind, reason=reason))
        log.warning("apply.failed", run_id=self.run_id, person=label, operation=kind, reason=reason)

    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        self.result.requests += 1
        return await self.retry.call(what, fn)
