"""The delivery queue: one package owning a delivery from its creation to its last attempt.

What each change does to a delivery is decided in the pure core (``subscriptions.core.transitions``), with the
one lease rule (``subscriptions.core.lease``). Here, ``scripts`` and the ``.lua`` files beside it apply
transitions, claims and commits in Redis; ``delivery_queue`` is the facade the poller, the dispatcher and the API
use; ``backlog`` reads what waits. Admission (caps and rate limits) lives in ``subscriptions.store.admission``,
which the queue holds and delegates to.
"""

from subscriptions.core.transitions import Outcome
from subscriptions.store.queue.delivery_queue import DeliveryQueue, Recorded

__all__ = ["DeliveryQueue", "Outcome", "Recorded"]
