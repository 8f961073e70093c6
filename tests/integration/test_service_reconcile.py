"""`serve`'s scheduled nightly sync is a real `sync --full`: drift is repaired without a human."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx2
import pytest

from connector.service.app import Service
from tests.factories import hr_row
from tests.integration.conftest import ScimTenants
from tests.integration.test_service import Setup, in_thread, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

BRUSSELS = ZoneInfo("Europe/Brussels")
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_the_scheduled_midnight_sync_reactivates_a_user_deactivated_by_hand(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    setup = Setup(scim_tenants.new(), tmp_path, [hr_row(n) for n in (1, 2, 3)])
    setup.service = {"midnight_sync": True}  # reconcile: "nightly", the default
    assert setup.sync().counts["create"] == 3
    drifted = setup.users()["person2@gent.be"]
    answer = httpx2.patch(
        f"{setup.server.base_url}/Users/{drifted['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert answer.status_code in (200, 204), answer.text
    assert setup.sync().counts["activate"] == 0  # a plain sync trusts the state store
    setup.write()

    started = time.monotonic()
    midnight = dt.datetime.now(BRUSSELS).replace(hour=0, minute=0, second=59, microsecond=500_000)

    def clock() -> dt.datetime:  # today's midnight run falls due half a second after the start
        return midnight + dt.timedelta(seconds=time.monotonic() - started)

    def tune(service: Service) -> None:
        service.runner.clock = clock

    runs_before = len(setup.runs("sync"))
    with in_thread(setup, tune):
        wait_for(
            "the midnight sync",
            lambda: [r for r in setup.runs("sync")[runs_before:] if r[2] in ("done", "failed")],
        )
    assert setup.users()["person2@gent.be"]["active"] is True
