"""`Settings`, the whole configuration, with `[logging]` and `[report]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from connector.config.lifecycle import ExternalsSettings, LifecycleSettings
from connector.config.safety import SafetySettings
from connector.config.secret_sources import (
    MIN_STATE_SECRET_BYTES,
    generated_secret,
    long_enough,
    read_secret,
)
from connector.config.service import ServiceSettings
from connector.config.source import MappingSettings, SourceSettings
from connector.config.state import StateSettings
from connector.config.target import TargetSettings
from connector.config.values import (
    CONFIG_FILE,
    Section,
    lower,
)


class LoggingSettings(Section):
    """`[logging]`: structlog events on stderr."""

    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(lower)
    ] = "warning"
    format: Literal["auto", "console", "json"] = "auto"


class ReportSettings(Section):
    """`[report]`: what reports for people show."""

    # People's names beside their employee keys in text reports and in `--format json`
    # (`name`); off: keys and masked national numbers only.
    names: bool = True


class Settings(Section):
    """The whole configuration; build it with `load_config`."""

    source: SourceSettings
    target: TargetSettings
    mapping: MappingSettings = Field(default_factory=MappingSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    externals: ExternalsSettings = Field(default_factory=ExternalsSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    _config_file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _remember_file(self, info: ValidationInfo) -> Self:
        file = (info.context or {}).get(CONFIG_FILE)
        self._config_file = Path(file) if file is not None else None
        return self

    @property
    def config_file(self) -> Path | None:
        """The file these settings were loaded from (absolute), if any."""
        return self._config_file

    def state_secret(self) -> bytes:
        """The state store's secret: `state.secret_env`/`secret_file`, else generated beside it."""
        state = self.state
        given = read_secret(
            "state.secret_env", state.secret_env, "state.secret_file", state.secret_file
        )
        if given is None:
            return generated_secret(state.generated_secret_path)
        key = "state.secret_env" if state.secret_env is not None else "state.secret_file"
        return long_enough(key, given, MIN_STATE_SECRET_BYTES).encode()
