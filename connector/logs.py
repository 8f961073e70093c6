"""Logging: structlog events on stderr, as a pipeline of processors.

The last processor before rendering masks anything that looks like a national number, as a
line of defence behind the rule that code never logs one in the first place.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from connector.nationalid import mask_national_ids


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_national_ids(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def mask_processor(
    _logger: Any, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Mask national-number-like digit runs in every value of the event."""
    return {key: _mask(value) for key, value in event_dict.items()}


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time (tests and runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "warning", fmt: str = "auto") -> None:
    """Send structlog events to stderr: JSON, or console rendering on a terminal."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
