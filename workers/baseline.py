"""What registering an account asks of Brightpearl: are the credentials good, and where does it stand now.

The baseline is taken from Brightpearl's own data, not from the relay's clock, so a clock that differs from
Brightpearl's cannot make the relay miss or invent changes: nothing that exists at registration is sent.
"""

from collections.abc import Sequence

from workers.brightpearl.client import BrightpearlClient
from workers.orders import orders_baseline

ORDER_STATUS = "order-service/order-status"


async def check_credentials(client: BrightpearlClient) -> None:
    """One cheap authenticated read; raises :class:`~workers.brightpearl.errors.BrightpearlError` if refused."""
    await client.get(ORDER_STATUS)


async def take_baseline(client: BrightpearlClient, resources: Sequence[str]) -> dict[str, str]:
    """The starting cursor (JSON) of each watched resource that has a poller."""
    cursors: dict[str, str] = {}
    if "orders" in resources:
        cursors["orders"] = (await orders_baseline(client)).to_json()
    return cursors
