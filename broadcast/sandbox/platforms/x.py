"""X API v2: OAuth 1.0a signatures checked with oauthlib, 280 weighted characters, duplicates refused."""

from __future__ import annotations

import time
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


def register(sandbox: Sandbox, app: web.Application) -> None:
    def store() -> dict[str, Any]:
        return sandbox.store("x")

    def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> web.Response:
        return web.json_response({"title": title, "detail": detail, "type": kind, "status": status, **extra},
                                 status=status)

    def unauthorised(request: web.Request) -> web.Response | None:
        if verified(request):
            return None
        return problem(401, "Unauthorized", "Unauthorized")

    def verified(request: web.Request) -> bool:
        """Check the OAuth 1.0a HMAC-SHA1 signature as X does: keys, token, timestamp, nonce, signature."""
        from oauthlib.common import Request
        from oauthlib.oauth1.rfc5849 import signature

        header = request.headers.get("Authorization", "")
        if not header.startswith("OAuth "):
            return False
        try:
            params = signature.collect_parameters(uri_query=request.url.raw_query_string,
                                                  headers={"Authorization": header}, exclude_oauth_signature=False)
            oauth = dict(params)
            timestamp = int(oauth.get("oauth_timestamp", ""))
        except (ValueError, TypeError):
            return False
        nonces = store().setdefault("nonces", set())
        if (oauth.get("oauth_consumer_key") != CREDENTIALS["x_consumer_key"]
                or oauth.get("oauth_token") != CREDENTIALS["x_access_token"]
                or oauth.get("oauth_signature_method") != "HMAC-SHA1"
                or abs(time.time() - timestamp) > TIMESTAMP_WINDOW
                or oauth.get("oauth_nonce") in nonces):
            return False
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
            if signature.verify_hmac_sha1(signed, CREDENTIALS["x_consumer_secret"], CREDENTIALS["x_access_secret"]):
                return True
        return False

    def tweets() -> dict[str, dict[str, Any]]:
        return store().setdefault("tweets", {})

    async def create(request: web.Request) -> web.Response:
        if response := unauthorised(request):
            return response
        body = request[RECORD].body
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return problem(400, "Invalid Request", "One or more parameters to your request was invalid.",
                           "https://api.twitter.com/2/problems/invalid-request",
                           errors=[{"message": "Post text or media is required"}])
        if x_weighted_length(text) > MAX_WEIGHTED:
            return problem(400, "Invalid Request", "One or more parameters to your request was invalid.",
                           "https://api.twitter.com/2/problems/invalid-request",
                           errors=[{"parameters": {"text": [text]}, "message": "Your Tweet text is too long. For "
                                    "more information on how Twitter determines text length see "
                                    "https://github.com/twitter/twitter-text."}])
        if any(tweet["text"] == text for tweet in tweets().values()):
            return problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
        tweet_id = str(1_900_000_000_000_000_000 + int(sandbox.next_id()))
        tweets()[tweet_id] = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        request[RECORD].accepted = True
        return web.json_response({"data": tweets()[tweet_id]}, status=201)

    async def delete(request: web.Request) -> web.Response:
        if response := unauthorised(request):
            return response
        tweet_id = request.match_info["id"]
        if tweets().pop(tweet_id, None) is None:
            return problem(404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}].",
                           "https://api.twitter.com/2/problems/resource-not-found")
        return web.json_response({"data": {"deleted": True}})

    async def me(request: web.Request) -> web.Response:
        if response := unauthorised(request):
            return response
        return web.json_response({"data": {"id": "1700000000000000001", "name": "Testshire Council",
                                           "username": USERNAME}})

    app.router.add_post("/x/2/tweets", create, name="x:create")
    app.router.add_delete("/x/2/tweets/{id}", delete, name="x:delete")
    app.router.add_get("/x/2/users/me", me, name="x:me")
