"""Slack incoming webhooks: /services/T…/B…/<secret>, plain-text answers, Block Kit limits, archived channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

TEXT_MAX = 40_000  # Slack truncates `text` beyond this rather than refusing it
MAX_BLOCKS = 50
BLOCK_TEXT_MAX = {"header": 150, "section": 3000, "context": 3000}


def register(sandbox: Sandbox, app: web.Application) -> None:
    """Set `sandbox.store("slack")["archived"] = True` to answer 410 channel_is_archived."""

    def answer(status: int, text: str) -> web.Response:
        return web.Response(status=status, text=text, content_type="text/html")  # what Slack sends

    async def post(request: web.Request) -> web.Response:
        if request.match_info["secret"] != CREDENTIALS["slack"]:
            return answer(404, "no_service")
        store = sandbox.store("slack")
        if store.get("archived"):
            return answer(410, "channel_is_archived")
        body = request[RECORD].body
        if not isinstance(body, dict):
            return answer(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return answer(400, "no_text")
        if not _blocks_valid(body.get("blocks", [])):
            return answer(400, "invalid_blocks")
        text = str(body.get("text", ""))
        store.setdefault("messages", []).append({
            "text": text[:TEXT_MAX], "truncated": len(text) > TEXT_MAX, "blocks": body.get("blocks", []),
            "shown": _unescape(text[:TEXT_MAX]),
        })
        request[RECORD].accepted = True
        return answer(200, "ok")

    app.router.add_post("/slack/services/{team}/{bot}/{secret}", post, name="slack:post")


def _unescape(text: str) -> str:
    """What a reader sees: Slack decodes its three entities, and no others."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _blocks_valid(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return False
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TEXT_MAX:
            return False
        texts: list[Any] = [block.get("text")] if block["type"] != "context" else block.get("elements", [])
        limit = BLOCK_TEXT_MAX[block["type"]]
        if not texts or any(not isinstance(t, dict) or not t.get("text") or len(t["text"]) > limit for t in texts):
            return False
        if block["type"] == "header" and texts[0]["type"] != "plain_text":
            return False
    return True
