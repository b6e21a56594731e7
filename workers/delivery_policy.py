"""The relay's delivery settings, and what they make of each subscription's own: its retry schedule, its
timeout, and the limits its attempts are admitted within (their slots leased by the queue's one lease rule)."""

from dataclasses import dataclass

from subscriptions.core.lease import lease_ms
from subscriptions.core.models import SubscriptionRecord
from subscriptions.store.admission import Limits


@dataclass(frozen=True)
class DeliveryPolicy:
    """The relay's delivery settings; a subscription may set its own schedule, timeout and limits."""

    retry_schedule_s: tuple[float, ...]
    timeout_s: float
    max_in_flight: int = 512
    per_subscription: int = 32
    per_account: int = 128  # attempts under way for one account's subscriptions together, over every process
    connections_per_host: int = 64  # attempts under way to one receiver (origin) per process
    rate_per_s: float | None = None
    retry_after_max_s: float = 3600.0
    disable_after_s: float = 5 * 86_400.0
    claim_batch: int = 500
    idle_poll_s: float = 0.05  # how often an idle dispatcher looks for deliveries committed by other processes
    allow_private_targets: bool = False

    def schedule_s(self, sub: SubscriptionRecord) -> tuple[float, ...]:
        return tuple(sub.retry_schedule_s) if sub.retry_schedule_s is not None else self.retry_schedule_s

    def timeout_of(self, sub: SubscriptionRecord) -> float:
        return sub.timeout_s or self.timeout_s

    def limits(self, sub: SubscriptionRecord) -> Limits:
        return Limits(
            sub.account,
            sub.max_concurrency or self.per_subscription,
            sub.rate_limit_per_s or self.rate_per_s,
            account_concurrency=self.per_account,
            lease_ms=lease_ms(self.timeout_of(sub)),
        )
