"""The commands that run something for a while: serve, the sandbox, the demo."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer
from rich.text import Text

from connector import jobs
from connector.cli import output
from connector.cli.exits import EXIT_OK, EXIT_PARTIAL, fail, guarded
from connector.cli.options import ServeConfigOption
from connector.config import config_path_from_env, load_config
from connector.logs import configure_logging
from connector.render import render_report

if TYPE_CHECKING:
    from connector.sandbox.oauth import DemoClient, SandboxConfig
    from connector.sandbox.server import RunningSandbox
    from connector.service.organisations import Organisation
    from connector.service.server import OrganisationsStartup


def demo(
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Keep the demo's state store in this directory."),
    ] = None,
) -> None:
    """Run the connector on the demo data against an in-process sandbox; needs no config."""
    from connector import demo as demo_job

    configure_logging("warning", "console")
    days = (demo_job.FIRST_DAY, demo_job.SECOND_DAY)

    def action() -> None:
        out = output.out
        with (
            demo_job.state_directory(state) as directory,
            demo_job.demo_sandbox(directory) as (box, client),
        ):
            out.rule("scim-connector demo")
            out.print(
                Text(
                    f"Sandbox identity provider at {box.base_url}; demo HR data from "
                    f"{demo_job.demo_data_dir()}; state in {directory}"
                    + ("" if state else " (removed afterwards)")
                )
            )
            out.print(
                Text(
                    f"Authenticating with OAuth2 client credentials (private_key_jwt) as "
                    f"{client.client_id!r} at {box.token_url}, with a key pair generated for "
                    "this run"
                )
            )
            reports = asyncio.run(demo_job.run_demo(box, client, directory, days))
        first, second = reports
        out.rule(f"Run 1: {first.as_of} (joiners, rights, and deliberately bad rows)")
        render_report(out, first)
        out.rule(f"Run 2: {second.as_of} (end dates of December take effect)")
        render_report(out, second, details=False)
        failed = any(r.failures or r.safety_stopped for r in reports)
        out.print(
            "The rejected rows are deliberate: they show how bad HR input is reported. "
            "What a rejected row touches is held (left as last pushed), never cut off. "
            "So is the correlation case: two people in the demo data share an e-mail "
            "address, and an account is never handed to someone without proof that it is "
            "theirs (README, 'How matching decides').",
            highlight=False,
        )
        raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)

    guarded(action)


def sandbox(
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free one).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    key_dir: Annotated[
        Path | None,
        typer.Option(
            "--key-dir",
            help="Write the demo client's private key and secret here "
            "[default: a temporary directory, removed on exit].",
            show_default=False,
        ),
    ] = None,
    token_lifetime: Annotated[
        int, typer.Option("--token-lifetime", min=1, help="Lifetime of issued tokens, seconds.")
    ] = 3600,
) -> None:
    """Run the local ACM/IDM-style identity provider (SCIM + OAuth2 token endpoint)."""
    from connector import demo as demo_job
    from connector.sandbox.oauth import SandboxConfig, generate_demo_client
    from connector.sandbox.server import serve_foreground

    if not 0 <= port <= 65535:
        raise fail(f"--port: {port} is not a TCP port (0 to 65535)")

    def action() -> None:
        with demo_job.state_directory(key_dir, "--key-dir") as directory:
            client = generate_demo_client(directory)
            config = SandboxConfig(
                clients=(client.sandbox_client(),), token_lifetime_seconds=token_lifetime
            )
            try:
                serve_foreground(
                    host, port, config, lambda box: _announce_sandbox(box, client, config)
                )
            except OSError as exc:
                raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    guarded(action)


def _announce_sandbox(box: RunningSandbox, client: DemoClient, config: SandboxConfig) -> None:
    """Print where the sandbox answers and the demo client's (throwaway) credentials."""
    out = output.out
    out.rule("scim-connector sandbox")
    lines = [
        f"SCIM base URL    {box.base_url}",
        "                 RFC 7643 User/Group + enterprise + ACM/IDM extension; data in memory",
        f"token endpoint   {box.token_url}",
        f"                 client credentials; opaque tokens, {config.token_lifetime_seconds} s",
        f"metadata         {box.metadata_url}",
        "",
        f"demo client      {client.client_id}",
        f"  private_key_jwt       private key {client.private_key_file} "
        f"(RS256, kid {client.key_id})",
        f"  client_secret_basic   secret {client.secret}",
        f"  client_secret_post    (same secret, also in {client.secret_file})",
        "",
        "These are the sandbox's own throwaway demo credentials, made for this run only;",
        "they are not production secrets. A [target.auth] section using them:",
        "",
        "[target]",
        f"base_url = {json.dumps(box.base_url)}",
        "",
        "[target.auth]",
        'method = "private_key_jwt"',
        f"token_url = {json.dumps(box.token_url)}",
        f"client_id = {json.dumps(client.client_id)}",
        f"private_key_file = {json.dumps(str(client.private_key_file))}",
        "",
        "Press Ctrl-C to stop.",
    ]
    for line in lines:
        out.print(Text(line))
    sys.stdout.flush()


def serve(config: ServeConfigOption = None) -> None:
    """Run as a service: HR webhook, scheduled syncs, /healthz, /readyz and /metrics."""
    from connector.service.server import (
        check_organisations_startup,
        check_startup,
        configure_service_logging,
        organisations_lock,
        run_organisations,
        run_service,
        service_lock,
    )

    def one(path: Path) -> None:
        settings = load_config(path)
        with service_lock(settings):  # held until the service ends; a second one exits 2
            webhook_secret = check_startup(settings)
            configure_service_logging(settings)
            jobs.warn_loose_state_files(settings)
            raise typer.Exit(run_service(settings, webhook_secret))

    def several(folder: Path) -> None:
        from connector.service.organisations import load_organisations

        organisations = load_organisations(folder)
        with organisations_lock(organisations):
            startup = check_organisations_startup(organisations)
            configure_service_logging(organisations[0].settings)
            _warn_at_start(organisations, startup)
            raise typer.Exit(run_organisations(organisations, startup))

    def action() -> None:
        path = config or config_path_from_env()
        if path.is_dir():
            several(path)
        else:
            one(path)

    guarded(action)


def _warn_at_start(organisations: list[Organisation], startup: OrganisationsStartup) -> None:
    """What `serve` with several organisations says at start, before it listens."""
    log = structlog.get_logger(__name__)
    for organisation in organisations:
        with structlog.contextvars.bound_contextvars(organisation=organisation.name):
            jobs.warn_loose_state_files(organisation.settings)
    for pair in startup.shared_webhook_secrets:
        log.warning(
            "service.shared_webhook_secret",
            organisations=list(pair),
            risk="each one's HR system can sign the other's events: give each its own",
        )
    for pair in startup.shared_state_secrets:
        log.warning(
            "service.shared_state_secret",
            organisations=list(pair),
            risk="their people's pseudonyms can be linked across them: give each its own",
        )
