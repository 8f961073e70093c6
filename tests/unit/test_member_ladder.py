"""The member-removal ladder: the forms a removal is sent in, the order they are tried in, what
counts as a refusal, and what a group read back says was done."""

from __future__ import annotations

import pytest

from connector.apply.ladder import Effect, effect, is_refusal, removal_rungs
from connector.errors import TargetError
from connector.target import members
from connector.target.errors import (
    Conflict,
    InvalidResponse,
    NotFound,
    Rejected,
    TargetUnavailable,
)
from connector.target.members import (
    add_operations,
    member_ids_in,
    patch_body,
    removal_operations,
)
from connector.target.profile import MemberRemoval

FILTER, VALUE_FILTER, VALUE_LIST, REPLACE = MemberRemoval

# --- the forms ------------------------------------------------------------------------------------


def test_adds_are_one_add_operation_of_their_own() -> None:
    assert add_operations(["a", "b"]) == [
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}
    ]
    assert add_operations([]) == []


def test_filter_form_names_every_member_in_one_or_filter() -> None:
    assert removal_operations(FILTER, ["a", "b"]) == [
        {"op": "remove", "path": 'members[value eq "a" or value eq "b"]'}
    ]


def test_value_filter_form_is_one_filtered_remove_per_member() -> None:
    assert removal_operations(VALUE_FILTER, ["a", "b"]) == [
        {"op": "remove", "path": 'members[value eq "a"]'},
        {"op": "remove", "path": 'members[value eq "b"]'},
    ]


def test_value_list_form_is_a_remove_of_members_with_the_members_as_value() -> None:
    assert removal_operations(VALUE_LIST, ["a", "b"]) == [
        {"op": "remove", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}
    ]


def test_a_filter_quotes_ids_as_json_strings() -> None:
    (operation,) = removal_operations(VALUE_FILTER, ['a"b'])
    assert operation["path"] == r'members[value eq "a\"b"]'


def test_more_members_than_one_operation_takes_are_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(members, "MAX_MEMBERS_PER_REMOVE", 2)
    assert [len(op["value"]) for op in removal_operations(VALUE_LIST, list("abcde"))] == [2, 2, 1]
    paths = [op["path"] for op in removal_operations(FILTER, list("abc"))]
    assert [path.count("value eq") for path in paths] == [2, 1]


def test_replace_is_no_patch_operation() -> None:
    with pytest.raises(ValueError, match="PUT"):
        removal_operations(REPLACE, ["a"])


def test_a_patch_body_is_a_patchop_message() -> None:
    assert patch_body(add_operations(["a"]))["schemas"] == [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ]


def test_an_answer_tells_its_members_only_when_it_lists_them() -> None:
    assert member_ids_in({"id": "g", "members": [{"value": "a"}, {"value": "b"}]}) == {"a", "b"}
    assert member_ids_in({"id": "g", "members": []}) == frozenset()
    assert member_ids_in({"id": "g"}) is None  # a read must tell
    assert member_ids_in(None) is None  # 204
    assert member_ids_in({"members": [{"display": "no value"}, "junk"]}) == frozenset()


# --- the order they are tried in ------------------------------------------------------------------


def test_the_ladder_goes_down_from_where_the_target_was_left() -> None:
    assert removal_rungs(FILTER, 2, patch=True, replace=True) == [
        FILTER,
        VALUE_FILTER,
        VALUE_LIST,
        REPLACE,
    ]
    assert removal_rungs(VALUE_LIST, 2, patch=True, replace=True) == [VALUE_LIST, REPLACE]


def test_for_one_member_the_or_filter_and_the_per_member_filter_are_sent_once() -> None:
    assert removal_rungs(FILTER, 1, patch=True, replace=True) == [FILTER, VALUE_LIST, REPLACE]
    assert removal_rungs(VALUE_FILTER, 1, patch=True, replace=True) == [
        VALUE_FILTER,
        VALUE_LIST,
        REPLACE,
    ]


def test_a_target_that_drops_members_sent_by_put_never_gets_the_put() -> None:
    assert removal_rungs(FILTER, 2, patch=True, replace=False) == [
        FILTER,
        VALUE_FILTER,
        VALUE_LIST,
    ]


def test_a_target_left_at_the_put_that_drops_members_starts_from_the_top_again() -> None:
    assert removal_rungs(REPLACE, 2, patch=True, replace=False) == [
        FILTER,
        VALUE_FILTER,
        VALUE_LIST,
    ]


def test_without_patch_only_the_put_is_left() -> None:
    assert removal_rungs(FILTER, 3, patch=False, replace=True) == [REPLACE]
    assert removal_rungs(FILTER, 3, patch=False, replace=False) == []


# --- what counts as a refusal ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 405, 501])
def test_a_refused_form_is_a_refusal(status: int) -> None:
    assert is_refusal(Rejected("patch group members", "no", status=status))


def test_a_500_that_stays_after_retries_is_a_refusal_of_that_form() -> None:
    assert is_refusal(TargetUnavailable("patch group members", "boom", status=500))


@pytest.mark.parametrize(
    "error",
    [
        NotFound("patch group members", "gone", status=404),
        Conflict("patch group members", "clash", status=409),
        Rejected("patch group members", "who are you", status=403),
        TargetUnavailable("patch group members", "busy", status=503),
        TargetUnavailable("patch group members", "ConnectError"),
        InvalidResponse("patch group members", "not JSON", status=200),
    ],
)
def test_other_failures_are_no_refusal_of_the_form(error: TargetError) -> None:
    assert not is_refusal(error)


# --- what was done --------------------------------------------------------------------------------


def test_the_effect_is_what_the_members_read_back_show() -> None:
    assert effect({"a", "c"}, add=["a"], remove=["b"]) == Effect()
    assert effect({"a", "c"}, add=["a"], remove=["b"]).complete
    assert effect({"c"}, add=["a"], remove=["c"]) == Effect(not_added=("a",), not_removed=("c",))
    assert not effect({"c"}, add=[], remove=["c"]).complete
