"""X API v2: OAuth 1.0a signatures checked with oauthlib, 280 weighted characters, duplicates refused, replies, and
the reads: a post's public_metrics (kept on the stored post for a test to set) and a recent search by conversation."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.channels.textfit import x_weighted_length
from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

MAX_WEIGHTED = 280
TIMESTAMP_WINDOW = 300  # seconds either side of the server's clock
USERNAME = "TestshireCC"
X_HOSTS = ("api.x.com", "api.twitter.com")
PROBLEMS = "https://api.twitter.com/2/problems/"
OWNER = {"id": "1700000000000000001", "name": "Testshire Council", "username": USERNAME}
# A member of the public, so a test can reply to the council as someone else, signing with the same app's keys.
PUBLIC = {"id": "1800000000000000002", "name": "Gwen Hughes", "username": "gwen_hillside"}
PUBLIC_ACCESS_TOKEN = "1800000000000000002-sandboxpublicaccesstoken0000001"
PUBLIC_ACCESS_SECRET = "sandbox-public-access-token-secret-00000000000001"


def accounts() -> dict[str, tuple[str, dict[str, str]]]:
    """Access token -> (its secret, the user): read when a request comes, as a test may set the credentials."""
    return {CREDENTIALS["x_access_token"]: (CREDENTIALS["x_access_secret"], OWNER),
            PUBLIC_ACCESS_TOKEN: (PUBLIC_ACCESS_SECRET, PUBLIC)}


DEFAULT_FIELDS = ("id", "text", "edit_history_tweet_ids")  # what X answers whatever tweet.fields asks
TWEET_FIELDS = ("article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
                "conversation_id", "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids",
                "entities", "geo", "id", "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics",
                "note_tweet", "organic_metrics", "possibly_sensitive", "promoted_metrics", "public_metrics",
                "referenced_tweets", "reply_settings", "scopes", "source", "text", "withheld")
METRICS = ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count", "impression_count")
SEARCH_DAYS = 7  # search/recent covers the last seven days only
CONVERSATION_RE = re.compile(r"^conversation_id:(\d{1,19})$")

Handler = Callable[["Sandbox", web.Request, dict[str, str]], Awaitable[web.Response]]


def register(sandbox: Sandbox, app: web.Application) -> None:
    # search/recent before /2/tweets/{id}: the first route that matches answers.
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, f"/x{path}", _signed(handler, sandbox), name=f"x:{name}")


def _signed(handler: Handler, sandbox: Sandbox) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Every X endpoint here needs a user's OAuth 1.0a signature; the handler gets the user who signed."""

    async def handle(request: web.Request) -> web.Response:
        user = verified(sandbox, request)
        if user is None:
            return problem(401, "Unauthorized", "Unauthorized")
        return await handler(sandbox, request, user)

    return handle


def verified(sandbox: Sandbox, request: web.Request) -> dict[str, str] | None:
    """Check the OAuth 1.0a HMAC-SHA1 signature as X does (keys, token, timestamp, nonce, signature): the user."""
    from oauthlib.common import Request
    from oauthlib.oauth1.rfc5849 import signature

    header = request.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        return None
    try:
        params = signature.collect_parameters(uri_query=request.url.raw_query_string,
                                              headers={"Authorization": header}, exclude_oauth_signature=False)
        oauth = dict(params)
        timestamp = int(oauth.get("oauth_timestamp", ""))
    except (ValueError, TypeError):
        return None
    nonces = sandbox.store("x").setdefault("nonces", set())
    secret, user = accounts().get(oauth.get("oauth_token", ""), ("", None))
    if (user is None or oauth.get("oauth_consumer_key") != CREDENTIALS["x_consumer_key"]
            or oauth.get("oauth_signature_method") != "HMAC-SHA1"
            or abs(time.time() - timestamp) > TIMESTAMP_WINDOW
            or oauth.get("oauth_nonce") in nonces):
        return None
    nonces.add(oauth.get("oauth_nonce"))
    # A JSON body is not signed; only the query and the OAuth parameters are (RFC 5849 3.4.1.3).
    # Signed over the address it reached: the sandbox's own, or X's (for a client whose host is fixed and whose
    # requests a test forwards here, as tweepy's is).
    path = request.url.path.removeprefix("/x")
    query = f"?{request.url.raw_query_string}" if request.url.raw_query_string else ""
    for url in (str(request.url), *(f"https://{host}{path}{query}" for host in X_HOSTS)):
        signed = Request(url, request.method, headers={"Authorization": header})
        signed.params = [(name, value) for name, value in params if name != "oauth_signature"]
        signed.signature = oauth.get("oauth_signature", "")
        if signature.verify_hmac_sha1(signed, CREDENTIALS["x_consumer_secret"], secret):
            return user
    return None


def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> web.Response:
    return web.json_response({"title": title, "detail": detail, "type": kind, "status": status, **extra},
                             status=status)


def invalid(message: str, **parameters: list[str]) -> web.Response:
    return problem(400, "Invalid Request", "One or more parameters to your request was invalid.",
                   f"{PROBLEMS}invalid-request", errors=[{"parameters": parameters, "message": message}])


def tweets(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return sandbox.store("x").setdefault("tweets", {})


async def create(sandbox: Sandbox, request: web.Request, user: dict[str, str]) -> web.Response:
    """POST /2/tweets, optionally as a reply ({"reply": {"in_reply_to_tweet_id": ...}})."""
    body = request[RECORD].body
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        return invalid("Post text or media is required")
    if x_weighted_length(text) > MAX_WEIGHTED:
        return invalid("Your Tweet text is too long. For more information on how Twitter determines text length "
                       "see https://github.com/twitter/twitter-text.", text=[text])
    if any(t["text"] == text and t["author_id"] == user["id"] for t in tweets(sandbox).values()):
        return problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
    reply = body.get("reply") if isinstance(body, dict) else None
    parent = tweets(sandbox).get(str(reply.get("in_reply_to_tweet_id"))) if isinstance(reply, dict) else None
    if reply and parent is None:
        return problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you.")
    tweet_id = str(1_900_000_000_000_000_000 + int(sandbox.next_id()))
    tweet: dict[str, Any] = {
        "id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id], "author_id": user["id"],
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "conversation_id": parent["conversation_id"] if parent else tweet_id,
        "public_metrics": dict.fromkeys(METRICS, 0)}
    if parent:
        tweet.update(in_reply_to_user_id=parent["author_id"],
                     referenced_tweets=[{"type": "replied_to", "id": parent["id"]}])
        parent["public_metrics"]["reply_count"] += 1
    tweets(sandbox)[tweet_id] = tweet
    request[RECORD].accepted = True
    return web.json_response({"data": {key: tweet[key] for key in DEFAULT_FIELDS}}, status=201)


async def delete(sandbox: Sandbox, request: web.Request, user: dict[str, str]) -> web.Response:
    tweet_id = request.match_info["id"]
    if tweets(sandbox).pop(tweet_id, None) is None:
        return problem(404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}].",
                       f"{PROBLEMS}resource-not-found")
    return web.json_response({"data": {"deleted": True}})


async def lookup(sandbox: Sandbox, request: web.Request, user: dict[str, str]) -> web.Response:
    """GET /2/tweets/:id. A post that is not there is a 200 with an `errors` array and no `data`, as on X."""
    fields = requested(request)
    if isinstance(fields, web.Response):
        return fields
    tweet_id = request.match_info["id"]
    tweet = tweets(sandbox).get(tweet_id)
    if tweet is None:
        return web.json_response({"errors": [{
            "value": tweet_id, "detail": f"Could not find tweet with id: [{tweet_id}].", "title": "Not Found Error",
            "resource_type": "tweet", "parameter": "id", "resource_id": tweet_id,
            "type": f"{PROBLEMS}resource-not-found"}]})
    return web.json_response({"data": shown(tweet, fields)})


async def search_recent(sandbox: Sandbox, request: web.Request, user: dict[str, str]) -> web.Response:
    """GET /2/tweets/search/recent for `conversation_id:ID` (the only operator served), newest first.

    A test sets sandbox.store("x")["search_forbidden"] to answer as X does to an access level without search."""
    if sandbox.store("x").get("search_forbidden"):
        return web.json_response({
            "client_id": "29000001", "detail": "When authenticating requests to the Twitter API v2 endpoints, you "
            "must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a "
            "project via the developer portal.", "registration_url": "https://developer.twitter.com/en/docs/"
            "projects/overview", "title": "Client Forbidden", "required_enrollment": "Appropriate Level of API "
            "Access", "reason": "client-not-enrolled", "type": f"{PROBLEMS}client-forbidden"}, status=403)
    fields = requested(request)
    if isinstance(fields, web.Response):
        return fields
    query, most = request.query.get("query", ""), request.query.get("max_results", "10")
    match = CONVERSATION_RE.match(query)
    if not match:
        return invalid(f"The sandbox serves only the query conversation_id:ID, not [{query}]", query=[query])
    if not most.isdigit() or not 10 <= int(most) <= 100:
        return invalid(f"The `max_results` query parameter value [{most}] is not between 10 and 100",
                       max_results=[most])
    since = (datetime.now(UTC) - timedelta(days=SEARCH_DAYS)).isoformat().replace("+00:00", "Z")
    found = [t for t in reversed(tweets(sandbox).values()) if t["conversation_id"] == match.group(1)
             and t["id"] != match.group(1) and t["created_at"] >= since][:int(most)]
    if not found:
        return web.json_response({"meta": {"result_count": 0}})
    return web.json_response({"data": [shown(t, fields) for t in found], "meta": {
        "newest_id": found[0]["id"], "oldest_id": found[-1]["id"], "result_count": len(found)}})


async def me(sandbox: Sandbox, request: web.Request, user: dict[str, str]) -> web.Response:
    return web.json_response({"data": user})


def requested(request: web.Request) -> tuple[str, ...] | web.Response:
    """The tweet.fields asked for, or X's answer to one it does not know."""
    asked = tuple(f for f in request.query.get("tweet.fields", "").split(",") if f)
    unknown = [f for f in asked if f not in TWEET_FIELDS]
    if unknown:
        return invalid(f"The `tweet.fields` query parameter value [{unknown[0]}] is not one of "
                       f"[{','.join(TWEET_FIELDS)}]", **{"tweet.fields": unknown})
    return asked


def shown(tweet: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A post with the default fields and the ones asked for (that it has)."""
    return {key: tweet[key] for key in (*DEFAULT_FIELDS, *fields) if key in tweet}


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("POST", "/2/tweets", create, "create"),
    ("GET", "/2/tweets/search/recent", search_recent, "search"),
    ("GET", "/2/tweets/{id}", lookup, "lookup"),
    ("DELETE", "/2/tweets/{id}", delete, "delete"),
    ("GET", "/2/users/me", me, "me"),
]
