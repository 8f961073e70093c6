"""Probing a SCIM target for `check-target`: the probes of each area, in order.

Only the first requests decide whether the target can be used at all: /ServiceProviderConfig
(unreachable or refusing authentication: TargetError, AuthError) and, when that is not SCIM
JSON, `GET /Users?count=0` (neither SCIM JSON: not a SCIM service, TargetError). They are sent
once, without the retries of reads, unless the target looks unavailable (`announcements.reach`).
Every other probe is isolated (`Session.isolated`): when it fails, that is a finding and the
others go on.

Read-only unless `write_test`: then a throwaway user (`scim-connector-check-<random>@invalid
.example`), a second, minimal one (for group members and paging) and a throwaway group
(`scim-connector-check-<random>`) are created, written in the forms a sync uses, read back,
and deleted in a `finally`, each checked to be gone. No other resource is ever written.
"""

from __future__ import annotations

import httpx2

from connector.config import Settings
from connector.scim_models import ENTERPRISE_USER_SCHEMA
from connector.target.check import Area, Finding, TargetCheck, Verdict
from connector.target.checking.announcements import reach, read_announcements
from connector.target.checking.answer import unverified
from connector.target.checking.bulk import bulk
from connector.target.checking.cleanup import cleanup
from connector.target.checking.filters import filters, search
from connector.target.checking.groups import create_group, member_writes
from connector.target.checking.reading import Samples, counts, listed_samples, paging
from connector.target.checking.session import Names, Session
from connector.target.checking.user_create import create_users, throwaway_user
from connector.target.checking.user_updates import user_updates
from connector.target.connect import EventHooks, http_client
from connector.target.retry import RetryPolicy

READ_ONLY = "read-only check: nothing written (--write-test tries writes on throwaway resources)"


async def check_target(
    settings: Settings,
    *,
    write_test: bool,
    retry: RetryPolicy | None = None,
    event_hooks: EventHooks | None = None,
    names: Names | None = None,
) -> TargetCheck:
    """Probe the configured target (see the module's docstring); raises TargetError (or
    AuthError) only when the target cannot be reached or authenticated at all."""
    base_url = str(settings.target.base_url).rstrip("/")
    async with http_client(settings, event_hooks, retry) as http:
        session = Session(http, names or Names.new())
        await reach(session, base_url)
        await read_announcements(session, httpx2.URL(base_url).path)
        await counts(session)
        session.authenticated = True
        if write_test:
            await write_tests(session)
        else:
            samples = await listed_samples(session)
            await paging(session)
            await search(session, samples)
            await filters(session, samples)
            skipped = Finding(Area.USER_CREATE, "write tests", "-", READ_ONLY, Verdict.SKIPPED)
            session.add(skipped)
    order = list(Area)
    findings = sorted(session.findings, key=lambda finding: order.index(finding.area))
    return TargetCheck(base_url, write_test, tuple(findings), session.user_extensions)


async def write_tests(session: Session) -> None:
    """Everything `--write-test` does, then the cleanup (always)."""
    try:
        await _write_tests(session)
    finally:
        await cleanup(session)


async def _write_tests(session: Session) -> None:
    declared = session.endpoints.user_extensions or frozenset()
    enterprise = ENTERPRISE_USER_SCHEMA.casefold() in declared
    sent = throwaway_user(session.names, enterprise)
    samples = Samples(whose="throwaway")
    a, b = await create_users(session, sent, samples)
    group = await create_group(session, a, samples)
    await paging(session)
    await search(session, samples)
    await filters(session, samples)
    if a is None:
        why = "no throwaway user (its POST failed)"
        session.add(unverified(Area.USER_PATCH, "user and group writes", why))
        return
    await user_updates(session, a, sent, enterprise)
    if group is not None and b is not None:
        await member_writes(session, group, a, b)
    else:
        why = "no throwaway group or no second user"
        session.add(unverified(Area.GROUP, "member writes", why))
    await bulk(session, a)
