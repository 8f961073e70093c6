"""The `check-target` job: probe the target, learn a profile from what was found, and (with
`--write-test`) keep that profile in the state store, as runs keep what they learn."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from connector.config import Settings
from connector.errors import ConnectorError
from connector.state import StateStore, sync_lock
from connector.target.check import Area, Finding, TargetCheck, Verdict, profile_from
from connector.target.checking import probe
from connector.target.connect import EventHooks, retry_policy, target_key
from connector.target.profile import TargetProfile


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """What `check-target` found, the profile learned from it, and whether that was saved."""

    check: TargetCheck
    profile: TargetProfile
    saved: bool

    def to_json(self) -> dict[str, Any]:
        """The `check-target --format json` object (see README)."""
        return {
            "command": "check-target",
            **self.check.to_json(),
            "profile": {
                key: sorted(value) if isinstance(value, frozenset) else value
                for key, value in self.profile.model_dump().items()
            },
            "profile_saved": self.saved,
            "errors": [],
            "exit_code": 0,
        }


async def check_target(
    settings: Settings, *, write_test: bool, event_hooks: EventHooks | None = None
) -> CheckedTarget:
    """Probe the target (`connector.target.checking.probe`); with `write_test`, keep the profile
    learned in the state store, as the target's profile (what runs learn about a target),
    unless no probe got an answer it could judge (`TargetCheck.answered`)."""
    check = await probe.check_target(
        settings, write_test=write_test, retry=retry_policy(settings), event_hooks=event_hooks
    )
    profile = profile_from(check)
    item = "target profile"
    learned = [
        Finding(Area.PROFILE, "learned", "-", fact, Verdict.INFO)
        for fact in profile.news(TargetProfile())
    ]
    if not write_test:
        row = Finding(Area.PROFILE, item, "-", "not saved (read-only check)", Verdict.SKIPPED)
        return CheckedTarget(_with(check, row, *learned), profile, saved=False)
    if not check.answered():
        why = "not saved: every probe failed or was refused, nothing was learned"
        row = Finding(Area.PROFILE, item, "-", why, Verdict.SKIPPED)
        return CheckedTarget(_with(check, row), profile, saved=False)
    try:
        save_target_profile(settings, profile)
    except ConnectorError as exc:
        row = Finding(Area.PROFILE, item, "-", f"not saved: {exc}", Verdict.FAILED)
        return CheckedTarget(_with(check, row, *learned), profile, saved=False)
    saved = f"saved to {settings.state.path.name} as this target's profile"
    row = Finding(Area.PROFILE, item, "-", saved, Verdict.OK)
    return CheckedTarget(_with(check, row, *learned), profile, saved=True)


def save_target_profile(settings: Settings, profile: TargetProfile) -> None:
    """Keep a target profile in the state store, under the configured base URL (never while
    a sync holds the store: LockedError)."""
    with sync_lock(settings.state.location):
        store = StateStore.open(settings.state.location)
        try:
            known = store.target_profile(target_key(settings))
            store.save_target_profile(target_key(settings), known.merged(profile))
        finally:
            store.close()


def _with(check: TargetCheck, *findings: Finding) -> TargetCheck:
    """The check with these findings added at the end."""
    return replace(check, findings=(*check.findings, *findings))
