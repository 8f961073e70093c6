"""Reading the target: how many users and groups it holds, whether paging is honoured, and
(read-only) the listed resources whose values the filters look for. The judgement (below the
requests) is pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx2

from connector.target.check import Area, Finding, Verdict
from connector.target.checking.answer import Answer, named, refused_or_failed
from connector.target.checking.session import Session

SAMPLE_PAGE = 20  # read-only: how many users (and groups) to read for known filter values
PAGING = "paging (startIndex, count=1)"


@dataclass(slots=True)
class Samples:
    """Resources whose values filters must find: the throwaway ones, or (read-only) listed ones."""

    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    whose: str = "listed"  # "listed" or "throwaway": for the unverified message


# ---------------------------------------------------------------------------- requests


async def counts(session: Session) -> None:
    """`GET /Users?count=0` and `GET /Groups?count=0`."""
    endpoints = session.endpoints
    for name, endpoint in (("Users", endpoints.users), ("Groups", endpoints.groups)):
        item = f"GET /{name}?count=0"

        async def step(endpoint: str = endpoint, item: str = item, name: str = name) -> None:
            answer = await session.send("GET", endpoint, params={"count": "0"})
            session.totals[name] = answer.total if answer.ok else None
            session.add(count_finding(item, answer))

        await session.isolated(Area.READ, item, step)


async def paging(session: Session) -> None:
    """Pages of one user: are startIndex and count honoured?"""

    async def step() -> None:
        users = session.endpoints.users
        first = await session.send("GET", users, params={"startIndex": "1", "count": "1"})
        second = await session.send("GET", users, params={"startIndex": "2", "count": "1"})
        session.add(paging_finding(first, second))

    await session.isolated(Area.READ, PAGING, step)


async def listed_samples(session: Session) -> Samples:
    """Read-only: the first users and groups listed, for known filter values."""
    samples = Samples()
    page = {"startIndex": "1", "count": str(SAMPLE_PAGE)}
    for endpoint, into in (
        (session.endpoints.users, samples.users),
        (session.endpoints.groups, samples.groups),
    ):
        try:
            answer = await session.send("GET", endpoint, params=page)
        except httpx2.HTTPError:
            continue  # the filters say what they could not verify
        into.extend((answer.resources or [])[:SAMPLE_PAGE] if answer.ok else [])
    return samples


async def read_sample(
    session: Session, endpoint: str, scim_id: str, into: list[dict[str, Any]]
) -> Answer:
    """Read a throwaway resource back; what it holds is a sample the filters look for."""
    read = await session.read(endpoint, scim_id)
    if read.resource is not None:
        into.append(read.resource)
    return read


# ---------------------------------------------------------------------------- judgement (pure)


def count_finding(item: str, answer: Answer) -> Finding:
    """`GET /Users?count=0` (or /Groups): answered, with totalResults?"""
    if not answer.ok or answer.resources is None:
        return refused_or_failed(Area.READ, item, "", answer)
    if answer.total is None:
        return Finding(Area.READ, item, "", f"{answer.status} without totalResults", Verdict.NOTE)
    return Finding(Area.READ, item, "", f"{answer.status}, totalResults {answer.total}", Verdict.OK)


def paging_finding(first: Answer, second: Answer) -> Finding:
    """`startIndex=1&count=1` and `startIndex=2&count=1`: are count and startIndex honoured?"""
    item = PAGING
    for answer in (first, second):
        if not answer.ok or answer.resources is None:
            return refused_or_failed(Area.READ, item, "", answer)
    one, two = first.resources or [], second.resources or []
    total = first.total
    if total is None:
        observed = "no totalResults: the number of pages is unknown"
        return Finding(Area.READ, item, "", observed, Verdict.NOTE)
    if total < 2:
        observed = f"{total} user(s): too few to see paging"
        return Finding(Area.READ, item, "", observed, Verdict.UNVERIFIED)
    problems = []
    if len(one) > 1:
        problems.append(f"count ignored ({len(one)} of {total} returned for count=1)")
    ids_one, ids_two = {named(r, "id") for r in one}, {named(r, "id") for r in two}
    if not two or ids_two <= ids_one:
        problems.append("startIndex=2 gave the first page again")
    if problems:
        return Finding(Area.READ, item, "", "; ".join(problems), Verdict.NOTE)
    return Finding(Area.READ, item, "", f"both honoured ({total} users)", Verdict.OK)
