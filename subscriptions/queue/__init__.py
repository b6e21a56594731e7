"""The delivery queue: one package owning a delivery from its creation to its last attempt.

``transitions`` decides what each change does to a delivery (pure); ``lease`` is the one lease rule;
``scripts`` and the ``.lua`` files beside it apply transitions, claims and commits in Redis; ``delivery_queue``
is the facade the poller, the dispatcher and the API use; ``backlog`` reads what waits. Admission (caps and
rate limits) lives in ``subscriptions.admission``, which the queue holds and delegates to.
"""

from subscriptions.queue.delivery_queue import DeliveryQueue, Recorded
from subscriptions.queue.transitions import Outcome

__all__ = ["DeliveryQueue", "Outcome", "Recorded"]
