"""`[lifecycle]` and `[externals]`: dates, leavers and external work relations."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import (
    Field,
)

from connector.config.values import (
    Section,
    TimeZoneName,
)


class LifecycleSettings(Section):
    """`[lifecycle]`: dates and what happens to people who end or disappear."""

    timezone: TimeZoneName = "Europe/Brussels"
    on_missing: Literal["deactivate", "ignore"] = "deactivate"
    delete_after_days: int | None = Field(default=None, ge=0)
    provision_days_before_start: int = Field(default=0, ge=0, le=365)

    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


class ExternalsSettings(Section):
    """`[externals]`: the policy for external (non-employee) work relations."""

    require_end_date: bool = True
    max_days: int = Field(default=365, ge=1)
