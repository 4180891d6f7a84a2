"""Mastodon: statuses with Idempotency-Key, delete, verify_credentials, instance limits, 500 characters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from broadcast.channels.textfit import mastodon_length
from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

MAX_CHARACTERS = 500
# A member of the public, so a drill or a test can reply to the council's post as someone else.
PUBLIC_TOKEN = "sandbox-mastodon-public-token"


def register(sandbox: Sandbox, app: web.Application) -> None:
    def authorised(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {CREDENTIALS['mastodon']}"

    def unauthorised() -> web.Response:
        return web.json_response({"error": "The access token is invalid"}, status=401)

    async def instance(request: web.Request) -> web.Response:
        return web.json_response({"domain": "sandbox.local", "configuration": {
            "statuses": {"max_characters": MAX_CHARACTERS, "characters_reserved_per_url": 23}}})

    async def post_status(request: web.Request) -> web.Response:
        public = request.headers.get("Authorization") == f"Bearer {PUBLIC_TOKEN}"
        if not authorised(request) and not public:
            return unauthorised()
        record = request[RECORD]
        text = (record.body or {}).get("status") if isinstance(record.body, dict) else None
        if not text:
            return web.json_response({"error": "Validation failed: Text can't be blank"}, status=422)
        if mastodon_length(text) > MAX_CHARACTERS:
            return web.json_response({"error": f"Validation failed: Text character limit of {MAX_CHARACTERS} "
                                      "exceeded"}, status=422)
        statuses = sandbox.store("mastodon").setdefault("statuses", {})
        keys = sandbox.store("mastodon").setdefault("idempotency", {})
        key = request.headers.get("Idempotency-Key")
        if key and key in keys:
            return web.json_response(statuses[keys[key]])  # the same status again, not a second post
        status_id = sandbox.next_id()
        who = "resident" if public else "council"
        status = {"id": status_id, "url": f"{sandbox.url}/@{who}/{status_id}", "content": text,
                  "visibility": record.body.get("visibility"), "language": record.body.get("language"),
                  "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "in_reply_to_id": record.body.get("in_reply_to_id"), "replies_count": 0, "reblogs_count": 0,
                  "favourites_count": 0,
                  "account": {"id": "2" if public else "1", "acct": who}}
        statuses[status_id] = status
        parent = statuses.get(str(status["in_reply_to_id"] or ""))
        if parent is not None:
            parent["replies_count"] += 1
        if key:
            keys[key] = status_id
        record.accepted = not public  # what the council posted; a resident's reply is theirs
        return web.json_response(status)

    async def delete_status(request: web.Request) -> web.Response:
        if not authorised(request):
            return unauthorised()
        status = sandbox.store("mastodon").setdefault("statuses", {}).pop(request.match_info["id"], None)
        if status is None:
            return web.json_response({"error": "Record not found"}, status=404)
        return web.json_response({**status, "text": status["content"]})

    async def get_status(request: web.Request) -> web.Response:
        status = sandbox.store("mastodon").setdefault("statuses", {}).get(request.match_info["id"])
        if status is None:
            return web.json_response({"error": "Record not found"}, status=404)
        return web.json_response(status)

    async def context(request: web.Request) -> web.Response:
        """GET /api/v1/statuses/:id/context: the replies below it (descendants), oldest first."""
        statuses = sandbox.store("mastodon").setdefault("statuses", {})
        if request.match_info["id"] not in statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        below, frontier = [], {request.match_info["id"]}
        for status in statuses.values():  # kept in posting order
            if str(status.get("in_reply_to_id") or "") in frontier:
                below.append(status)
                frontier.add(status["id"])
        return web.json_response({"ancestors": [], "descendants": below})

    async def verify(request: web.Request) -> web.Response:
        if not authorised(request):
            return unauthorised()
        return web.json_response({"id": "1", "acct": "council", "username": "council"})

    app.router.add_get("/mastodon/api/v2/instance", instance, name="mastodon:instance")
    app.router.add_post("/mastodon/api/v1/statuses", post_status, name="mastodon:post")
    app.router.add_delete("/mastodon/api/v1/statuses/{id}", delete_status, name="mastodon:delete")
    app.router.add_get("/mastodon/api/v1/statuses/{id}", get_status, name="mastodon:status")
    app.router.add_get("/mastodon/api/v1/statuses/{id}/context", context, name="mastodon:context")
    app.router.add_get("/mastodon/api/v1/accounts/verify_credentials", verify, name="mastodon:verify")
