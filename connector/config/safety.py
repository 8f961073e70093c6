"""`[safety]`: how much one run may change before it stops."""

from __future__ import annotations

import datetime as dt

from pydantic import (
    Field,
)

from connector.config.values import (
    CountLimit,
    PercentLimit,
    Section,
)


class SafetySettings(Section):
    """`[safety]`: how much one run may take away, or hand out, before it stops (false: no
    such limit). Each percentage applies in total and per organisation."""

    max_deactivations_count: CountLimit = 500
    max_deactivations_percent: PercentLimit = 20.0
    max_withdrawals_count: CountLimit = 500
    max_withdrawals_percent: PercentLimit = 20.0
    max_activations_count: CountLimit = 100
    max_activations_percent: PercentLimit = 10.0
    max_creates_count: CountLimit = 500
    max_creates_percent: PercentLimit = 20.0
    max_grants_count: CountLimit = 500
    max_grants_percent: PercentLimit = 20.0
    percent_applies_from: int = Field(default=10, ge=0)
    min_holders: int = Field(default=2, ge=0)
    alert_after_failed_runs: int = Field(default=3, ge=1)
    approval_valid_hours: int = Field(default=24, ge=1)

    @property
    def approval_valid_for(self) -> dt.timedelta:
        """How long an approval of a stopped run may be used."""
        return dt.timedelta(hours=self.approval_valid_hours)
