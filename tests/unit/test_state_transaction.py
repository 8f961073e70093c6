"""StateStore.transaction is re-entrant: a nested one joins the outer; the outermost commits or
rolls back everything."""

from __future__ import annotations

import pytest

from connector.state import Location, StateStore


def journal_lines(path: Location) -> list[str]:
    store = StateStore.open(path)
    try:
        return [entry.kind for entry in store.history(run_id="r")]
    finally:
        store.close()


def test_a_nested_transaction_commits_with_the_outermost_only(state_location: Location) -> None:
    path = state_location
    store = StateStore.open(path)
    with store.transaction():
        store.journal("r", "outer", "note")
        with store.transaction():
            store.journal("r", "inner", "note")
        assert journal_lines(path) == []  # another connection sees nothing yet
    assert journal_lines(path) == ["outer", "inner"]
    store.close()


def test_an_error_in_a_nested_transaction_rolls_back_the_outer_one_too(
    state_location: Location,
) -> None:
    path = state_location
    store = StateStore.open(path)
    with pytest.raises(RuntimeError), store.transaction():
        store.journal("r", "outer", "note")
        with store.transaction():
            store.journal("r", "inner", "note")
            raise RuntimeError("boom")
    with store.transaction():
        store.journal("r", "after", "note")
    assert journal_lines(path) == ["after"]
    store.close()
