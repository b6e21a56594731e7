"""An account's native webhook subscriptions (``integration-service/webhook``, API.md 7.1): what one holds, how
Brightpearl renders it, and the book that numbers, finds and removes them. In memory and synchronous; the routes
are :mod:`relay.sandbox.webhook_api`'s, the calls :mod:`relay.sandbox.hints`'."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from relay.sandbox.webhook_events import covers

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]
FIRST_WEBHOOK_ID = 121  # as the recordings number them; ids are the account's own


@dataclass(frozen=True, slots=True)
class Webhook:
    """One subscription: where and how to call, for which events."""

    id: int
    subscribe_to: str
    http_method: HttpMethod
    uri_template: str
    body_template: str | None = None
    content_type: str | None = None
    id_set_accepted: bool = False
    quality_of_service: int = 0

    @property
    def carries_body(self) -> bool:
        return self.http_method in ("POST", "PUT")

    def describe(self) -> dict[str, Any]:
        """The webhook as ``GET webhook`` answers it, keys in the recorded order, unset ones left out."""
        described: dict[str, Any] = {
            "id": self.id,
            "subscribeTo": self.subscribe_to,
            "httpMethod": self.http_method,
            "uriTemplate": self.uri_template,
        }
        if self.body_template is not None:
            described["bodyTemplate"] = self.body_template
        if self.content_type is not None:
            described["contentType"] = self.content_type
        described["idSetAccepted"] = self.id_set_accepted
        described["qualityOfService"] = self.quality_of_service
        return described


class WebhookBook:
    """An account's webhooks by id, numbered from :data:`FIRST_WEBHOOK_ID`."""

    def __init__(self, first_id: int = FIRST_WEBHOOK_ID) -> None:
        self.webhooks: dict[int, Webhook] = {}
        self._next_id = first_id

    def add(self, **fields: Any) -> Webhook:
        webhook = Webhook(id=self._next_id, **fields)
        self.webhooks[webhook.id] = webhook
        self._next_id += 1
        return webhook

    def find(self, ids: Iterable[int]) -> list[Webhook]:
        """The webhooks among ``ids`` that exist, in id order."""
        return [self.webhooks[i] for i in sorted(set(ids)) if i in self.webhooks]

    def remove(self, webhook_id: int) -> bool:
        return self.webhooks.pop(webhook_id, None) is not None

    def covering(self, event: str) -> list[Webhook]:
        """The webhooks that hear ``event``, in id order."""
        return [hook for hook in self.webhooks.values() if covers(hook.subscribe_to, event)]
