"""How `--help` reads: the Command and Group classes every command and the app use."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from typer._click import core as click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def _readable(params: list[click.Parameter]) -> list[click.Parameter]:
    """Parameters as `--help` should show them: a flag with no `<bool>` type, an argument
    named in capitals (`RUN_ID`)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
    return params


def _literal_help(params: list[click.Parameter]) -> None:
    """Help texts print as written: `[default: ...]` is text, not Rich markup."""
    for param in params:
        text = getattr(param, "help", None)
        if isinstance(param, TyperOption | TyperArgument) and text:
            param.help = escape(text)


class Command(TyperCommand):
    """A command whose `--help` reads cleanly (see `_readable`, `_literal_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self.params)
        if self.help:
            self.help = escape(self.help)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The parameters, `--help` included, made readable."""
        return _readable(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        """`[OPTIONS] RUN_ID`, not `[OPTIONS] {run_id}`."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    """The command group, its own options (`--version`, `--help`) made readable."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The parameters, `--help` included, made readable."""
        return _readable(super().get_params(ctx))
