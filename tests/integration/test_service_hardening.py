"""`serve` against hostile networks and slow targets: bounded reads, bounded target calls and
runs, flat memory, one service per state store.

The service runs on real uvicorn on loopback (in a subprocess, or in this process for what a
test needs to look inside); the target is scim2-server, behind the fault proxy where it must
misbehave.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import hr_row
from tests.integration.conftest import ScimTenants, _free_port
from tests.integration.test_service import REPO, Client, Setup, serve

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(scim_tenants: ScimTenants, tmp_path: Path) -> Setup:
    made = Setup(scim_tenants.new(), tmp_path, [hr_row(n) for n in (1, 2, 3)])
    made.write()
    return made


def test_a_second_serve_on_the_same_state_store_refuses_to_start_with_exit_2(
    setup: Setup, tmp_path: Path
) -> None:
    with serve(setup, tmp_path / "first.log") as first:
        other = setup.config_path.with_name("other.toml")
        text = setup.config_path.read_text(encoding="utf-8")
        other.write_text(
            text.replace(f"127.0.0.1:{setup.port}", f"127.0.0.1:{_free_port()}"), encoding="utf-8"
        )
        second = subprocess.run(
            [sys.executable, "-m", "connector", "serve", "--config", str(other)],
            cwd=REPO,
            capture_output=True,
            timeout=60,
        )
        assert second.returncode == 2
        said = " ".join(second.stderr.decode().split())
        assert "another `scim-connector serve` is running on the state store" in said
        assert str(setup.state_path) in said
        assert "Traceback" not in said
        assert first.poll() is None
        assert Client(f"http://127.0.0.1:{setup.port}").get("/healthz").status_code == 200
