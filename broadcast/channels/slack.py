"""Slack incoming webhook: POST Block Kit JSON to the secret URL; Slack answers a plain `ok` and no message id."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from broadcast.channels.base import Channel, ChannelError, Post, Receipt, http_error, post_json
from broadcast.secrets import remember

if TYPE_CHECKING:
    import httpx

    from broadcast.alert import Alert

SHAPE = re.compile(r"/services/(T[A-Z0-9]+)/(B[A-Z0-9]+)/([A-Za-z0-9]+)$", re.IGNORECASE)
HEADER_MAX = 150  # a header block's plain_text
SECTION_MAX = 3000  # a section block's text
# Slack refuses blocks well below the 40,000 of `text` (msg_blocks_too_long near 13,000: slackapi/bolt-js#2509),
# so a longer body goes as plain `text` alone, which Slack shows when there are no blocks.
BLOCKS_BODY_MAX = 12_000

ERRORS = {  # the plain-text body Slack answers with -> what the duty officer should do
    "no_service": "the webhook was revoked or removed: create a new incoming webhook for the channel (Slack app "
                  "settings > Incoming Webhooks > Add New Webhook) and put its URL in {where}",
    "no_team": "the Slack workspace of this webhook no longer exists: create a new incoming webhook and put its "
               "URL in {where}",
    "channel_not_found": "the channel of this webhook was deleted: create a new incoming webhook for another "
                         "channel and put its URL in {where}",
    "channel_is_archived": "the channel is archived: ask a Slack admin to unarchive it, or create a new incoming "
                           "webhook for another channel and put its URL in {where}",
    "action_prohibited": "a Slack admin setting stops this webhook posting here (for example a posting restriction "
                         "on the channel): ask the Slack admins to allow it, or use another channel's webhook",
    "posting_to_general_channel_denied": "only admins may post in this channel: use a webhook for another channel",
    "invalid_payload": "Slack could not read the message we built: a retry will not help; report this as a "
                       "broadcast bug with the alert identifier",
    "invalid_blocks": "Slack refused the message layout: a retry will not help; report this as a broadcast bug",
}


def escape(text: str) -> str:
    """Escape Slack's three control characters, as Slack requires for every text object."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chunks(text: str, size: int) -> list[str]:
    """Cut already-escaped text into pieces of at most `size`, at whitespace, never inside an entity."""
    pieces = []
    while len(text) > size:
        cut = max(text.rfind(" ", 0, size), text.rfind("\n", 0, size))
        if cut <= 0:
            cut = size
            amp = text.rfind("&", cut - 4, cut)  # "&amp;" is the longest entity: do not split one
            if amp > 0 and ";" not in text[amp:cut]:
                cut = amp
        else:
            cut += 1  # keep the whitespace with the piece before it
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text] if text else pieces


class Slack(Channel):
    kind = "slack"
    variant = "body"
    limit = 40_000
    unit = "characters (& < > counted escaped)"
    concurrency = 1  # Slack allows about one message per second per webhook
    secret_keys = ("webhook_url",)
    engagement_note: ClassVar[str] = ("an incoming webhook answers only \"ok\", with no message ts to read "
                                      "replies or reactions by (that needs a bot token)")

    def count(self, text: str) -> int:
        return len(escape(text))

    def prepare(self, alert: Alert, language: str) -> Post:
        post = super().prepare(alert, language)
        info = alert.info(language)
        return replace(post, extra={"headline": info.headline, "link": info.web})

    def payload(self, post: Post) -> dict[str, Any]:
        """The message: `text` for notifications, and blocks (headline, body, link) for the channel."""
        text = escape(post.text)
        if len(text) > BLOCKS_BODY_MAX:
            return {"text": text}
        headline = escape(post.extra["headline"])
        link = escape(post.extra["link"])
        top = ({"type": "header", "text": {"type": "plain_text", "text": headline, "emoji": True}}
               if len(headline) <= HEADER_MAX else
               {"type": "section", "text": {"type": "plain_text", "text": headline, "emoji": True}})
        body = [{"type": "section", "text": {"type": "plain_text", "text": piece, "emoji": True}}
                for piece in chunks(text, SECTION_MAX)]
        context = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|{link}>"}]}
        return {"text": text, "blocks": [top, *body, context]}

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        answer = await post_json(client, self._url(), self.payload(post))
        said = answer.body.decode("utf-8", "replace").strip()
        if answer.status == 200 and said == "ok":
            return Receipt(note="posted (Slack answered ok; a webhook returns no link to the message)")
        if answer.status == 200:  # not Slack's answer: something in between may or may not have posted
            raise ChannelError(f"{self.name}: Slack answered HTTP 200 without 'ok' ({said[:80]!r})",
                               transient=True, unknown_outcome=True, status=200,
                               hint="look in the Slack channel before resending")
        raise self._error(answer.response())

    async def check(self, client: httpx.AsyncClient) -> str:
        """A webhook cannot be tested without posting, so check the URL's shape only."""
        url = self._url()
        match = SHAPE.search(url.split("?", 1)[0])
        if not match:
            raise ChannelError(f"{self.name}: webhook_url is not a Slack incoming webhook URL", transient=False,
                               hint=f"copy the URL from Slack (https://hooks.slack.com/services/T…/B…/…) into "
                                    f"{self._where()}")
        import httpx

        return (f"incoming webhook of Slack workspace {match.group(1)} at {httpx.URL(url).host}; the URL has the "
                "right shape, but Slack was not contacted: a webhook cannot be checked without posting")

    def _url(self) -> str:
        url = self.secret("webhook_url").strip()
        remember(url)
        match = SHAPE.search(url.split("?", 1)[0])
        if match:
            remember(match.group(3))  # the last part alone is enough to post: mask it wherever it appears
        local = url.startswith(("http://127.0.0.1", "http://localhost"))
        if not (url.startswith("https://") or local):
            raise ChannelError(f"{self.name}: webhook_url must start with https://", transient=False,
                               hint=f"copy the URL from Slack into {self._where()}")
        return url

    def _where(self) -> str:
        env = str(self.config.secrets.get("webhook_url", "")).removeprefix("env:")
        return f"{env} (named in channels/{self.name}.toml)"

    def _error(self, response: httpx.Response) -> ChannelError:
        advice = ERRORS.get(response.text.strip())
        return http_error(self.name, response, "Slack", hint=advice.format(where=self._where()) if advice else None)
