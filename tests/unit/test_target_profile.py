"""What the connector learns about a target is kept per target and reported once."""

from __future__ import annotations

from pathlib import Path

from connector.state import StateStore
from connector.target.profile import MemberRemoval, TargetProfile


def test_a_profile_is_kept_per_target_across_store_openings(tmp_path: Path) -> None:
    learned = TargetProfile(
        member_removal=MemberRemoval.VALUE_LIST,
        not_kept=frozenset({"displayName"}),
        user_extensions=frozenset(),
    )
    store = StateStore.open(tmp_path / "state.db")
    store.save_target_profile("https://idp.example/scim/v2", learned)
    store.close()
    again = StateStore.open(tmp_path / "state.db")
    assert again.target_profile("https://idp.example/scim/v2") == learned
    assert again.target_profile("https://other.example/scim/v2") == TargetProfile()


def test_an_unreadable_profile_is_an_empty_one() -> None:
    assert TargetProfile.from_json("{not json") == TargetProfile()
    assert TargetProfile.from_json('{"member_removal": "telepathy"}') == TargetProfile()
    assert TargetProfile.from_json(None) == TargetProfile()


def test_a_fact_is_news_only_the_first_time_it_is_learned() -> None:
    before = TargetProfile()
    after = TargetProfile(member_removal=MemberRemoval.VALUE_LIST, put_paths=frozenset({"x"}))
    assert after.news(before) == [
        "member removals go as 'value_list'",
        "PATCH of x is refused: written by PUT",
    ]
    assert after.news(after) == []


def test_a_check_adds_to_what_runs_learned_and_sets_the_removal_form() -> None:
    learned = TargetProfile(not_kept=frozenset({"emails"}), schemas='{"Resources": []}')
    checked = TargetProfile(
        member_removal=MemberRemoval.VALUE_LIST,
        not_kept=frozenset({"displayName"}),
        untrusted_filters=frozenset({"externalid"}),
    )
    merged = learned.merged(checked)
    assert merged.member_removal is MemberRemoval.VALUE_LIST
    assert merged.not_kept == {"emails", "displayName"}
    assert merged.untrusted_filters == {"externalid"}
    assert merged.schemas == learned.schemas
