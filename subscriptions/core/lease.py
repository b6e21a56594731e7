"""How long a claim lasts: the one lease rule of the delivery queue.

A claimed delivery, and the slots it holds in its subscription's and account's caps, are leased for the
attempt's timeout and a margin. Within that time no other worker process takes it up; when it ends (the
claimer died, or is stuck) the delivery comes due again and its slots free. The claim, the admission slots,
the longer lease of a subscription with a longer timeout, and the extension of claims kept waiting all use it.
"""

LEASE_MARGIN_S = 10.0  # a claim outlives the attempt's timeout by this much before another process may retry


def lease_ms(timeout_s: float) -> int:
    """The lease of an attempt that may take ``timeout_s``: its timeout and the margin, in milliseconds."""
    return int((timeout_s + LEASE_MARGIN_S) * 1000)
