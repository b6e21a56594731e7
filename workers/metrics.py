"""Prometheus metrics of one process. They carry no payloads, secrets or tokens: only names and counts."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from subscriptions.core.times import ms
from subscriptions.store.poll_ages import read_last_successful_polls
from subscriptions.store.polls import Polls
from subscriptions.store.queue.backlog import read_backlog

log = logging.getLogger(__name__)


@dataclass
class Metrics:
    """The metrics one process exposes at ``/metrics`` (each process its own registry)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.polls = Counter(
            "relay_polls", "Polls of a Brightpearl resource, by outcome", ["resource", "outcome"], registry=r
        )
        self.brightpearl_requests = Counter(
            "relay_brightpearl_requests", "Requests made to Brightpearl", ["resource"], registry=r
        )
        self.brightpearl_throttles = Counter(
            "relay_brightpearl_throttles", "Throttled answers from Brightpearl", registry=r
        )
        self.brightpearl_errors = Counter(
            "relay_brightpearl_errors",
            "Polls of a resource that Brightpearl's answer failed, by lane and kind (html, timeout, auth...)",
            ["resource", "kind"],
            registry=r,
        )
        self.brightpearl_dropped_ids = Counter(
            "relay_brightpearl_dropped_ids",
            "Ids Brightpearl refused alone (product-availability's 400), dropped so the rest was read",
            ["resource"],
            registry=r,
        )
        self.hint_reads = Counter(
            "relay_hint_reads", "Targeted reads of the ids hints named, by resource", ["resource"], registry=r
        )
        self.hint_misses = Counter(
            "relay_hint_misses",
            "Changes a poll found that no hint announced (judged a grace after the poll), by resource",
            ["resource"],
            registry=r,
        )
        self.oauth_reauthorizations = Counter(
            "relay_oauth_reauthorization_required",
            "OAuth accounts that became reauthorization_required (a refresh refused with invalid_grant)",
            registry=r,
        )
        self.hint_degradations = Counter(
            "relay_hint_degradations",
            "Times a resource's hints were judged degraded (its asked poll interval applies again), by resource",
            ["resource"],
            registry=r,
        )
        self.events = Counter("relay_events", "Events detected and stored, by type", ["type"], registry=r)
        self.attempts = Counter("relay_delivery_attempts", "Delivery attempts, by outcome", ["outcome"], registry=r)
        self.attempt_seconds = Histogram(
            "relay_delivery_attempt_seconds",
            "Duration of one delivery attempt",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
        )
        self.deliveries_finished = Counter(
            "relay_deliveries_finished", "Deliveries reaching a final state", ["status"], registry=r
        )
        self.reconciliation_corrections = Counter(
            "relay_stock_reconciliation_corrections",
            "Stock changes the reconciliation sweep caught (the incremental path missed them)",
            registry=r,
        )
        self.status_sweep_corrections = Counter(
            "relay_status_sweep_corrections",
            "Order status changes the status sweep caught (they moved neither updatedOn nor version, or the orders "
            "poll had not read them yet)",
            registry=r,
        )
        self.hints_received = Counter(
            "relay_hints_received",
            "Hints (Brightpearl's native webhooks) received, by outcome: accepted, ignored (nothing watched), forged "
            "(unknown account, hints off or wrong token), too_large, malformed, limited (the account's minute spent)",
            ["outcome"],
            registry=r,
        )
        self.in_flight = Gauge("relay_deliveries_in_flight", "Delivery attempts under way in this process", registry=r)
        # The backlog is shared by every process: read from Redis at scrape time (refresh_backlog), not counted.
        self.deliveries_waiting = Gauge(
            "relay_deliveries_waiting", "Deliveries waiting for their first attempt (status pending)", registry=r
        )
        self.deliveries_retrying = Gauge(
            "relay_deliveries_retrying", "Deliveries waiting for a retry (status retrying)", registry=r
        )
        self.oldest_waiting_age = Gauge(
            "relay_oldest_waiting_delivery_age_seconds",
            "Age of the oldest delivery waiting for its first attempt; 0 when none waits",
            registry=r,
        )
        # The scheduler's backlog, shared too: polls due and not yet claimed by any worker. Steadily above zero, the
        # workers cannot keep the intervals asked (docs/operations.md, "How many accounts a worker carries").
        self.polls_due = Gauge(
            "relay_polls_due",
            "Account polls due now that no worker has claimed yet (the scheduler's backlog)",
            registry=r,
        )
        self.oldest_due_poll_age = Gauge(
            "relay_oldest_due_poll_age_seconds",
            "How long the oldest poll due and not yet claimed has waited; 0 when none waits",
            registry=r,
        )
        self.last_successful_poll = Gauge(
            "relay_last_successful_poll_timestamp_seconds",
            "When each account's last successful poll began, Unix seconds (its registration until it has one)",
            ["account"],
            registry=r,
        )
        self.retention_removed = Counter(
            "relay_retention_removed",
            "Records removed by the retention sweep, by kind (delivery, event, dangling index entry)",
            ["kind"],
            registry=r,
        )

    async def refresh_backlog(self, redis: "Redis", now: datetime) -> bool:
        """Read the backlog gauges (deliveries waiting, polls due) from Redis; when Redis does not answer, keep
        the last values (a scrape must still answer) and return False."""
        try:
            backlog = await read_backlog(redis, now)
            polls = await read_last_successful_polls(redis)
            due_polls = await Polls(redis).backlog(now_ms=ms(now))
        except (RedisError, OSError) as error:
            log.warning("metrics: cannot read the delivery backlog from Redis: %s", error)
            return False
        self.deliveries_waiting.set(backlog.waiting)
        self.deliveries_retrying.set(backlog.retrying)
        self.oldest_waiting_age.set(backlog.oldest_waiting_age_s)
        self.polls_due.set(due_polls.due)
        self.oldest_due_poll_age.set(due_polls.oldest_due_age_s)
        self.last_successful_poll.clear()  # accounts removed since the last scrape leave no series behind
        for code, at_s in polls.items():
            self.last_successful_poll.labels(code).set(at_s)
        return True

    def render(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
