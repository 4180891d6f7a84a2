"""Telegram Bot API: the token in the path, sendMessage up to 4096 characters, deleteMessage within 48 hours."""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

MAX_CHARACTERS = 4096
DELETE_WINDOW = 48 * 3600.0
TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
USERNAME_RE = re.compile(r"^@([A-Za-z][A-Za-z0-9_]{4,31})$")


def register(sandbox: Sandbox, app: web.Application) -> None:
    def messages() -> dict[str, dict[str, Any]]:
        """Sent messages by "<chat id>/<message id>"; a test backdates one by lowering its "date"."""
        return sandbox.store("telegram").setdefault("messages", {})

    def failed(code: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    def ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def refused(request: web.Request) -> web.Response | None:
        token = request.match_info["token"]
        if token == CREDENTIALS["telegram"]:
            return None
        # A well-formed token that is wrong is Unauthorized; anything else is not a bot's address at all.
        return failed(401, "Unauthorized") if TOKEN_RE.match(token) else failed(404, "Not Found")

    def chat(value: Any) -> dict[str, Any] | None:
        text = str(value)
        if match := USERNAME_RE.match(text):
            digits = int(hashlib.sha256(match.group(1).lower().encode()).hexdigest()[:10], 16) % 10**10
            return {"id": -1000000000000 - digits, "title": match.group(1), "username": match.group(1),
                    "type": "channel"}
        if re.fullmatch(r"-100\d{10}", text):
            return {"id": int(text), "title": "Private channel", "type": "channel"}
        return None

    def params(request: web.Request) -> dict[str, Any]:
        body = request[RECORD].body
        return body if isinstance(body, dict) else {}

    async def get_me(request: web.Request) -> web.Response:
        if response := refused(request):
            return response
        return ok({"id": int(CREDENTIALS["telegram"].split(":")[0]), "is_bot": True,
                   "first_name": "Testshire Alerts", "username": "testshire_alerts_bot"})

    async def send_message(request: web.Request) -> web.Response:
        if response := refused(request):
            return response
        data = params(request)
        target = chat(data.get("chat_id"))
        if target is None:
            return failed(400, "Bad Request: chat not found")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return failed(400, "Bad Request: message text is empty")
        if len(text) > MAX_CHARACTERS:
            return failed(400, "Bad Request: message is too long")
        message_id = int(sandbox.next_id())
        message = {"message_id": message_id, "sender_chat": target, "chat": target, "date": int(time.time()),
                   "text": text, "link_preview_options": data.get("link_preview_options", {})}
        messages()[f"{target['id']}/{message_id}"] = message
        request[RECORD].accepted = True
        return ok(message)

    async def delete_message(request: web.Request) -> web.Response:
        if response := refused(request):
            return response
        data = params(request)
        target = chat(data.get("chat_id"))
        if target is None:
            return failed(400, "Bad Request: chat not found")
        key = f"{target['id']}/{data.get('message_id')}"
        message = messages().get(key)
        if message is None:
            return failed(400, "Bad Request: message to delete not found")
        if message["date"] < time.time() - DELETE_WINDOW:
            return failed(400, "Bad Request: message can't be deleted")
        del messages()[key]
        return ok(True)

    app.router.add_route("*", "/telegram/bot{token}/getMe", get_me, name="telegram:getMe")
    app.router.add_post("/telegram/bot{token}/sendMessage", send_message, name="telegram:sendMessage")
    app.router.add_post("/telegram/bot{token}/deleteMessage", delete_message, name="telegram:deleteMessage")
