"""User operations one at a time: create (after a lookup; adopt a match), update, activate,
deactivate, delete. Attribute changes go by PATCH where the target takes it, else by PUT
(`user_writes`); a target's refusal of a PATCH is learned (`TargetProfile.put_paths`)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import structlog
from scim2_models import PatchOperation

from connector.apply import user_writes
from connector.apply.context import LinkGone, PartlyDone, Record
from connector.apply.matching import Matching
from connector.apply.user_writes import ACTIVE, partly_written
from connector.errors import TargetError
from connector.identity import (
    Account,
    CorrelationFound,
    Seeker,
    account_of,
    user_names_for_new_account,
)
from connector.known import Digests, KnownUser
from connector.mapping import canonical
from connector.plan import Change, OpKind, UserOp
from connector.state import CorrelationCase
from connector.target import fit
from connector.target.client import ScimUser
from connector.target.errors import (
    Conflict,
    EffectMissing,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetRequestError,
    TargetUnavailable,
)

log = structlog.get_logger(__name__)

USER_NAME = "userName"
# Tries at PUTting a user back when someone else's change keeps getting in between (412).
REPLACE_ATTEMPTS = 3


class Unwritten(TargetError):
    """Some of a user's changes were written and others not: `cause` says why; `paths`, those
    not written."""

    def __init__(self, cause: TargetError, changes: Sequence[Change], written: frozenset[str]):
        self.cause = cause
        self.paths = user_writes.paths(changes) - written
        super().__init__(str(cause))


class UserOps(Matching):
    """One user operation at a time."""

    async def _user_op(self, op: UserOp, live: bool = False) -> Record:
        """Do one user operation; what to record once it is done. `live`: never trust the
        index (a Bulk request may have done part of it)."""
        if op.kind is OpKind.CREATE:
            return await self._create(op, live)
        if op.kind is OpKind.DELETE:
            return await self._delete(op)
        return await self._modify(op)

    async def _create(self, op: UserOp, live: bool = False) -> Record:
        assert op.resource is not None and op.after is not None
        seeker = _seeker(op)
        resolution = self.resolutions.get(op.person)
        if resolution is not None and resolution.resolution == "link":
            resource = op.resource
            scim_id, adopted = await self._linked(seeker, resolution), True
        else:
            resource = op.resource
            if resolution is not None:  # a new account: under a userName no one has
                resource = {**resource, "userName": await self._free_user_name(op, live)}
            seeker = replace(seeker, user_name=resource["userName"])
            scim_id, adopted = await self._match_or_create(op, seeker, resource, live)
        self.scim_ids[op.person] = scim_id
        after = replace(op.after, scim_id=scim_id, user_name=resource["userName"])
        if resource["userName"] != op.resource["userName"]:
            after = self._chosen_user_name(after)
        unwritten: Unwritten | None = None
        if adopted:
            changes = tuple(Change(p, v) for p, v in _owned_paths(resource))
            try:
                await self._write_changes(op.person, scim_id, changes)
            except Unwritten as exc:
                unwritten = exc
            except NotFound:
                raise
            except TargetError as exc:
                unwritten = Unwritten(exc, changes, frozenset())
            if unwritten is not None and ACTIVE in unwritten.paths:
                raise unwritten.cause  # not adopted as it should be: the next run tries again
            if unwritten is not None:
                after = partly_written(after, unwritten.paths)

        def record() -> None:
            if adopted:
                self.result.adopted += 1
                self.store.journal(self.run_id, "adopt", "done", op.person, op.label, scim_id)
            self.store.save_user(after)
            if resolution is not None:
                self.store.close_case(op.person, self.run_id)
            rechecked = self.rechecks.get(op.person)
            if rechecked is not None:  # nothing against them any more: the case closes
                how = f"adopted {scim_id}" if adopted else f"created {scim_id}"
                detail = f"nothing against them found any more; {how}"
                self.store.close_case(op.person, self.run_id)
                self.store.journal(
                    self.run_id, "correlation", "closed", op.person, op.label, detail
                )
                self.result.closed.append(rechecked)

        if unwritten is not None:
            raise PartlyDone(unwritten.cause, record, kind_done=True)
        return record

    async def _match_or_create(
        self, op: UserOp, seeker: Seeker, resource: dict[str, Any], live: bool
    ) -> tuple[str, bool]:
        """Look the person up (the index, or the target itself) and adopt what is found with
        proof of identity, else create; a 409 leads to the same lookup. (SCIM id, adopted)."""
        attempts = 0
        user_name: str = resource["userName"]

        async def match_then_create() -> tuple[str, bool]:
            nonlocal attempts
            attempts += 1
            # After a failed attempt the create may have happened: look in the target itself.
            existing: Account | None
            if self.index is not None and attempts == 1 and not live:
                found = self.index.match_by(op.person, op.national_digits, user_name)
                existing = found[0] if found else None
            else:
                existing = await self._match(op.person, op.national_digits, user_name)
            if existing is not None:
                return self._adopted(seeker, existing), True
            try:
                created, answer = await self.client.create_user_answer(resource)
            except Conflict:
                existing = await self._match(op.person, op.national_digits, user_name)
                if existing is None:  # the target holds them, its filters did not say
                    existing = await self._match_by_listing(
                        op.person, op.national_digits, user_name
                    )
                if existing is None:
                    raise
                return self._adopted(seeker, existing), True
            if answer is not None:
                self.not_kept.update(fit.not_kept(fit.flat(resource), answer))
            self.owners[created] = op.person
            return created, False

        result: tuple[str, bool] = await self._call("create user", match_then_create)
        return result

    def _adopted(self, seeker: Seeker, account: Account) -> str:
        """`_proven`; an account carrying the person's own externalId is one the connector
        made whose record the state store lost: noted (`relinked`), for its memberships."""
        scim_id = self._proven(seeker, account)
        if account.external_id == seeker.key:
            self.relinked.add(seeker.key)
        return scim_id

    async def _linked(self, seeker: Seeker, case: CorrelationCase) -> str:
        """The account a resolved correlation case links the person to: read (it must still
        be there, else the case opens again: `LinkGone`), and adopted unless the store now
        links it to someone else."""
        scim_id = case.link_scim_id or ""
        try:
            user = await self._call("read user", partial(self.client.get_user, scim_id))
        except NotFound:
            raise LinkGone(seeker, case) from None
        account = account_of(user) or Account(scim_id=scim_id, user_name="")
        owner = self.owners.get(scim_id)
        if owner is not None and owner != seeker.key:
            raise CorrelationFound(
                seeker, account, "the state store links this account to another person"
            )
        self.owners[scim_id] = seeker.key
        return scim_id

    def _chosen_user_name(self, after: KnownUser) -> KnownUser:
        """What the store records of a user created under a userName chosen here (a new
        account's numbered one): its digest is that of the userName sent, so that a run that
        compares it with the target (`sync --full`) finds nothing changed."""
        if self.keyring is None:  # not known: the next run writes the userName again
            return partly_written(after, frozenset({USER_NAME}))
        chosen = self.keyring.digest(canonical(after.user_name))
        digests = [(p, chosen if p == USER_NAME else d) for p, d in after.digests.items()]
        return replace(after, digests=Digests.of(digests))

    async def _free_user_name(self, op: UserOp, live: bool) -> str:
        """The userName of a person resolved to a new account: their e-mail if no user of the
        target has it, else the first free of `local.2@domain` ... `local.99@domain`."""
        assert op.resource is not None
        wanted: str = op.resource["userName"]
        for user_name in user_names_for_new_account(wanted):
            if not await self._user_name_taken(user_name, live):
                return user_name
        raise Conflict("create user", f"no free userName like {wanted!r} for a new account")

    async def _modify(self, op: UserOp) -> Record:
        assert op.scim_id is not None and op.after is not None
        scim_id = self.scim_ids.get(op.person, op.scim_id)
        try:
            try:
                await self._write_changes(op.person, scim_id, op.changes)
            except NotFound:
                # The user vanished or was recreated under another id: match again, never
                # recreate.
                found = await self._rematched(op)
                if found is None and op.kind is OpKind.DEACTIVATE:
                    return self._gone(op)  # no active account: the goal is reached
                if found is None:
                    raise
                scim_id = found
                await self._write_changes(op.person, scim_id, op.changes)
        except Unwritten as exc:
            if ACTIVE in exc.paths:
                raise exc.cause from None  # recorded as it was: all planned again
            self.scim_ids[op.person] = scim_id
            after = partly_written(replace(op.after, scim_id=scim_id), exc.paths)
            record = partial(self.store.save_user, after)
            kind_done = op.kind is not OpKind.UPDATE
            raise PartlyDone(exc.cause, record, kind_done=kind_done) from None
        self.scim_ids[op.person] = scim_id
        after = replace(op.after, scim_id=scim_id)
        return partial(self.store.save_user, after)

    async def _rematched(self, op: UserOp) -> str | None:
        """A managed person's account found again after a 404 (recreated under another id),
        judged by the same proof as any match, with the person's national number and name
        where the plan has them. None: nothing found, or, for a deactivation, only an inactive
        account that is not provably theirs (no active account is left either way). Any other
        account that is not provably theirs is a correlation case (`CorrelationFound`): the
        state store's link to the vanished account is dropped with it (`stale_link`), so that
        the case is resolved like any other."""
        assert op.after is not None
        found = await self._match(op.person, op.national_digits, op.after.user_name)
        if found is None:
            return None
        given, family = op.name
        seeker = Seeker(
            key=op.person,
            digits=op.national_digits,
            user_name=op.after.user_name,
            given_name=given,
            family_name=family,
            employee_keys=tuple(sorted(str(k) for k in op.after.employee_keys)),
        )
        try:
            return self._proven(seeker, found)
        except CorrelationFound as exc:
            log.warning(
                "apply.rematch_refused", run_id=self.run_id, person=op.label, why=exc.reason
            )
            if op.kind is OpKind.DEACTIVATE and not found.active:
                return None
            exc.stale_link = op.scim_id
            raise

    def _gone(self, op: UserOp) -> Record:
        """A leaver whose account was deleted in the target (by an administrator): nothing is
        left to deactivate. Done; the state store forgets the account, so that no run creates
        one again only to hold it inactive."""
        log.info("apply.already_gone", run_id=self.run_id, person=op.label)

        def record() -> None:
            self.store.journal(
                self.run_id, op.kind.value, "note", op.person, op.label, "gone from the target"
            )
            self.store.forget_user(op.person)

        return record

    async def _write_changes(self, person: str, scim_id: str, changes: Sequence[Change]) -> None:
        """Write one user's changes (see `_write`). Raises `Unwritten` when some were written and
        others not; when the changes as a whole fail, `active` goes on its own, so that an
        attribute the target will not take never holds up an activation or deactivation."""
        written: list[str] = []
        try:
            await self._write(person, scim_id, changes, written)
        except TargetError as exc:
            cause = exc
            active = [c for c in changes if c.path == ACTIVE and ACTIVE not in written]
            if active and len(changes) > 1 and not isinstance(exc, NotFound):
                with contextlib.suppress(TargetError):  # the first failure is the one reported
                    await self._write(person, scim_id, active, written)
            if not written:
                raise
            raise Unwritten(cause, changes, frozenset(written)) from None

    async def _write(
        self, person: str, scim_id: str, changes: Sequence[Change], written: list[str]
    ) -> None:
        """Write changes by PATCH where the target takes a PATCH of their path, by PUT (read,
        merge, put back) where it does not (`profile.put_paths`, or found refused now); append
        each path to `written` once it is."""
        if not self.client.capabilities.patch:
            await self._put(person, scim_id, changes)
            written.extend(c.path for c in changes)
            return
        by_patch, by_put = user_writes.split(changes, self.profile.put_paths)
        if by_patch:
            try:
                await self._patch(scim_id, by_patch)
                written.extend(c.path for c in by_patch)
            except TargetRequestError as exc:
                if not user_writes.refuses_patch(exc):
                    raise
                refused = await self._refused(scim_id, by_patch, written)
                by_put += tuple(c for c in by_patch if c.path in refused)
        if by_put:
            await self._put(person, scim_id, by_put)
            written.extend(c.path for c in by_put)

    async def _refused(
        self, scim_id: str, changes: Sequence[Change], written: list[str]
    ) -> frozenset[str]:
        """The paths of a refused PATCH to write by PUT. One path: that one, learned. Several:
        once per run (the probe), each is sent again alone (`_patch_alone`; those it takes are
        written) and those refused are learned; after the run's probe, all of them (what the
        probe learned routes the changes planned after it)."""
        refused = user_writes.paths(changes)
        if len(changes) == 1:
            self.learn_put_paths(refused)
            return refused
        if self.patch_probed:
            return refused
        self.patch_probed = True
        alone: set[str] = set()
        try:
            for change in changes:
                if await self._patch_alone(scim_id, change):
                    written.append(change.path)
                else:
                    alone.add(change.path)
        finally:  # what was found refused stays learned, whatever stops the probe
            self.learn_put_paths(frozenset(alone))
        return frozenset(alone)

    async def _patch_alone(self, scim_id: str, change: Change) -> bool:
        """PATCH one change alone (the probe): True if the target took it, False if it refused
        it or failed on it with a 500."""
        try:
            await self._patch(scim_id, (change,), probe=True)
        except TargetRequestError as exc:
            if user_writes.refuses_patch(exc) or exc.status == 500:
                return False
            raise
        return True

    async def _patch(self, scim_id: str, changes: Sequence[Change], *, probe: bool = False) -> None:
        """One PATCH of a user; note what its answer shows the target does not keep. In a probe
        a 500 is not tried again: a server that fails on one attribute alone, just after
        refusing it with others, does not take that attribute's PATCH."""
        operations: list[PatchOperation[Any]] = [
            PatchOperation(op="remove", path=c.path)
            if c.value is None
            else PatchOperation(op="replace", path=c.path, value=c.value)
            for c in changes
        ]

        async def send() -> ScimUser | None:
            try:
                return await self.client.patch_user(scim_id, operations)
            except TargetUnavailable as exc:
                if not probe or exc.status != 500:
                    raise
                raise Rejected(exc.operation, exc.detail, status=500) from None

        answer = await self._call("patch user", send)
        if answer is not None:  # the user as the target holds it now
            self._check_answer("patch user", changes, answer.model_dump())

    async def _put(self, person: str, scim_id: str, changes: Sequence[Change]) -> None:
        """Write changes by PUT: read the user, apply them (`user_writes.merged`: what the
        connector does not own is sent back as it was), put it back; conditional on the
        version read where the target has ETags, read again when someone changed it since."""
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            current = await self._call("read user", partial(self.client.read_user_json, scim_id))
            body = user_writes.merged(current.body, changes, person)
            try:
                answer = await self._call(
                    "replace user",
                    partial(self.client.replace_user_json, scim_id, body, current.version),
                )
            except PreconditionFailed:
                if attempt == REPLACE_ATTEMPTS:
                    raise
                continue
            if answer is not None:
                self._check_answer("replace user", changes, answer)
            return

    def _check_answer(self, what: str, changes: Sequence[Change], answer: dict[str, Any]) -> None:
        """What a write's answer (the user as the target now holds it) shows: attributes it does
        not keep as sent are noted; an `active` or `userName` it does not hold is a failure."""
        sent = {c.path: c.value for c in changes if c.value is not None}
        missing = fit.missing_effects(sent, answer)
        if missing:
            shown = ", ".join(f"{path}={sent[path]!r}" for path in sorted(missing))
            raise EffectMissing(what, f"answered as done, but the user does not hold {shown}")
        self.not_kept.update(fit.not_kept(sent, answer))

    async def _delete(self, op: UserOp) -> Record:
        assert op.scim_id is not None
        with contextlib.suppress(NotFound):  # already gone: the goal is reached
            await self._call("delete user", lambda: self.client.delete_user(op.scim_id or ""))
        return partial(self.store.forget_user, op.person)


def _seeker(op: UserOp) -> Seeker:
    """Who a create looks for: the person's key, number, userName, name and employee keys."""
    assert op.resource is not None and op.after is not None
    name = op.resource.get("name") or {}
    return Seeker(
        key=op.person,
        digits=op.national_digits,
        user_name=op.resource["userName"],
        given_name=name.get("givenName"),
        family_name=name.get("familyName"),
        employee_keys=tuple(sorted(str(k) for k in op.after.employee_keys)),
    )


def _owned_paths(resource: dict[str, Any]) -> list[tuple[str, Any]]:
    """The owned attribute paths and values of a full User resource."""
    out: list[tuple[str, Any]] = []
    for key, value in resource.items():
        if key == "schemas":
            continue
        if key.startswith("urn:"):
            out.extend((f"{key}:{attr}", v) for attr, v in value.items())
        else:
            out.append((key, value))
    return out
