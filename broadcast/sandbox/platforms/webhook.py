"""Our signed webhook: any number of receivers at /hooks/<name>, checking Standard Webhooks signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox


def register(sandbox: Sandbox, app: web.Application) -> None:
    async def receive(request: web.Request) -> web.Response:
        from standardwebhooks import Webhook, WebhookVerificationError

        raw = await request.read()
        try:
            Webhook(CREDENTIALS["webhook"]).verify(raw, dict(request.headers), json_parse=False)
        except WebhookVerificationError as exc:
            return web.json_response({"error": f"signature: {exc}"}, status=401)
        seen = sandbox.store("webhook").setdefault("seen", set())
        key = (request.match_info["target"], request.headers["webhook-id"])
        if key not in seen:  # a receiver dedupes on webhook-id, as the spec asks
            seen.add(key)
            request[RECORD].accepted = True
        return web.json_response({"ok": True})

    app.router.add_post("/hooks/{target}", receive, name="webhook:receive")
