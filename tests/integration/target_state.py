"""What a SCIM target holds, in a form two targets can be compared by (ids left out)."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.integration.conftest import ScimServer


def everything(server: ScimServer) -> tuple[list[dict[str, Any]], list[str]]:
    """Every user (without server-assigned id/meta) and every membership (by externalId)."""
    users = httpx2.get(f"{server.base_url}/Users", params={"count": 5000}).json()["Resources"]
    external = {u["id"]: u.get("externalId") for u in users}
    for user in users:
        user.pop("id")
        user.pop("meta", None)
    groups = httpx2.get(f"{server.base_url}/Groups").json().get("Resources", [])
    members = sorted(
        f"{g['displayName']}:{external[m['value']]}" for g in groups for m in g.get("members", [])
    )
    return sorted(users, key=lambda u: str(u.get("externalId"))), members
