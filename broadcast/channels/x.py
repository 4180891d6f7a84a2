"""X: POST /2/tweets signed with OAuth 1.0a (user context); 280 weighted characters."""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import Channel, ChannelError, Engagement, Post, Receipt, http_error, post_json
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
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
Said = tuple[tuple[str, str, str], ...]  # (text, link, time) of each reply


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

    async def _request(self, client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
        url = f"{self.api}{path}"
        return await client.request(method, url, headers=self._signed(method, url))

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        url = f"{self.api}/2/tweets"
        answer = await post_json(client, url, {"text": post.text}, self._signed("POST", url))
        if answer.status != 201:
            raise self._error(answer.response(), "posting")
        tweet_id = str(json.loads(answer.body)["data"]["id"])
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

    async def engagement(self, receipt: Receipt, client: httpx.AsyncClient) -> Engagement | None:
        """GET /2/tweets/:id for public_metrics; the replies from a recent search of the post's conversation."""
        if not receipt.remote_id:
            raise ChannelError(f"{self.name}: no post id recorded for this post, so it cannot be looked up",
                               transient=False, hint="look at the post on X")
        metrics = (await self._tweet(client, receipt.remote_id)).get("public_metrics") or {}
        said, missing = await self._replies(client, receipt.remote_id)
        return Engagement(replies=int(metrics.get("reply_count") or 0),
                          reposts=int(metrics.get("retweet_count") or 0) + int(metrics.get("quote_count") or 0),
                          likes=int(metrics.get("like_count") or 0), views=_count(metrics.get("impression_count")),
                          said=said, note=missing)

    async def _tweet(self, client: httpx.AsyncClient, tweet_id: str) -> dict[str, Any]:
        response = await self._get(client, f"/2/tweets/{tweet_id}",
                                   {"tweet.fields": "public_metrics,created_at"})
        if response.status_code != 200:
            raise self._error(response, "reading a post")
        answer = response.json()
        if isinstance(answer.get("data"), dict):
            tweet: dict[str, Any] = answer["data"]
            return tweet
        # A deleted post is not a 404: X answers 200 with a resource-not-found problem and no data.
        if any(isinstance(e, dict) and e.get("type") == NOT_FOUND for e in answer.get("errors") or []):
            raise ChannelError(f"{self.name}: the post is no longer on X (deleted?)", transient=False)
        raise ChannelError(f"{self.name}: X (reading a post) answered without the post: {_problem(response)}",
                           transient=True, hint="a retry may help")

    async def _replies(self, client: httpx.AsyncClient, tweet_id: str) -> tuple[Said, str | None]:
        """The direct replies (oldest first), or none and why: search needs a paid access level, and covers
        the last seven days only."""
        response = await self._get(client, "/2/tweets/search/recent", {
            "query": f"conversation_id:{tweet_id}", "tweet.fields": "created_at,referenced_tweets",
            "max_results": "100"})
        if response.status_code == 403:
            return (), (f"replies' text not available: X refused the search ({_refusal(response)}); it needs the "
                        "Basic access level or above")
        if response.status_code != 200:
            raise self._error(response, "searching the replies")
        found = [t for t in response.json().get("data") or [] if _answers(t, tweet_id)]
        said = tuple((str(t.get("text") or ""), f"https://x.com/i/web/status/{t['id']}", str(t.get("created_at") or ""))
                     for t in reversed(found))  # search answers newest first
        return said, None

    async def _get(self, client: httpx.AsyncClient, path: str, params: dict[str, str]) -> httpx.Response:
        """A signed GET; the query is part of the OAuth 1.0a signature, so it is in the URL before signing."""
        from urllib.parse import quote, urlencode

        url = f"{self.api}{path}?{urlencode(params, quote_via=quote)}"
        return await client.get(url, headers=self._signed("GET", url))

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


def _answers(tweet: Any, tweet_id: str) -> bool:
    """Whether a post in the conversation replies to ours directly (not to another reply)."""
    refs = tweet.get("referenced_tweets") if isinstance(tweet, dict) else None
    return any(ref.get("type") == "replied_to" and str(ref.get("id")) == tweet_id for ref in refs or [])


def _refusal(response: httpx.Response) -> str:
    """'HTTP 403 Client Forbidden (client-not-enrolled)': a 403 in short, not its paragraph of detail."""
    with contextlib.suppress(ValueError, AttributeError):
        data = response.json()
        if data.get("title"):
            return f"HTTP 403 {data['title']}" + (f" ({data['reason']})" if data.get("reason") else "")
    return "HTTP 403"


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


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
