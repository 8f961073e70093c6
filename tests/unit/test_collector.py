"""The garbage collector around jobs: big builds frozen for the job, small ones not, and what a
job froze freed between the jobs of a long-lived process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from connector.collector import FREEZE_FROM_OBJECTS, building, collect_after_job, job_memory


class Node:
    """An object the collector tracks, to make reference cycles of."""

    def __init__(self) -> None:
        self.other: Node | None = None


def garbage_cycle() -> weakref.ref[Node]:
    """Two objects referring to each other and to nothing else: only the collector frees them."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


BIG = 2 * FREEZE_FROM_OBJECTS  # well above the threshold


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    collect_after_job()
    yield
    gc.unfreeze()
    gc.enable()
    collect_after_job()


def test_a_small_build_is_not_frozen_and_the_collector_runs_again_after_it() -> None:
    with job_memory():
        with building():
            assert not gc.isenabled()
            built = [Node() for _ in range(100)]
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0
    assert len(built) == 100
    dropped = garbage_cycle()  # a job's garbage: freed by the full collection after it
    collections = full_collections()
    assert collect_after_job() >= 2
    assert full_collections() == collections + 1 and dropped() is None


def test_a_big_build_is_frozen_until_the_job_ends() -> None:
    with job_memory():
        with building():
            built = [Node() for _ in range(BIG)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= BIG
        with building():  # a second, small build in the same job changes nothing
            [Node() for _ in range(10)]
        assert gc.get_freeze_count() >= BIG
    assert gc.get_freeze_count() == 0
    assert len(built) == BIG


def test_a_build_inside_a_build_leaves_the_decision_to_the_outer_one() -> None:
    with job_memory():
        with building():
            with building():
                built = [Node() for _ in range(BIG)]
            assert not gc.isenabled()
            assert gc.get_freeze_count() == 0
        assert gc.isenabled()
        assert gc.get_freeze_count() >= BIG
    assert len(built) == BIG


def test_garbage_frozen_with_big_builds_is_freed_between_jobs() -> None:
    dropped = []
    for _ in range(3):  # job after job, as `serve` runs them
        with job_memory():
            dropped.append(garbage_cycle())  # garbage the collector has not seen yet
            with building():
                built = [Node() for _ in range(BIG)]
            del built
    assert all(ref() is not None for ref in dropped)  # frozen with the builds: kept so far
    collections = full_collections()
    assert collect_after_job() >= 2 * len(dropped)
    assert full_collections() == collections + 1
    assert all(ref() is None for ref in dropped)
