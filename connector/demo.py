"""`scim-connector demo`: the sandbox in-process, the demo HR data, two runs a month apart.

The connector authenticates to the sandbox as ACM/IDM clients do: OAuth2 client credentials
with a `private_key_jwt` client assertion, signed with a throwaway key pair generated for the
run. Writes nothing into the working directory or HOME: the state store and the key live in a
temporary directory that is removed afterwards, unless `--state` names a place to keep them.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from connector import jobs
from connector.config import Settings, load_config
from connector.errors import UsageError
from connector.report import Report
from connector.sandbox.oauth import DemoClient, SandboxConfig, generate_demo_client
from connector.sandbox.server import RunningSandbox, sandbox_in_thread

# The demo data is written for these dates: the first run sees joiners and grants, the second,
# a month later, the end dates of December take effect.
FIRST_DAY = dt.date(2026, 12, 1)
SECOND_DAY = dt.date(2027, 1, 4)


def demo_data_dir() -> Path:
    """The demo HR data: shipped in the package, or `config/demo` in a source checkout."""
    packaged = resources.files("connector").joinpath("builtin/demo")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "config" / "demo"


KEY_DIRECTORY = "sandbox-client"
"""Where, in the demo's state directory, the demo client's key and secret are written."""


@contextmanager
def demo_sandbox(state_dir: Path) -> Iterator[tuple[RunningSandbox, DemoClient]]:
    """A sandbox with a token endpoint, in a thread, and a demo client it knows (key pair
    generated into `state_dir`)."""
    client = generate_demo_client(state_dir / KEY_DIRECTORY)
    config = SandboxConfig(clients=(client.sandbox_client(),))
    with sandbox_in_thread(config=config) as sandbox:
        yield sandbox, client


def demo_settings(sandbox: RunningSandbox, client: DemoClient, state_dir: Path) -> Settings:
    """The demo's configuration: demo data, the sandbox with private_key_jwt, a state store
    in `state_dir`."""
    data = demo_data_dir()
    config = state_dir / "demo.toml"
    config.write_text(
        f"""# Written by `scim-connector demo`.
[source]
path = {json.dumps(str(data / "hr.csv"))}
grants = {json.dumps(str(data / "grants.csv"))}

[target]
base_url = {json.dumps(sandbox.base_url)}

[target.auth]
method = "private_key_jwt"
token_url = {json.dumps(sandbox.token_url)}
client_id = {json.dumps(client.client_id)}
private_key_file = {json.dumps(str(client.private_key_file))}

[state]
path = "state.db"
""",
        encoding="utf-8",
    )
    return load_config(config)


@contextmanager
def state_directory(keep: Path | None, option: str = "--state") -> Iterator[Path]:
    """`keep` if given (created if needed), else a temporary directory removed afterwards.

    UsageError, naming `option`, if `keep` cannot be a folder (a file is there, say)."""
    if keep is not None:
        if keep.exists() and not keep.is_dir():
            raise UsageError(f"{option}: {keep} is a file; give a folder (created if needed)")
        try:
            keep.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"{option}: cannot make the folder {keep}: {exc.strerror or exc}"
            ) from None
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="scim-connector-demo-") as tmp:
        yield Path(tmp)


async def run_demo(
    sandbox: RunningSandbox, client: DemoClient, state_dir: Path, days: tuple[dt.date, dt.date]
) -> list[Report]:
    """The demo's two syncs against a running sandbox."""
    settings = demo_settings(sandbox, client, state_dir)
    reports = []
    for day in days:
        reports.append(await jobs.sync(settings, jobs.new_run_id(), day, command="demo"))
    return reports


__all__ = ["FIRST_DAY", "SECOND_DAY", "demo_data_dir", "demo_sandbox", "run_demo"]
