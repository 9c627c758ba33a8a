"""What one process counts for `/metrics` (Prometheus), on a registry of its own.

Each application (and each test's app) has its own `CollectorRegistry`, never the library's
global one. The counters and histograms here are this process's: Prometheus scrapes every
process and sums them (no multiprocess mode). What is global — the outbox's queue, dossier
builds, worker heartbeats — is read from the database at scrape time (petition.operations).
"""

from __future__ import annotations

import time
from email.message import EmailMessage
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class _Transport(Protocol):
    async def send(self, message: EmailMessage, *, kind: str) -> None: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.submissions = Counter(
            "petition_submissions",
            "Endorsement form submissions taken, by outcome (held: stored, held back by a sender limit; "
            "error: the request failed)",
            ["outcome"],
            registry=registry,
        )
        self.confirmations = Counter(
            "petition_confirmations", "Confirm buttons pressed, by outcome", ["outcome"], registry=registry
        )
        self.intake_group_size = Histogram(
            "petition_intake_group_size",
            "Submissions written together: in one statement on PostgreSQL, one transaction on SQLite",
            buckets=(1, 2, 5, 10, 20, 50, 100),
            registry=registry,
        )
        self.id_clashes = Counter(
            "petition_id_clashes",
            "Reserved ids that clashed with stored rows (the sequence moved back): dropped and reserved anew",
            ["table"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "petition_outbox_send_seconds",
            "Seconds one email took to hand to the relay, by result",
            ["result"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        # Read from the database when scraped: the same in every process.
        self.outbox_emails = Gauge(
            "petition_outbox_emails", "Emails in the outbox, by state", ["state"], registry=registry
        )
        self.outbox_oldest_queued = Gauge(
            "petition_outbox_oldest_queued_seconds", "Age of the oldest queued email (0: none)", registry=registry
        )
        self.dossier_builds = Gauge("petition_dossier_builds", "Dossier builds, by state", ["state"], registry=registry)
        self.worker_heartbeat_age = Gauge(
            "petition_worker_heartbeat_age_seconds",
            "Seconds since the freshest heartbeat of each kind of worker",
            ["worker"],
            registry=registry,
        )
        self.db_pool = Gauge(
            "petition_db_pool_connections",
            "This process's database connections (PostgreSQL)",
            ["state"],
            registry=registry,
        )

    def timed(self, transport: _Transport) -> _Transport:
        """`transport`, its sends observed in `petition_outbox_send_seconds`."""
        return TimedTransport(transport, self.send_seconds)


class TimedTransport:
    def __init__(self, transport: _Transport, histogram: Histogram) -> None:
        self.transport = transport
        self.histogram = histogram

    async def send(self, message: EmailMessage, *, kind: str) -> None:
        started = time.perf_counter()
        result = "error"
        try:
            await self.transport.send(message, kind=kind)
            result = "sent"
        finally:
            self.histogram.labels(result=result).observe(time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
