"""Mastodon: POST /api/v1/statuses with an Idempotency-Key; delete with DELETE /api/v1/statuses/:id."""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING

from broadcast.channels.base import (
    Channel,
    ChannelError,
    Engagement,
    Post,
    Receipt,
    get_whole,
    http_error,
    post_json,
)
from broadcast.channels.textfit import mastodon_length
from broadcast.workspace import primary_tag

if TYPE_CHECKING:
    import httpx

TOKEN_HINT = ("create a new access token with the write:statuses scope (Preferences > Development on the "
              "instance), put it in the environment variable named in the channel file, then resend")


class Mastodon(Channel):
    kind = "mastodon"
    variant = "short"
    limit = 500
    unit = "characters (links count 23)"
    concurrency = 2  # 300 requests / 5 minutes per account
    idempotent = True  # Idempotency-Key is kept by the server for about an hour
    can_retract = True
    secret_keys = ("access_token",)

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.limit = int(self.settings.get("max_characters", Mastodon.limit))

    def count(self, text: str) -> int:
        return mastodon_length(text)

    @property
    def instance(self) -> str:
        return self.setting("instance").rstrip("/")

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.secret('access_token')}"}

    def limit_source(self) -> str:
        return f"{self.instance}/api/v2/instance"

    async def configure(self, client: httpx.AsyncClient) -> None:
        """Take the instance's own character limit (configuration.statuses.max_characters)."""
        answer = await get_whole(client, self.limit_source())
        if answer.status != 200:
            raise self._error(answer.response(), "reading the instance's limits")
        limit = json.loads(answer.body).get("configuration", {}).get("statuses", {}).get("max_characters")
        if not isinstance(limit, int) or limit <= 0:
            raise ChannelError(f"{self.name}: the instance publishes no character limit", transient=False)
        self.limit = limit

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        answer = await post_json(client, f"{self.instance}/api/v1/statuses", {
            "status": post.text, "visibility": self.settings.get("visibility", "public"),
            "language": primary_tag(post.language)}, {**self._auth(), "idempotency-key": key})
        if answer.status != 200:
            raise self._error(answer.response(), "posting")
        status = json.loads(answer.body)
        if not same_words(str(status.get("content") or post.text), post.text):
            # An Idempotency-Key seen before, for another text: Mastodon handed back that earlier post.
            raise ChannelError(f"{self.name}: Mastodon answered with an earlier, different post for this message's "
                               f"key ({status.get('url')}); nothing new was posted", transient=False,
                               hint="the key was used before (a log restored from a copy?): check the account, "
                               "then send the message again as a new warning")
        return Receipt(remote_id=str(status["id"]), url=status.get("url"))

    async def retract(self, receipt: Receipt, client: httpx.AsyncClient) -> None:
        response = await client.delete(f"{self.instance}/api/v1/statuses/{receipt.remote_id}", headers=self._auth())
        if response.status_code not in (200, 404):  # 404: already gone
            raise self._error(response, "deleting")

    async def engagement(self, receipt: Receipt, client: httpx.AsyncClient) -> Engagement | None:
        """GET /api/v1/statuses/:id (replies_count, reblogs_count, favourites_count) and its context's replies."""
        if not receipt.remote_id:
            return None
        base = f"{self.instance}/api/v1/statuses/{receipt.remote_id}"
        response = await client.get(base, headers=self._auth())
        if response.status_code == 404:
            raise ChannelError(f"{self.name}: the post is no longer on Mastodon (deleted?)", transient=False)
        if response.status_code != 200:
            raise self._error(response, "reading a post")
        status = response.json()
        thread = await client.get(f"{base}/context", headers=self._auth())
        replies = thread.json().get("descendants", []) if thread.status_code == 200 else []
        said = tuple((html_text(str(r.get("content") or "")), str(r.get("url") or ""), str(r.get("created_at") or ""))
                     for r in replies if str(r.get("in_reply_to_id") or "") == str(receipt.remote_id))
        return Engagement(replies=int(status.get("replies_count") or 0), reposts=int(status.get("reblogs_count") or 0),
                          likes=int(status.get("favourites_count") or 0), said=said)

    async def check(self, client: httpx.AsyncClient) -> str:
        response = await client.get(f"{self.instance}/api/v1/accounts/verify_credentials", headers=self._auth())
        if response.status_code != 200:
            raise self._error(response, "verify_credentials")
        return f"posting as @{response.json().get('acct')} on {self.instance}"

    def _error(self, response: httpx.Response, what: str) -> ChannelError:
        error = http_error(self.name, response, f"Mastodon ({what})",
                           hint=TOKEN_HINT if response.status_code in (401, 403) else None)
        reset = response.headers.get("x-ratelimit-reset")
        if response.status_code == 429 and error.retry_after is None and reset:
            from datetime import datetime

            with contextlib.suppress(ValueError):
                error.retry_after = max(0.0, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
                                        - time.time())
        return error


def html_text(content: str) -> str:
    """A status's HTML content as plain text (paragraphs and line breaks as new lines)."""
    import html
    import re

    text = re.sub(r"<br\s*/?>|</p>\s*<p>", "\n", content)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def same_words(content: str, text: str) -> bool:
    """Whether a status's content (HTML: paragraphs, line breaks, links split into spans) says `text`."""
    import html
    import re

    plain = html.unescape(re.sub(r"<[^>]+>", "", content))
    return re.sub(r"\s+", "", plain) == re.sub(r"\s+", "", text)
