"""Bluesky (a PDS): sessions with expiry and refresh, createSession limits, records keyed by rkey, 300 graphemes, and
the App View's reads (getPosts, getPostThread) with each post's counts kept on its record for a test to set."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.channels.textfit import graphemes
from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES, MAX_BYTES = 300, 3000
SESSION_LIMIT, SESSION_WINDOW = 30, 300.0  # createSession: 30 every 5 minutes per handle
ACCESS_TTL = 7200.0  # the access token's life; a test shortens it through sandbox.store("bluesky")["access_ttl"]
RKEY_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
JWT_KEY = "sandbox-pds-signing-key-not-a-secret"  # the sandbox's own; a token it issues works on it alone
TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
COUNTS = ("replyCount", "repostCount", "likeCount", "quoteCount")  # kept on each stored record, 0 at first
MAX_URIS = 25  # getPosts takes at most 25 at once


def register(sandbox: Sandbox, app: web.Application) -> None:
    def store() -> dict[str, Any]:
        return sandbox.store("bluesky")

    def issue(did: str, handle: str) -> dict[str, Any]:
        import jwt

        # JWTs as a PDS issues them (clients read `exp` to know when to refresh), signed with the sandbox's key.
        ttl = float(store().get("access_ttl", ACCESS_TTL))
        now = int(time.time())
        access = jwt.encode({"scope": "com.atproto.access", "sub": did, "aud": "did:web:sandbox.invalid", "iat": now,
                             "exp": now + max(int(ttl), 1), "jti": secrets.token_hex(8)}, JWT_KEY, algorithm="HS256")
        refresh = jwt.encode({"scope": "com.atproto.refresh", "sub": did, "aud": "did:web:sandbox.invalid",
                              "iat": now, "exp": now + 90 * 86400, "jti": secrets.token_hex(8)}, JWT_KEY,
                             algorithm="HS256")
        store().setdefault("access", {})[access] = {"did": did, "handle": handle, "expires": time.time() + ttl}
        store().setdefault("handles", {})[did] = handle  # what the App View shows as a post's author
        store().setdefault("refresh", {})[refresh] = {"did": did, "handle": handle}
        return {"did": did, "handle": handle, "accessJwt": access, "refreshJwt": refresh, "active": True}

    def session(request: web.Request) -> dict[str, Any] | web.Response:
        return _session(store(), request)

    def body(request: web.Request) -> dict[str, Any]:
        data = request[RECORD].body
        return data if isinstance(data, dict) else {}

    async def create_session(request: web.Request) -> web.Response:
        data = body(request)
        handle = str(data.get("identifier", ""))
        recent = [t for t in store().setdefault("session_log", {}).get(handle, []) if t > time.time() - SESSION_WINDOW]
        if len(recent) >= SESSION_LIMIT:
            reset = int(min(recent) + SESSION_WINDOW) + 1
            return _error(429, "RateLimitExceeded", "Rate Limit Exceeded", {
                "RateLimit-Limit": str(SESSION_LIMIT), "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
                "RateLimit-Policy": f"{SESSION_LIMIT};w={int(SESSION_WINDOW)}"})
        store()["session_log"][handle] = [*recent, time.time()]
        if not handle or data.get("password") != CREDENTIALS["bluesky"]:
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return web.json_response(issue(did_for(handle), handle))

    async def refresh_session(request: web.Request) -> web.Response:
        found = store().get("refresh", {}).pop(_bearer(request), None)  # a refresh token is used once
        if found is None:
            return _error(400, "ExpiredToken", "Token has been revoked")
        return web.json_response(issue(found["did"], found["handle"]))

    async def get_session(request: web.Request) -> web.Response:
        found = session(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response({"did": found["did"], "handle": found["handle"], "active": True})

    async def create_record(request: web.Request) -> web.Response:
        found = session(request)
        if isinstance(found, web.Response):
            return found
        data = body(request)
        record, rkey = data.get("record"), str(data.get("rkey") or tid())  # no rkey: the PDS makes a TID
        if data.get("repo") not in (found["did"], found["handle"]):
            return _error(401, "AuthRequired", "Input/repo must be the authenticated account")
        if data.get("collection") != COLLECTION or not isinstance(record, dict):
            return _error(400, "InvalidRequest", "Input/collection must be app.bsky.feed.post with a record")
        problem = invalid_post(record)
        if problem:
            return _error(400, "InvalidRequest", f"Invalid {COLLECTION} record: {problem}")
        # The lexicon declares TID keys for posts; the App View may not show a post under any other key.
        if not RKEY_RE.match(rkey) or rkey in (".", "..") or not TID_RE.match(rkey):
            return _error(400, "InvalidRequest", f"Invalid record key for {COLLECTION} (a TID is required): {rkey}")
        uri = f"at://{found['did']}/{COLLECTION}/{rkey}"
        records = store().setdefault("records", {})
        if uri in records:
            # The reference PDS answers 500 here today (atproto #3718); a 400 is what it should say.
            return _error(400, "InvalidRequest", f"Record already exists: {uri}")
        cid = "bafyrei" + hashlib.sha256(repr(sorted(record.items())).encode()).hexdigest()[:52]
        records[uri] = {"uri": uri, "cid": cid, "value": record, "indexedAt": _now(), **dict.fromkeys(COUNTS, 0)}
        if parent := records.get(_parent(record)):
            parent["replyCount"] += 1
        request[RECORD].accepted = True
        return web.json_response({"uri": uri, "cid": cid, "commit": {"cid": cid, "rev": rkey},
                                  "validationStatus": "valid"})

    async def get_record(request: web.Request) -> web.Response:
        query = request.query
        uri = f"at://{query.get('repo')}/{query.get('collection')}/{query.get('rkey')}"
        found = store().get("records", {}).get(uri)
        if found is None:
            return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return web.json_response({key: found[key] for key in ("uri", "cid", "value")})

    async def delete_record(request: web.Request) -> web.Response:
        found = session(request)
        if isinstance(found, web.Response):
            return found
        data = body(request)
        if data.get("repo") not in (found["did"], found["handle"]):
            return _error(401, "AuthRequired", "Input/repo must be the authenticated account")
        # Deleting a record that is not there is not an error: the repo simply has no such record.
        records = store().setdefault("records", {})
        gone = records.pop(f"at://{found['did']}/{data.get('collection')}/{data.get('rkey')}", None)
        if gone and (parent := records.get(_parent(gone["value"]))):
            parent["replyCount"] = max(0, parent["replyCount"] - 1)
        return web.json_response({"commit": {"cid": "bafyreideleted", "rev": "sandbox"}})

    async def get_profile(request: web.Request) -> web.Response:
        found = session(request)
        if isinstance(found, web.Response):
            return found
        actor = request.query.get("actor", "")
        if actor not in (found["did"], found["handle"]):
            return _error(400, "InvalidRequest", "Profile not found")
        return web.json_response({"did": found["did"], "handle": found["handle"], "displayName": "Sandbox council",
                                  "followersCount": 0, "followsCount": 0, "postsCount": len(store().get("records",
                                                                                                       {}))})

    prefix = "/bluesky/xrpc/"
    app.router.add_post(prefix + "com.atproto.server.createSession", create_session, name="bluesky:createSession")
    app.router.add_post(prefix + "com.atproto.server.refreshSession", refresh_session, name="bluesky:refreshSession")
    app.router.add_get(prefix + "com.atproto.server.getSession", get_session, name="bluesky:getSession")
    app.router.add_post(prefix + "com.atproto.repo.createRecord", create_record, name="bluesky:createRecord")
    app.router.add_get(prefix + "com.atproto.repo.getRecord", get_record, name="bluesky:getRecord")
    app.router.add_post(prefix + "com.atproto.repo.deleteRecord", delete_record, name="bluesky:deleteRecord")
    app.router.add_get(prefix + "app.bsky.actor.getProfile", get_profile, name="bluesky:getProfile")
    for nsid, read in READS.items():
        app.router.add_get(prefix + nsid, _bound(read, sandbox), name=f"bluesky:{nsid.rsplit('.', 1)[1]}")


# -- the App View's reads, as the PDS proxies them ---------------------------------------------------
Read = Callable[["Sandbox", web.Request], Awaitable[web.Response]]


def _bound(read: Read, sandbox: Sandbox) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        return await read(sandbox, request)

    return handle


async def get_posts(sandbox: Sandbox, request: web.Request) -> web.Response:
    """app.bsky.feed.getPosts: the views of the posts found, in the order asked; one not found is left out."""
    store = sandbox.store("bluesky")
    found = _session(store, request)
    if isinstance(found, web.Response):
        return found
    uris = request.query.getall("uris", [])
    if not uris:
        return _error(400, "InvalidRequest", 'Error: Params must have the property "uris"')
    if len(uris) > MAX_URIS:
        return _error(400, "InvalidRequest", f"Error: uris must not have more than {MAX_URIS} elements")
    records = store.get("records", {})
    return web.json_response({"posts": [_view(store, records[uri]) for uri in uris if uri in records]})


async def get_post_thread(sandbox: Sandbox, request: web.Request) -> web.Response:
    """app.bsky.feed.getPostThread: the post and its replies to `depth` levels (oldest first); 400 NotFound."""
    store = sandbox.store("bluesky")
    found = _session(store, request)
    if isinstance(found, web.Response):
        return found
    uri, depth = request.query.get("uri", ""), request.query.get("depth", "6")
    if not depth.isdigit() or int(depth) > 1000:
        return _error(400, "InvalidRequest", "Error: depth must be an integer from 0 to 1000")
    if uri not in store.get("records", {}):
        return _error(400, "NotFound", f"Post not found: {uri}")
    return web.json_response({"thread": _thread(store, uri, int(depth))})


READS: dict[str, Read] = {"app.bsky.feed.getPosts": get_posts, "app.bsky.feed.getPostThread": get_post_thread}


def _thread(store: dict[str, Any], uri: str, depth: int) -> dict[str, Any]:
    records = store["records"]
    node: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": _view(store, records[uri])}
    if depth > 0:
        node["replies"] = [_thread(store, reply, depth - 1) for reply, record in records.items()
                           if _parent(record["value"]) == uri]
    return node


def _view(store: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """An app.bsky.feed.defs#postView: the record, its author as the App View shows them, and its counts."""
    did = stored["uri"].removeprefix("at://").split("/")[0]
    author = {"did": did, "handle": store.get("handles", {}).get(did, "handle.invalid"),
              **store.get("profiles", {}).get(did, {})}  # a test may give an author a displayName
    return {"$type": "app.bsky.feed.defs#postView", "uri": stored["uri"], "cid": stored["cid"], "author": author,
            "record": stored["value"], **{key: stored[key] for key in COUNTS}, "indexedAt": stored["indexedAt"],
            "labels": []}


def _parent(record: dict[str, Any]) -> str:
    reply = record.get("reply")
    return str(reply["parent"]["uri"]) if isinstance(reply, dict) else ""


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()


def _session(store: dict[str, Any], request: web.Request) -> dict[str, Any] | web.Response:
    """The account an access token belongs to, or the error a PDS answers."""
    token = _bearer(request)
    if not token:
        return _error(401, "AuthMissing", "Authentication Required")
    found = store.get("access", {}).get(token)
    if found is None:
        return _error(401, "InvalidToken", "Token could not be verified")
    if found["expires"] < time.time():
        return _error(400, "ExpiredToken", "Token has expired")
    return dict(found)


def did_for(handle: str) -> str:
    return "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def invalid_post(record: dict[str, Any]) -> str | None:
    """What the lexicon check would say about an app.bsky.feed.post record, or None."""
    text = record.get("text")
    if record.get("$type", COLLECTION) != COLLECTION:
        return f"Invalid $type: expected {COLLECTION}, got {record.get('$type')}"
    if not isinstance(text, str):
        return 'Record must have the property "text"'
    if graphemes(text) > MAX_GRAPHEMES:
        return f"Record/text must not be longer than {MAX_GRAPHEMES} graphemes"
    if len(text.encode("utf-8")) > MAX_BYTES:
        return f"Record/text must not be longer than {MAX_BYTES} characters"
    if not isinstance(record.get("createdAt"), str):
        return 'Record must have the property "createdAt"'
    if "reply" in record and (problem := invalid_reply(record["reply"])):
        return problem
    for facet in record.get("facets", []):
        index = facet.get("index", {}) if isinstance(facet, dict) else {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
            return "Record/facets/index must have integer byteStart and byteEnd"
    return None


def invalid_reply(reply: Any) -> str | None:
    """A reply must point at its thread's root and its parent, each by a strong ref (uri and cid)."""
    if not isinstance(reply, dict):
        return "Record/reply must be an object"
    for part in ("root", "parent"):
        ref = reply.get(part)
        if not isinstance(ref, dict) or not all(isinstance(ref.get(key), str) for key in ("uri", "cid")):
            return f'Record/reply/{part} must have the properties "uri" and "cid"'
    return None


def tid() -> str:
    """A record key as a PDS makes one: microseconds since 1970 and a clock id, 13 sortable base-32 characters."""
    number = (time.time_ns() // 1000) << 10 | secrets.randbelow(1024)
    chars = []
    for _ in range(13):
        chars.append(TID_CHARS[number & 31])
        number >>= 5
    return "".join(reversed(chars))
