"""The filters the connector uses (`userName`, `externalId`, `emails.value`, group
`displayName`, terms joined by `or`) and `POST /Users/.search`: each tried with a value nobody
has (it must find nothing) and with a value someone has (it must find them, and nobody else).
The judgement (below the requests) is pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.target.answers import quoted
from connector.target.check import OR_FILTER, Area, Finding, Verdict
from connector.target.checking.answer import Answer, attribute, named
from connector.target.checking.reading import Samples
from connector.target.checking.session import Session

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SEARCH = "POST /Users/.search"
JOINED = "userName eq … or userName eq …"


@dataclass(frozen=True, slots=True)
class Term:
    """One `attribute eq "value"` of a filter."""

    attribute: str
    value: str

    def text(self) -> str:
        """The term as SCIM filter text (the value a JSON string, RFC 7644 §3.4.2.2)."""
        return f"{self.attribute} eq {quoted(self.value)}"


@dataclass(frozen=True, slots=True)
class FilterTest:
    """One filter tried twice: with values nobody has, and with values someone has (if known)."""

    item: str
    subject: str  # the attribute (or `or`)
    impossible: Answer
    known: Answer | None = None  # the answer to the filter with the known values
    terms: tuple[Term, ...] = ()  # the known values
    expected: frozenset[str] = frozenset()  # ids that must be found
    unfiltered: int | None = None  # how many resources the unfiltered list has
    why_unverified: str = "no known value to look for"


# ---------------------------------------------------------------------------- requests


async def search(session: Session, samples: Samples) -> None:
    """`POST /Users/.search`: answered? A value nobody has finds nothing, a known one it."""

    async def step() -> None:
        url = f"{session.endpoints.users}/.search"
        nobody = Term("userName", f"{session.names.nobody}@invalid.example")
        impossible = await session.send(
            "POST", url, body={"schemas": [SEARCH_REQUEST], "filter": nobody.text()}
        )
        sample = _first_with(samples.users, "userName")
        test = FilterTest(SEARCH, "search", impossible)
        if sample is not None and impossible.ok:
            term = Term("userName", sample[1])
            known = await session.send(
                "POST", url, body={"schemas": [SEARCH_REQUEST], "filter": term.text()}
            )
            test = FilterTest(
                test.item, test.subject, impossible, known, (term,), frozenset({sample[0]})
            )
        session.add(search_finding(test))

    await session.isolated(Area.READ, SEARCH, step)


async def filters(session: Session, samples: Samples) -> None:
    """Each filter the connector uses, with a value nobody has and a value someone has."""
    says = session.announced.says("filter")
    nobody = session.names.nobody
    users, groups = session.endpoints.users, session.endpoints.groups
    cases: list[tuple[str, str, str, list[Term], list[dict[str, Any]], str]] = [
        ("userName eq", "userName", users, [Term("userName", f"{nobody}@invalid.example")],
         samples.users, "userName"),
        ("externalId eq", "externalId", users, [Term("externalId", nobody)],
         samples.users, "externalId"),
        ("emails.value eq", "emails.value", users,
         [Term("emails.value", f"{nobody}@invalid.example")], samples.users, "emails.value"),
        ("displayName eq (Groups)", "displayName", groups, [Term("displayName", nobody)],
         samples.groups, "displayName"),
    ]  # fmt: skip
    for item, name, endpoint, impossible, pool, sampled in cases:

        async def step(
            item: str = item,
            name: str = name,
            endpoint: str = endpoint,
            impossible: list[Term] = impossible,
            pool: list[dict[str, Any]] = pool,
            sampled: str = sampled,
        ) -> None:
            sample = _first_with(pool, sampled)
            known = [Term(name, sample[1])] if sample else []
            expected = {sample[0]} if sample else set()
            test = await filter_test(
                session, item, name, endpoint, impossible, known, expected, samples, sampled
            )
            session.add(filter_finding(test, says))

        await session.isolated(Area.FILTER, item, step)

    async def joined() -> None:
        impossible = [Term("userName", f"{nobody}-{n}@invalid.example") for n in (1, 2)]
        picked = [s for s in (_with(u, "userName") for u in samples.users) if s][:2]
        known = [Term("userName", value) for _, value in picked]
        if len(known) == 1:
            known.append(impossible[0])
        expected = {scim_id for scim_id, _ in picked}
        test = await filter_test(
            session, JOINED, OR_FILTER, users, impossible, known, expected, samples, "userName"
        )
        session.add(filter_finding(test, says))

    await session.isolated(Area.FILTER, JOINED, joined)


async def filter_test(
    session: Session,
    item: str,
    subject: str,
    endpoint: str,
    impossible: Sequence[Term],
    known: Sequence[Term],
    expected: set[str],
    samples: Samples,
    sampled: str,
) -> FilterTest:
    """Send a filter with values nobody has, then (if known) with values someone has."""
    answer = await session.send("GET", endpoint, params={"filter": filter_text(impossible)})
    listed = session.totals.get("Groups" if endpoint == session.endpoints.groups else "Users")
    if samples.whose == "throwaway":
        why = f"no {sampled} of a throwaway resource to look for (not kept?)"
    else:
        why = f"no {sampled} of a listed resource to look for"
    test = FilterTest(item, subject, answer, unfiltered=listed, why_unverified=why)
    if not known or not answer.ok:
        return test
    found = await session.send("GET", endpoint, params={"filter": filter_text(known)})
    return FilterTest(item, subject, answer, found, tuple(known), frozenset(expected), listed, why)


def _with(resource: Mapping[str, Any], path: str) -> tuple[str, str] | None:
    """(id, a value of `path`) of a resource that has both; emails.value: the first email."""
    scim_id = resource.get("id")
    if not isinstance(scim_id, str) or not scim_id:
        return None
    if path == "emails.value":
        emails = resource.get("emails")
        values = [e.get("value") for e in emails if isinstance(e, dict)] if emails else []
        value = next((v for v in values if isinstance(v, str) and v), None)
    else:
        found = attribute(resource, path)
        value = found if isinstance(found, str) and found else None
    return (scim_id, value) if value else None


def _first_with(resources: Sequence[Mapping[str, Any]], path: str) -> tuple[str, str] | None:
    """The first resource that has a value of `path`: (id, value)."""
    return next((found for r in resources if (found := _with(r, path))), None)


# ---------------------------------------------------------------------------- judgement (pure)


def filter_text(terms: Sequence[Term]) -> str:
    """Terms joined by `or`."""
    return " or ".join(term.text() for term in terms)


CASE_EXACT = frozenset({"externalid", "id"})  # RFC 7643: caseExact attributes of User/Group


def matches(resource: Mapping[str, Any], term: Term) -> bool:
    """Whether a resource satisfies `attribute eq value` (caseExact as RFC 7643 says)."""
    name = term.attribute.casefold()
    if name == "emails.value":
        emails = named(resource, "emails")
        values = [named(e, "value") for e in emails if isinstance(e, Mapping)] if emails else []
    else:
        values = [attribute(resource, term.attribute)]
    for value in values:
        if not isinstance(value, str):
            continue
        if value == term.value:
            return True
        if name not in CASE_EXACT and value.casefold() == term.value.casefold():
            return True
    return False


def filter_finding(test: FilterTest, announced: str) -> Finding:
    """Trusted (ok) only when a known value was found, alone; refused, untrusted or unverified
    otherwise."""
    area, item = Area.FILTER, test.item
    impossible = test.impossible
    if not impossible.ok:
        return Finding(area, item, announced, impossible.short(), Verdict.REFUSED, test.subject)
    found = impossible.resources
    if found is None:
        return Finding(area, item, announced, "not a ListResponse", Verdict.FAILED, test.subject)
    hits = impossible.total if impossible.total is not None else len(found)
    if hits:
        observed = f"a value nobody has matched {hits}: the filter is ignored"
        return Finding(area, item, announced, observed, Verdict.UNTRUSTED, test.subject)
    none = "a value nobody has: 0"
    if test.known is None:
        observed = f"{none}; {test.why_unverified}"
        if test.unfiltered:
            observed = f"{none} of {test.unfiltered}; {test.why_unverified}"
        return Finding(area, item, announced, observed, Verdict.UNVERIFIED, test.subject)
    known = test.known
    if not known.ok:
        observed = f"{none}; a known value: {known.short()}"
        return Finding(area, item, announced, observed, Verdict.REFUSED, test.subject)
    results = known.resources
    if results is None:
        return Finding(area, item, announced, "not a ListResponse", Verdict.FAILED, test.subject)
    ids = {str(named(r, "id")) for r in results}
    wrong = [r for r in results if not any(matches(r, term) for term in test.terms)]
    missing = test.expected - ids
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(test.expected)} that have it not found")
        if wrong:
            parts.append(f"{len(wrong)} found that do not have it")
        observed = f"{none}; a known value: {', '.join(parts)}"
        return Finding(area, item, announced, observed, Verdict.UNTRUSTED, test.subject)
    observed = f"{none}; a known value: found, and nothing else"
    return Finding(area, item, announced, observed, Verdict.OK, test.subject)


def search_finding(test: FilterTest) -> Finding:
    """`POST /Users/.search` (RFC 7644 §3.4.3): answered, with right results?"""
    finding = filter_finding(test, "-")
    return Finding(Area.READ, SEARCH, finding.announced, finding.observed, finding.verdict)
