"""Python's cyclic garbage collector around a job: paused while big object graphs are built,
and, in a process that runs job after job (`serve`), given back what a job froze.

Reading and mapping 150,000 people makes millions of objects that all live until the end of the
run; every collection would walk them again (measured: `validate` took 29.4 s with collections
and 16.2 s without). So the collector is paused while they are built (`building`), and a big
build is then frozen (`gc.freeze`: set aside, in constant time) until the job ends
(`job_memory`); on a plan of 60,000 people that saves 1.2 s of 7.5 s CPU.

Freezing is process-wide: it also sets aside the other threads' objects (the web server's, in
`serve`) and the garbage cycles not yet collected, and it resets the collector's counts. A
process that freezes job after job therefore never runs a full collection, and the cycles
frozen with each job (closed sockets and transports of its event loop and HTTP client, ...)
are never freed: `serve` grew by 18-22 KB per processed webhook event. Hence: small builds,
whose passes cost less than a full collection, are not frozen at all, and a long-lived process
calls `collect_after_job` after each job, which runs one full collection once the job's objects
are gone (it then walks only what the process keeps: about 30 ms for 100,000 objects, against a
job that talks to the target). Waiting for the collector's own counts is not enough either:
they call a full collection only once the survivors grow by a quarter of what the process
keeps, so the more a process imports, the more garbage waits in between (measured: 3.7 MB over
440 events), and each job's reference cycles (closed sockets, transports, retry state) wait.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# A build is frozen from this many new objects the collector tracks (about 3,500 people): below
# it, the collector's passes over the build cost less than a full collection after the job.
FREEZE_FROM_OBJECTS = 50_000


@contextmanager
def building() -> Iterator[None]:
    """Pause the cyclic garbage collector while a big, long-lived object graph is built; freeze
    what was built when it is big (until the job ends: `job_memory`). Reference counting still
    frees everything as usual."""
    if not gc.isenabled():
        yield
        return
    before = gc.get_count()[0]
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] - before >= FREEZE_FROM_OBJECTS:
            gc.freeze()
        gc.enable()


@contextmanager
def job_memory() -> Iterator[None]:
    """One job's scope for `building`: what it froze goes back to the collector at the end."""
    try:
        yield
    finally:
        gc.unfreeze()


def collect_after_job() -> int:
    """After a job of a long-lived process: one full collection, which frees the job's
    reference cycles and what it froze; the unreachable objects found."""
    return gc.collect()
