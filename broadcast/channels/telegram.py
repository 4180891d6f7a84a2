"""Telegram: a bot posts to a channel with sendMessage; deleteMessage works for 48 hours only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from broadcast.channels.base import Channel, ChannelError, Post, Receipt, parse_retry_after, post_json, read

if TYPE_CHECKING:
    import httpx

TOKEN_HINT = ("the bot token was refused: get the current one from @BotFather (/token), put it in the environment "
              "variable named in the channel file, then resend")
CHAT_HINT = ("check settings.chat_id (\"@channelname\" or the numeric id) and that the bot is an administrator of "
             "the channel with the right to post messages")


class Telegram(Channel):
    kind = "telegram"
    variant = "body"
    limit = 4096
    unit = "characters"
    concurrency = 1  # about one message a second to one chat
    idempotent = False  # sendMessage takes no key: a resend after a lost answer can post twice
    can_retract = True
    secret_keys = ("bot_token",)
    engagement_note: ClassVar[str] = ("the Bot API gives bots no counts for a channel post: no views, and "
                                      "reactions only as live updates to a running bot")

    @property
    def chat_id(self) -> str:
        return self.setting("chat_id")

    def _url(self, method: str) -> str:
        api = self.setting("api", "https://api.telegram.org").rstrip("/")
        return f"{api}/bot{self.secret('bot_token')}/{method}"

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        result = await self._call(client, "sendMessage", {
            "chat_id": self.chat_id, "text": post.text, "link_preview_options": {"is_disabled": False}})
        chat = result.get("chat", {})
        message_id = result["message_id"]
        username = chat.get("username") or (self.chat_id[1:] if self.chat_id.startswith("@") else None)
        # The chat goes into the id: message ids count per chat, and a retraction must reach the same chat
        # even if the channel file has been changed since.
        return Receipt(remote_id=f"{chat.get('id', self.chat_id)}/{message_id}",
                       url=f"https://t.me/{username}/{message_id}" if username else None)

    async def retract(self, receipt: Receipt, client: httpx.AsyncClient) -> None:
        chat_id, _, message_id = (receipt.remote_id or "").rpartition("/")
        try:
            await self._call(client, "deleteMessage", {"chat_id": chat_id or self.chat_id,
                                                       "message_id": int(message_id)})
        except ChannelError as exc:
            if "message to delete not found" in exc.message:
                return  # already gone
            if "can't be deleted" in exc.message:
                exc.hint = ("Telegram lets a bot delete a message only within 48 hours of sending it (and only "
                            "with the right to delete messages): post a correction instead")
            raise

    async def check(self, client: httpx.AsyncClient) -> str:
        me = await self._call(client, "getMe", None)
        return f"posting as @{me.get('username')} to {self.chat_id}"

    async def _call(self, client: httpx.AsyncClient, method: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """Call one Bot API method; every answer is {ok, result} or {ok: false, error_code, description}."""
        url = self._url(method)
        answer = await post_json(client, url, payload) if payload is not None else read(await client.get(url))
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("ok") is True:
            result: dict[str, Any] = data["result"]
            return result
        if not isinstance(data, dict) and answer.status < 300:
            raise ChannelError(f"{self.name}: Telegram {method} answered HTTP {answer.status} with something "
                               "that is not the Bot API's JSON", transient=True, unknown_outcome=True,
                               status=answer.status, hint="check the channel by hand before resending")
        raise self._error(method, url, answer.response(), data if isinstance(data, dict) else {})

    def _error(self, method: str, url: str, response: httpx.Response, data: dict[str, Any]) -> ChannelError:
        status = int(data.get("error_code") or response.status_code)
        description = str(data.get("description") or "")
        if not description:
            body = response.text[:200].strip()
            description = "(an HTML error page)" if body.startswith("<") else body or f"HTTP {status}"
        parameters = data.get("parameters") or {}
        retry_after = parameters.get("retry_after")
        transient = status == 429 or status >= 500
        hint = None
        if status in (401, 404) and not description.startswith("Bad Request"):
            hint = TOKEN_HINT  # Telegram answers 401 for a revoked token and 404 for one that was never valid
        elif "chat not found" in description or status == 403:
            hint = CHAT_HINT
        elif "migrate_to_chat_id" in parameters:
            hint = f"the group became a supergroup: set settings.chat_id = \"{parameters['migrate_to_chat_id']}\""
        # The URL holds the bot token; ChannelError masks it, so the officer still sees which address failed.
        return ChannelError(
            f"{self.name}: Telegram {method} ({url}) answered {status}: {description}",
            transient=transient, status=status,
            retry_after=float(retry_after) if isinstance(retry_after, int | float)
            else parse_retry_after(response.headers.get("retry-after")),
            hint=hint or ("a retry may help" if transient else "a retry will not help; check the message"))
