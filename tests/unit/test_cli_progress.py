"""`sync` at a terminal shows how far the apply phase got, on stderr; never in JSON or a pipe."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from connector import jobs
from connector.cli import app, output
from connector.cli.output import Format, progress_bar
from connector.report import Report


def test_at_a_terminal_the_bar_counts_the_operations_done(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(output, "err", Console(file=screen, force_terminal=True, width=80))
    with progress_bar(Format.TEXT) as progress:
        assert progress is not None
        progress(3, 10)
        progress(10, 10)
    assert "10/10" in screen.getvalue()


@pytest.mark.parametrize("fmt", [Format.JSON, Format.TEXT])
def test_no_bar_for_json_or_a_pipe(monkeypatch: pytest.MonkeyPatch, fmt: Format) -> None:
    monkeypatch.setattr(output, "err", Console(file=io.StringIO(), force_terminal=False))
    with progress_bar(fmt) as progress:
        assert progress is None


def test_sync_hands_its_progress_bar_to_the_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    async def sync(*args: Any, **kwargs: Any) -> Report:
        seen.update(kwargs)
        return Report(run_id=args[1], command="sync", as_of=args[2], dry_run=False)

    monkeypatch.setattr(jobs, "sync", sync)
    monkeypatch.setattr(output, "err", Console(file=io.StringIO(), force_terminal=True))
    config = tmp_path / "connector.toml"
    (tmp_path / "hr.csv").write_text("employee_id\n", encoding="utf-8")
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["sync", "--config", str(config), "--as-of", "2026-12-01"])
    assert result.exit_code == 0, result.output
    assert callable(seen["progress"])
