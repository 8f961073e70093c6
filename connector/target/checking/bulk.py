"""Bulk (`--write-test`, if announced): `POST /Bulk` with one harmless operation, a PATCH of
the throwaway user. The judgement (below the request) is pure."""

from __future__ import annotations

from collections.abc import Mapping

from connector.target.bulk import BULK_REQUEST, patch_data
from connector.target.check import Area, Finding, Verdict
from connector.target.checking.announced import Announced
from connector.target.checking.answer import Answer, named
from connector.target.checking.session import Session

ITEM = "POST /Bulk (one PATCH)"


async def bulk(session: Session, scim_id: str) -> None:
    """POST /Bulk with one harmless operation (a PATCH of the throwaway user), if announced."""
    announced = session.announced
    if not announced.supports("bulk"):
        why = "not announced: not tried"
        session.add(Finding(Area.BULK, ITEM, announced.says("bulk"), why, Verdict.SKIPPED))
        return

    async def step() -> None:
        operation = {
            "method": "PATCH",
            "path": f"{session.endpoints.users}/{scim_id}",
            "data": patch_data([("active", True)]),
        }
        body = {"schemas": [BULK_REQUEST], "Operations": [operation]}
        answer = await session.send("POST", "/Bulk", body=body)
        session.add(bulk_finding(answer, announced))

    await session.isolated(Area.BULK, ITEM, step)


# ---------------------------------------------------------------------------- judgement (pure)


def bulk_finding(answer: Answer, announced: Announced) -> Finding:
    """A POST /Bulk with one operation: answered, and the operation done?"""
    area, says = Area.BULK, announced.says("bulk")
    if not answer.ok:
        return Finding(area, ITEM, says, answer.short(), Verdict.REFUSED)
    operations = named(answer.resource or {}, "Operations")
    first = operations[0] if isinstance(operations, list) and operations else None
    status = named(first, "status") if isinstance(first, Mapping) else None
    code = _status_code(status)
    if code is None:
        return Finding(area, ITEM, says, f"{answer.status}, no operation status", Verdict.FAILED)
    if 200 <= code < 300:
        return Finding(area, ITEM, says, f"{answer.status}; operation {code}", Verdict.OK)
    return Finding(area, ITEM, says, f"{answer.status}; operation {code}", Verdict.REFUSED)


def _status_code(status: object) -> int | None:
    """A Bulk operation's status: "200", 200 or {"code": "200"} (RFC 7644 examples vary); only
    its first three digits are read, so "200 OK" is 200 too."""
    if isinstance(status, Mapping):
        status = named(status, "code")
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    if isinstance(status, str) and status.strip()[:3].isdigit():
        return int(status.strip()[:3])
    return None
