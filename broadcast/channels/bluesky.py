"""Bluesky: one session per adapter, createRecord with a record key derived from the delivery key."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import (
    Channel,
    ChannelError,
    Engagement,
    Post,
    Receipt,
    Whole,
    http_error,
    post_json,
    post_whole,
    read,
)
from broadcast.channels.textfit import URL_RE, graphemes
from broadcast.workspace import primary_tag

if TYPE_CHECKING:
    import httpx

    from broadcast.alert import Alert

COLLECTION = "app.bsky.feed.post"
PASSWORD_HINT = ("create a new app password (Settings > Privacy and security > App passwords), put it in the "
                 "environment variable named in the channel file, then resend")
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable, as atproto TIDs are written


@dataclass
class Session:
    did: str
    handle: str
    access: str
    refresh: str


class Bluesky(Channel):
    kind = "bluesky"
    variant = "short"
    limit = 300
    unit = "graphemes"
    concurrency = 2  # writes cost points against 5,000 an hour; two in flight is plenty for a few languages
    idempotent = True  # the record key is ours: a second create with it is refused, and we read the first back
    can_retract = True
    secret_keys = ("app_password",)

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._session: Session | None = None
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def count(self, text: str) -> int:
        # The lexicon caps both 300 graphemes and 3,000 bytes: a text over the byte cap counts as over 300.
        return max(graphemes(text), -(-len(text.encode("utf-8")) // 10))

    @property
    def service(self) -> str:
        return self.setting("service", "https://bsky.social").rstrip("/")

    def prepare(self, alert: Alert, language: str) -> Post:
        post = super().prepare(alert, language)
        return replace(post, extra={"sent": alert.sent})

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        session = await self._current(client)
        rkey = record_key(key, post.extra["sent"])
        record: dict[str, Any] = {"$type": COLLECTION, "text": post.text, "createdAt": _now(),
                                  "langs": [primary_tag(post.language)]}
        if facets := link_facets(post.text):
            record["facets"] = facets
        answer = await self._call(client, "POST", "com.atproto.repo.createRecord",
                                  json={"repo": session.did, "collection": COLLECTION, "rkey": rkey, "record": record})
        if answer.status == 200:
            return self._receipt(json.loads(answer.body)["uri"], rkey)
        # The PDS refuses a second create with the same key (the reference PDS with a 500, atproto #3718):
        # if our record is there, the first attempt landed and this is its receipt.
        if answer.status in (400, 409, 500) and (uri := await self._existing(client, session.did, rkey)):
            return self._receipt(uri, rkey)
        raise self._error(answer.response(), "createRecord")

    async def retract(self, receipt: Receipt, client: httpx.AsyncClient) -> None:
        parts = (receipt.remote_id or "").removeprefix("at://").split("/")
        if len(parts) != 3:
            raise ChannelError(f"{self.name}: no at:// URI recorded for this post ({receipt.remote_id!r})",
                               transient=False, hint="delete the post by hand in the Bluesky app")
        repo, collection, rkey = parts
        answer = await self._call(client, "POST", "com.atproto.repo.deleteRecord",
                                  json={"repo": repo, "collection": collection, "rkey": rkey})
        if answer.status != 200:
            raise self._error(answer.response(), "deleteRecord")

    async def check(self, client: httpx.AsyncClient) -> str:
        await self._current(client)
        response = (await self._call(client, "GET", "com.atproto.server.getSession")).response()
        if response.status_code != 200:
            raise self._error(response, "getSession")
        return f"posting as @{response.json().get('handle')} on {self.service}"

    async def engagement(self, receipt: Receipt, client: httpx.AsyncClient) -> Engagement | None:
        """app.bsky.feed.getPosts for the counts; getPostThread (depth 1) for the replies' text, link and time."""
        uri = receipt.remote_id or ""
        if not uri.startswith("at://"):
            raise ChannelError(f"{self.name}: no at:// URI recorded for this post ({uri!r}), so it cannot be looked "
                               "up", transient=False, hint="look at the post in the Bluesky app")
        response = (await self._call(client, "GET", "app.bsky.feed.getPosts", params={"uris": uri})).response()
        if response.status_code != 200:
            raise self._error(response, "getPosts")
        posts = response.json().get("posts") or []
        if not posts:  # getPosts leaves out what it cannot find rather than failing
            raise self._gone()
        thread = (await self._call(client, "GET", "app.bsky.feed.getPostThread",
                                   params={"uri": uri, "depth": "1"})).response()
        if thread.status_code == 400 and _xrpc_error(thread.content) == "NotFound":
            raise self._gone()
        if thread.status_code != 200:
            raise self._error(thread, "getPostThread")
        post = posts[0]
        replies = thread.json().get("thread", {}).get("replies") or []
        return Engagement(replies=int(post.get("replyCount") or 0),
                          reposts=int(post.get("repostCount") or 0) + int(post.get("quoteCount") or 0),
                          likes=int(post.get("likeCount") or 0),
                          said=tuple(said for node in replies if (said := _reply(node))))

    def _gone(self) -> ChannelError:
        return ChannelError(f"{self.name}: the post is no longer on Bluesky (deleted?)", transient=False)

    # -- the session -------------------------------------------------------------------------
    def _guard(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def _current(self, client: httpx.AsyncClient) -> Session:
        """The session, created once: createSession is limited to 30 every 5 minutes per account."""
        async with self._guard():
            if self._session is None:
                self._session = await self._create(client)
            return self._session

    async def _create(self, client: httpx.AsyncClient) -> Session:
        answer = await post_json(client, f"{self.service}/xrpc/com.atproto.server.createSession",
                                 {"identifier": self.setting("handle"), "password": self.secret("app_password")})
        if answer.status != 200:
            raise self._error(answer.response(), "createSession")
        data = json.loads(answer.body)
        return Session(data["did"], data.get("handle") or self.setting("handle"), data["accessJwt"],
                       data["refreshJwt"])

    async def _renew(self, client: httpx.AsyncClient, expired: Session) -> Session:
        """Refresh an expired access token; if the refresh token is gone too, log in again."""
        async with self._guard():
            if self._session is not expired and self._session is not None:
                return self._session  # another request renewed it while this one waited
            answer = await post_whole(client, f"{self.service}/xrpc/com.atproto.server.refreshSession", b"",
                                      {"authorization": f"Bearer {expired.refresh}"})
            if answer.status == 200:
                data = json.loads(answer.body)
                self._session = Session(data.get("did", expired.did), data.get("handle", expired.handle),
                                        data["accessJwt"], data["refreshJwt"])
            elif answer.status in (400, 401):
                self._session = await self._create(client)
            else:
                raise self._error(answer.response(), "refreshSession")
            return self._session

    async def _call(self, client: httpx.AsyncClient, method: str, nsid: str, *, json: Any = None,
                    params: dict[str, str] | None = None) -> Whole:
        """One XRPC call with the session; an expired access token is renewed and the call made once more. A
        procedure (a POST of JSON: the post itself) goes out without httpx; a query through it."""
        session = await self._current(client)
        url = f"{self.service}/xrpc/{nsid}"
        for attempt in range(2):
            auth = {"authorization": f"Bearer {session.access}"}
            if method == "POST" and json is not None and not params:
                answer = await post_json(client, url, json, auth)
            else:
                answer = read(await client.request(method, url, json=json, params=params, headers=auth))
            if attempt or _xrpc_error(answer.body) != "ExpiredToken":
                break
            session = await self._renew(client, session)
        return answer

    async def _existing(self, client: httpx.AsyncClient, did: str, rkey: str) -> str | None:
        answer = await self._call(client, "GET", "com.atproto.repo.getRecord",
                                  params={"repo": did, "collection": COLLECTION, "rkey": rkey})
        return str(json.loads(answer.body)["uri"]) if answer.status == 200 else None

    def _receipt(self, uri: str, rkey: str) -> Receipt:
        handle = self._session.handle if self._session else self.setting("handle")
        return Receipt(remote_id=uri, url=f"https://bsky.app/profile/{handle}/post/{rkey}")

    def _error(self, response: httpx.Response, what: str) -> ChannelError:
        code = _xrpc_error(response.content)
        hint = PASSWORD_HINT if response.status_code == 401 or code in ("AuthenticationRequired", "InvalidToken") \
            else None
        error = http_error(self.name, response, f"Bluesky ({what})", hint=hint)
        reset = response.headers.get("ratelimit-reset")
        if response.status_code == 429 and error.retry_after is None and reset:
            with contextlib.suppress(ValueError):
                error.retry_after = max(0.0, float(reset) - time.time())
        return error


def record_key(key: str, sent: str) -> str:
    """A TID (the key type app.bsky.feed.post declares) that is the same for every attempt of one delivery.

    The time part is the alert's sent time, so the key sorts as a TID should; the rest of the microseconds and
    the clock id come from a hash of the delivery key, so two deliveries of one alert do not collide.
    """
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    micros = int(datetime.fromisoformat(sent).timestamp()) * 1_000_000 + digest % 1_000_000
    value = (micros << 10) | (digest // 1_000_000) % 1024
    return "".join(TID_ALPHABET[(value >> (5 * shift)) & 31] for shift in reversed(range(13)))


def link_facets(text: str) -> list[dict[str, Any]]:
    """A link facet for every URL; Bluesky indexes facets by UTF-8 byte, not by character."""
    facets = []
    for match in URL_RE.finditer(text):
        start = len(text[:match.start()].encode("utf-8"))
        facets.append({"index": {"byteStart": start, "byteEnd": start + len(match.group().encode("utf-8"))},
                       "features": [{"$type": "app.bsky.richtext.facet#link", "uri": match.group()}]})
    return facets


def _reply(node: Any) -> tuple[str, str, str] | None:
    """A reply in a thread as (text, link, time); the author's handle and name are left behind, and the link
    names the account by its DID only, as every post's address must."""
    post = node.get("post") if isinstance(node, dict) else None  # a notFoundPost or blockedPost has none
    if not isinstance(post, dict):
        return None
    record = post.get("record") or {}
    did, _, rkey = str(post.get("uri", "")).removeprefix("at://").partition(f"/{COLLECTION}/")
    return (str(record.get("text") or ""), f"https://bsky.app/profile/{did}/post/{rkey}",
            str(record.get("createdAt") or ""))


def _xrpc_error(body: bytes) -> str | None:
    """The XRPC error name in an answer's body ({"error": "ExpiredToken", ...}), if it has one."""
    with contextlib.suppress(ValueError, AttributeError):
        code = json.loads(body).get("error")
        return code if isinstance(code, str) else None
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
