"""Microsoft Teams through a Power Automate workflow: POST an Adaptive Card; 202 means queued, not yet posted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from broadcast.channels.base import Channel, ChannelError, Post, Receipt, http_error, post_whole
from broadcast.channels.textfit import fit
from broadcast.secrets import remember
from broadcast.workspace import primary_tag

if TYPE_CHECKING:
    import httpx

    from broadcast.alert import Alert

QUEUED = "accepted by the workflow (queued; Teams does not confirm the post)"
MORE = {"cy": "Rhagor o wybodaeth"}  # the button's label; English otherwise
RETIRED_HOSTS = ("webhook.office.com", "outlook.office.com")  # Office 365 connectors, retired by Microsoft


def card(headline: str, body: str, instruction: str, link: str, language: str) -> dict[str, Any]:
    """The Teams message: headline, body and what to do, with a button to the page."""
    blocks = [{"type": "TextBlock", "text": headline, "weight": "bolder", "size": "medium", "wrap": True},
              {"type": "TextBlock", "text": body, "wrap": True}]
    if instruction.strip():
        blocks.append({"type": "TextBlock", "text": instruction, "wrap": True})
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "lang": primary_tag(language),
            "body": blocks,
            "actions": [{"type": "Action.OpenUrl", "title": MORE.get(primary_tag(language), "More information"),
                         "url": link}],
        },
    }]}


def encode(payload: dict[str, Any]) -> bytes:
    """Exactly the bytes sent, so the size we fit to is the size that arrives."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Teams(Channel):
    kind = "teams"
    variant = "body"
    limit = 28_000  # Teams refuses messages over about 28 KB, the whole card counted
    unit = "bytes (the whole card as sent)"
    concurrency = 2
    secret_keys = ("workflow_url",)
    engagement_note: ClassVar[str] = "a Teams workflow (incoming webhook) can only post, not read the message back"

    def prepare(self, alert: Alert, language: str) -> Post:
        """Fit the body so that the whole card, headline and instruction included, stays under the limit."""
        info = alert.info(language)

        def size(text: str) -> int:
            return len(encode(card(info.headline, text, info.instruction, info.web, language)))

        fitted = fit(self.text_parts(alert, language), headline=info.headline, link=info.web, count=size,
                     limit=self.limit, channel=self.name)
        payload = card(info.headline, fitted.text, info.instruction, info.web, language)
        return Post(self.name, language, fitted.text, fitted.count, fitted.limit, self.unit, fitted.shortened,
                    {"payload": payload})

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        answer = await post_whole(client, self._url(), encode(post.extra["payload"]),
                                  {"content-type": "application/json"})
        if answer.status in (200, 202):
            return Receipt(remote_id=answer.header("x-ms-workflow-run-id"), note=QUEUED)
        raise self._error(answer.response())

    async def check(self, client: httpx.AsyncClient) -> str:
        """A workflow cannot be tested without posting, so check the URL's shape only."""
        import httpx

        url = httpx.URL(self._url())
        parts = url.path.split("/")
        workflow = parts[parts.index("workflows") + 1] if "workflows" in parts[:-1] else None
        if not workflow or not url.path.endswith("/paths/invoke") or not url.params.get("sig"):
            raise ChannelError(f"{self.name}: workflow_url is not a Power Automate workflow URL with a signature",
                               transient=False,
                               hint=f"copy the URL from the flow's trigger ('When a Teams webhook request is "
                                    f"received'; it ends with &sig=…) into {self._where()}")
        return (f"Power Automate workflow {workflow} at {url.host}; the URL has the right shape, but the workflow "
                "was not contacted: it cannot be checked without posting to the channel")

    def _url(self) -> str:
        """The workflow URL, checked (split by the standard library: a warning's send loads no httpx for it)."""
        from urllib.parse import parse_qs, urlsplit

        url = self.secret("workflow_url").strip()
        remember(url)
        try:
            parsed = urlsplit(url)
            host = parsed.hostname if parsed.port is None or parsed.port > 0 else None  # .port raises if not a number
        except ValueError:
            host = None
        if not host:
            raise ChannelError(f"{self.name}: workflow_url is not a valid URL", transient=False,
                               hint=f"copy the URL from the flow's trigger into {self._where()}") from None
        for signature in parse_qs(parsed.query).get("sig", []):
            remember(signature)  # the signature alone is the credential: mask it wherever it appears
        if host.endswith(RETIRED_HOSTS):
            raise ChannelError(f"{self.name}: workflow_url is an Office 365 connector webhook, which Microsoft "
                               "retired", transient=False,
                               hint=f"in the Teams channel, add the workflow 'Post to a channel when a webhook "
                                    f"request is received' and put its URL in {self._where()}")
        if not (parsed.scheme == "https" or host in ("127.0.0.1", "localhost")):
            raise ChannelError(f"{self.name}: workflow_url must start with https://", transient=False,
                               hint=f"copy the URL from the flow's trigger into {self._where()}")
        return url

    def _where(self) -> str:
        env = str(self.config.secrets.get("workflow_url", "")).removeprefix("env:")
        return f"{env} (named in channels/{self.name}.toml)"

    def _error(self, response: httpx.Response) -> ChannelError:
        status = response.status_code
        recreate = (f"in Teams, open the channel's Workflows, turn the flow on or recreate 'Post to a channel when "
                    f"a webhook request is received', and put its new URL in {self._where()}")
        hint = {
            400: "the workflow refused the card: a retry will not help; check that the flow's trigger still takes "
                 "an Adaptive Card, else report this as a broadcast bug",
            401: f"the signature in the workflow URL is wrong, or the flow was turned off: {recreate}",
            403: f"the signature in the workflow URL is wrong, or the flow was turned off: {recreate}",
            404: f"the workflow no longer exists: {recreate}",
            413: "the card is too large for Teams: shorten the template's body or instruction",
        }.get(status)
        return http_error(self.name, response, "the Teams workflow", hint=hint)
