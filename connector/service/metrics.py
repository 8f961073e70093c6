"""The service's Prometheus metrics (`/metrics`), in a registry of their own per service."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from connector.plan import OpKind
from connector.report import Report

PREFIX = "scim_connector"
COMMANDS = ("sync", "event")
RUN_OUTCOMES = ("ok", "partial", "safety_stopped", "error")
OPERATION_OUTCOMES = ("done", "failed")
EVENT_OUTCOMES = ("ok", "partial", "safety_stopped", "unknown_employee", "error")
WEBHOOK_OUTCOMES = (
    "accepted",
    "duplicate",
    "conflict",
    "unauthorized",
    "bad_request",
    "too_large",
    "timeout",
    "busy",
    "disabled",
    "unavailable",
)


def run_outcome(report: Report) -> str:
    """How a finished run went: ok, partial (rows rejected or operations failed), safety_stopped."""
    if report.safety_stopped:
        return "safety_stopped"
    return "ok" if report.exit_code == 0 else "partial"


class GarbageCollections(Collector):
    """Python's garbage collections by generation, read from `gc.get_stats()` when scraped:
    generation 2 must keep counting, or cyclic garbage is never freed."""

    def collect(self) -> Iterator[Metric]:
        """The collections and the objects they freed, per generation."""
        collections = CounterMetricFamily(
            "python_gc_collections", "Collections of each generation.", labels=["generation"]
        )
        collected = CounterMetricFamily(
            "python_gc_objects_collected",
            "Unreachable objects freed by the collections of each generation.",
            labels=["generation"],
        )
        for generation, stats in enumerate(gc.get_stats()):
            collections.add_metric([str(generation)], stats["collections"])
            collected.add_metric([str(generation)], stats["collected"])
        yield collections
        yield collected


def add_process_metrics(registry: CollectorRegistry) -> None:
    """The process's own metrics: resident memory, open files, CPU, garbage collections."""
    ProcessCollector(registry=registry)
    registry.register(GarbageCollections())


class Metrics:
    """Counters and gauges of one service; `render()` gives the exposition text."""

    def __init__(self, clock: Callable[[], float], *, process: bool = True) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
        self.registry = CollectorRegistry(auto_describe=True)
        if process:  # once per process: not among each organisation's metrics
            add_process_metrics(self.registry)
        self._clock = clock
        self.runs = Counter(
            f"{PREFIX}_runs",
            "Syncs run by the service, by command (sync: scheduled full sync, event: resync for "
            "a webhook event) and outcome (ok, partial, safety_stopped, error).",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.operations = Counter(
            f"{PREFIX}_operations",
            "Operations applied to the target, by kind and outcome (done, failed).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.rejected_rows = Gauge(
            f"{PREFIX}_rejected_rows",
            "HR and grants rows rejected by the last run that read the HR input.",
            registry=self.registry,
        )
        self.retries = Counter(
            f"{PREFIX}_retries",
            "Requests to the target retried (429, 503, other 5xx, transport errors).",
            registry=self.registry,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time at which the last sync that ran (outcome ok or partial) ended.",
            registry=self.registry,
        )
        self.inbox_pending = Gauge(
            f"{PREFIX}_inbox_pending",
            "Webhook events stored and not yet processed (the queue depth).",
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            f"{PREFIX}_webhook_requests",
            "Requests to POST /hr/events, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            f"{PREFIX}_events_processed",
            "Webhook events processed, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.sync_running = Gauge(
            f"{PREFIX}_sync_running",
            "1 while the service runs a sync, else 0.",
            registry=self.registry,
        )
        self.sync_running_seconds = Gauge(
            f"{PREFIX}_sync_running_seconds",
            "How long the sync in progress has run, in seconds (0 when none runs).",
            registry=self.registry,
        )
        self.sync_overdue = Gauge(
            f"{PREFIX}_sync_overdue",
            "1 while the sync in progress runs far longer than usual (as /readyz says), else 0.",
            registry=self.registry,
        )
        for command in COMMANDS:
            for outcome in RUN_OUTCOMES:
                self.runs.labels(command, outcome)
        for kind in OpKind:
            for outcome in OPERATION_OUTCOMES:
                self.operations.labels(kind.value, outcome)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_requests.labels(outcome)
        for outcome in EVENT_OUTCOMES:
            self.events.labels(outcome)

    def record_run(self, command: str, report: Report) -> str:
        """Count a run that ended with a report; returns its outcome."""
        outcome = run_outcome(report)
        self.runs.labels(command, outcome).inc()
        if not report.dry_run and not report.safety_stopped:  # else nothing was done
            for kind, count in report.counts.items():
                self.operations.labels(kind, "done").inc(count)
            for failure in report.failures:
                self.operations.labels(failure.operation, "failed").inc()
        self.rejected_rows.set(report.input_rejected_rows)
        retries = report.extra.get("retries")
        if isinstance(retries, int) and retries > 0:
            self.retries.inc(retries)
        if outcome in ("ok", "partial"):
            self.last_success.set(self._clock())
        return outcome

    def record_error(self, command: str) -> None:
        """Count a run that could not be carried out."""
        self.runs.labels(command, "error").inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
