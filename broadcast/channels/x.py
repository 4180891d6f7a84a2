"""X: POST /2/tweets signed with OAuth 1.0a (user context); 280 weighted characters."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import Channel, ChannelError, Post, Receipt, http_error
from broadcast.channels.textfit import x_weighted_length

if TYPE_CHECKING:
    import httpx

TOKEN_HINT = ("X refused the credentials: regenerate the access token and secret (Keys and tokens, in the "
              "developer portal, with Read and Write permission), put them in the environment variables named in "
              "the channel file, then resend")
DUPLICATE_HINT = ("X refuses a post identical to a recent one: if the first went out, nothing more is needed; "
                  "otherwise change the wording (an update, not a resend)")
PERMISSION_HINT = ("X refused the app: in the developer portal, give the app Read and Write permission (and attach "
                   "it to a Project), then regenerate the access token and secret so they carry it")


class X(Channel):
    kind = "x"
    variant = "short"
    limit = 280
    unit = "weighted characters (links 23, emoji and CJK 2)"
    concurrency = 2  # 200 requests / 15 minutes and 300 posts / 3 hours per user: a few at once is plenty
    idempotent = False  # no key; a resend of the same text is refused as a duplicate, which we report
    can_retract = True
    secret_keys = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")

    def count(self, text: str) -> int:
        return x_weighted_length(text)

    @property
    def api(self) -> str:
        return self.setting("api", "https://api.x.com").rstrip("/")

    def _signed(self, method: str, url: str) -> dict[str, str]:
        """The OAuth 1.0a Authorization header. A JSON body is not part of the signature (RFC 5849 3.4.1.3)."""
        from oauthlib.oauth1 import Client

        client = Client(self.secret("consumer_key"), client_secret=self.secret("consumer_secret"),
                        resource_owner_key=self.secret("access_token"),
                        resource_owner_secret=self.secret("access_token_secret"))
        _, headers, _ = client.sign(url, method)
        return {"authorization": headers["Authorization"]}

    async def _request(self, client: httpx.AsyncClient, method: str, path: str, json: Any = None) -> httpx.Response:
        url = f"{self.api}{path}"
        return await client.request(method, url, json=json, headers=self._signed(method, url))

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        response = await self._request(client, "POST", "/2/tweets", json={"text": post.text})
        if response.status_code != 201:
            raise self._error(response, "posting")
        tweet_id = str(response.json()["data"]["id"])
        return Receipt(remote_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")

    async def retract(self, receipt: Receipt, client: httpx.AsyncClient) -> None:
        response = await self._request(client, "DELETE", f"/2/tweets/{receipt.remote_id}")
        if response.status_code not in (200, 404):  # 404: already gone
            raise self._error(response, "deleting")

    async def check(self, client: httpx.AsyncClient) -> str:
        response = await self._request(client, "GET", "/2/users/me")
        if response.status_code != 200:
            raise self._error(response, "users/me")
        return f"posting as @{response.json()['data']['username']}"

    def _error(self, response: httpx.Response, what: str) -> ChannelError:
        summary = _problem(response)
        hint = None
        if response.status_code == 401:
            hint = TOKEN_HINT
        elif response.status_code == 403:
            hint = DUPLICATE_HINT if "duplicate" in summary else PERMISSION_HINT
        error = http_error(self.name, response, f"X ({what})", hint=hint)
        if summary:  # X's problem in words, not its raw body (which can echo the whole text back)
            error = ChannelError(f"{self.name}: X ({what}) answered HTTP {response.status_code}: {summary}",
                                 transient=error.transient, retry_after=error.retry_after, status=error.status,
                                 hint=error.hint)
        reset = response.headers.get("x-rate-limit-reset")  # X's 429 carries the end of the window, in epoch seconds
        if response.status_code == 429 and error.retry_after is None and reset:
            with contextlib.suppress(ValueError):
                error.retry_after = max(0.0, float(reset) - time.time())
        return error


def _problem(response: httpx.Response) -> str:
    """The readable part of an X API v2 problem: its errors' messages, else its detail and title."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    messages = [str(e["message"]) for e in data.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    parts = list(dict.fromkeys(str(data[k]) for k in ("title", "detail") if data.get(k)))
    return "; ".join(messages) if messages else ": ".join(parts)
