"""Our own signed webhook (Standard Webhooks): JSON derived from the Alert, for partners' systems."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from broadcast.channels.base import Channel, ChannelError, Post, Receipt, http_error, post_whole

if TYPE_CHECKING:
    import httpx

    from broadcast.alert import Alert


class Webhook(Channel):
    kind = "webhook"
    variant = "body"
    limit = 100_000
    concurrency = 8
    idempotent = True  # receivers dedupe on webhook-id, which is our stable delivery key
    secret_keys = ("signing_secret",)
    engagement_note: ClassVar[str] = "our signed webhooks are one-way: the receiver reports nothing back"

    def prepare(self, alert: Alert, language: str) -> Post:
        post = super().prepare(alert, language)
        info = alert.info(language)
        payload = {
            "type": f"alert.{alert.msg_type.lower()}",
            "identifier": alert.identifier,
            "sender": alert.sender,
            "sent": alert.sent,
            "status": alert.status,
            "msg_type": alert.msg_type,
            "references": list(alert.references),
            "incident": alert.incidents,
            "language": language,
            "headline": info.headline,
            "description": info.description,
            "instruction": info.instruction,
            "event": info.event,
            "urgency": info.urgency,
            "severity": info.severity,
            "certainty": info.certainty,
            "expires": info.expires,
            "areas": [{"desc": area.desc, "polygons": list(area.polygons), "geocodes": [list(g) for g in area.geocodes]}
                      for area in info.areas],  # dataclasses.asdict's result, at a tenth of its cost
            "web": info.web,
            "cap": f"{info.web}/cap/{alert.identifier}.xml",
        }
        return replace(post, extra={"payload": payload})

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        from standardwebhooks import Webhook as Signer

        body = json.dumps({**post.extra["payload"], "event_id": key}, ensure_ascii=False, separators=(",", ":"))
        now = datetime.now(UTC)
        signature = Signer(self.secret("signing_secret")).sign(key, now, body)
        answer = await post_whole(client, self.setting("url"), body.encode("utf-8"), {
            "content-type": "application/json",
            "webhook-id": key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "idempotency-key": key,
        })
        if answer.status >= 300:
            raise http_error(self.name, answer.response(), "the webhook receiver")
        return Receipt(remote_id=key, note=f"HTTP {answer.status}")

    async def check(self, client: httpx.AsyncClient) -> str:
        self.secret("signing_secret")
        url = self.setting("url")
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ChannelError(f"{self.name}: url must be https", transient=False)
        return f"signs with Standard Webhooks; posts to {url}"
