"""connector.target.bulk: encoding, batches within maxOperations and maxPayloadSize, outcomes."""

from __future__ import annotations

import itertools
import json

import pytest

from connector.target import bulk


def create(n: int, size: int = 0) -> bulk.BulkOperation[int]:
    """A POST of a user whose displayName pads the operation to about `size` bytes."""
    data = {"userName": f"user{n}@gent.be", "displayName": "x" * size}
    return bulk.operation(n, "POST", "/Users", data, f"u{n}")


def test_an_operation_is_encoded_compactly_as_it_goes_on_the_wire() -> None:
    op = bulk.operation("k", "PATCH", "/Users/42", bulk.patch_data([("active", False)]))
    assert json.loads(op.encoded) == {
        "method": "PATCH",
        "path": "/Users/42",
        "data": {
            "schemas": [bulk.PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    }
    assert b" " not in op.encoded and op.resource_id == "42" and op.bulk_id is None


def test_a_none_value_is_a_remove_and_non_ascii_is_counted_in_utf8_bytes() -> None:
    data = bulk.patch_data([("title", None), ("displayName", "Sofie Deprez-Vandenbroucke é")])
    assert data["Operations"][0] == {"op": "remove", "path": "title"}
    op = bulk.operation(1, "PATCH", "/Users/1", data)
    assert op.size == len(
        json.dumps(json.loads(op.encoded), ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert "é".encode() in op.encoded


def test_the_request_size_is_the_size_of_the_body_sent() -> None:
    ops = [create(n, size=n * 7) for n in range(5)]
    body = bulk.request_body(ops)
    assert bulk.request_size(ops) == len(body)
    parsed = json.loads(body)
    assert parsed["schemas"] == [bulk.BULK_REQUEST] and "failOnErrors" not in parsed
    assert [op["bulkId"] for op in parsed["Operations"]] == [f"u{n}" for n in range(5)]
    assert bulk.request_size([]) == len(bulk.request_body([]))


def test_batches_hold_at_most_max_operations_in_order() -> None:
    ops = [create(n) for n in range(25)]
    batches, too_large = bulk.batches(ops, max_operations=10, max_payload=1_000_000)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [op.key for b in batches for op in b] == list(range(25)) and too_large == []


@pytest.mark.parametrize("limit", [600, 1000, 2500, 4096])
def test_batches_stay_within_max_payload_size_and_are_filled_up_to_it(limit: int) -> None:
    ops = [create(n, size=(n * 37) % 200) for n in range(40)]
    batches, too_large = bulk.batches(ops, max_operations=1000, max_payload=limit)
    assert too_large == []
    assert all(len(bulk.request_body(b)) <= limit for b in batches)
    for batch, following in itertools.pairwise(batches):
        assert bulk.request_size([*batch, following[0]]) > limit
    assert [op.key for b in batches for op in b] == list(range(40))


def test_an_operation_too_large_for_any_request_is_set_apart() -> None:
    ops = [create(0), create(1, size=5000), create(2)]
    batches, too_large = bulk.batches(ops, max_operations=10, max_payload=1000)
    assert [[op.key for op in b] for b in batches] == [[0, 2]]
    assert [op.key for op in too_large] == [1]


def test_outcomes_are_matched_by_bulk_id_and_by_location_whatever_their_order() -> None:
    ops = [
        create(1),
        bulk.operation(2, "PATCH", "/Users/abc", bulk.patch_data([("active", True)])),
        create(3),
    ]
    response = {
        "Operations": [
            {"method": "PATCH", "location": "https://t/v2/Users/abc", "status": "200"},
            {
                "method": "POST",
                "bulkId": "u3",
                "status": "409",
                "response": {"scimType": "uniqueness", "detail": "userName is taken"},
            },
            {
                "method": "POST",
                "bulkId": "u1",
                "location": "https://t/v2/Users/id-1",
                "status": 201,
            },
        ]
    }
    first, second, third = bulk.outcomes(ops, response)
    assert first == bulk.Outcome(201, "id-1")
    assert second is not None and second.ok and second.resource_id == "abc"
    assert third == bulk.Outcome(409, None, "userName is taken", "uniqueness")
    assert not third.ok


def test_an_operation_the_response_does_not_list_has_an_unknown_outcome() -> None:
    ops = [create(1), create(2)]
    response = {"Operations": [{"method": "POST", "bulkId": "u2", "status": {"code": "201"}}]}
    assert bulk.outcomes(ops, response) == [None, bulk.Outcome(201)]
    assert bulk.outcomes(ops, {"detail": "not a BulkResponse"}) == [None, None]
    assert bulk.outcomes(ops, None) == [None, None]
    garbled = {"Operations": [{"bulkId": "u1", "status": "created"}, "nonsense"]}
    assert bulk.outcomes(ops, garbled) == [None, None]


def test_a_response_without_bulk_ids_or_locations_is_read_in_request_order() -> None:
    ops = [
        bulk.operation(1, "PATCH", "/Users/a", bulk.patch_data([("active", True)])),
        bulk.operation(2, "PATCH", "/Users/b", bulk.patch_data([("active", True)])),
    ]
    response = {"Operations": [{"method": "PATCH", "status": "204"}, {"status": "404"}]}
    assert bulk.outcomes(ops, response) == [bulk.Outcome(204), bulk.Outcome(404)]
