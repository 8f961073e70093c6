"""`scim-connector serve` as a subprocess for the integration tests, and waiting on conditions."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx2
import pytest

REPO = Path(__file__).parents[2]
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """`check()`'s first true value, asked every 0.1 s; the test fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


@contextmanager
def serve_process(
    config: Path, port: int, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`scim-connector serve --config CONFIG` listening on `port`, its output appended to `log`;
    yields the process and its base URL once /healthz answers 200; killed if still running."""
    command = [sys.executable, "-m", "connector", "serve", "--config", str(config)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=None if env is None else dict(env), stdout=output, stderr=output
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx2.get(f"{base}/healthz", timeout=5).status_code == 200
        except httpx2.TransportError:
            return False

    try:
        wait_for("serve to answer /healthz", up, 30)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
