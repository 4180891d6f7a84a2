"""Twilio: POST /2010-04-01/Accounts/{sid}/Messages.json (form-encoded, Basic auth); 20429 is always safe to retry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError, Receipt, parse_retry_after, post_form
from broadcast.channels.lists import ListChannel

if TYPE_CHECKING:
    import httpx

    from broadcast.channels.base import Post
    from broadcast.prepare.recipients import Recipient

API = "https://api.twilio.com"
AUTH_HINT = ("check the Account SID and Auth Token (Twilio Console > Account info), put them in the environment "
             "variables named in the channel file, then resend")
# Twilio error codes (twilio.com/docs/api/errors) -> (retry helps, what to do next).
CODES: dict[int, tuple[bool, str]] = {
    20003: (False, AUTH_HINT),
    20429: (True, "Twilio asked us to slow down: the send goes on after a pause"),
    21211: (False, "Twilio refused this number: check the person's row in the list"),
    21408: (False, "the account may not send to this country: enable it under Messaging > Geo permissions"),
    21606: (False, "the From number cannot send texts: set messaging_service_sid or another from"),
    21610: (False, "this person replied STOP to our number: Twilio will not text them (add them to "
                   "lists/opt-out.csv)"),
    21614: (False, "this number cannot receive texts (a landline?)"),
    30001: (True, "Twilio's queue is full: lower settings.rate"),
    63017: (True, "the account is above its messages-per-second limit: lower settings.rate"),
}


class Twilio(ListChannel):
    kind = "twilio"
    variant = "short"
    unit = "SMS segments"
    media = ("sms",)
    checkable = True  # no key of ours on a message, but its list can be asked by recipient, day and text
    idempotent = False
    default_rate = 10.0  # segments a second per sender; set your senders' own figure in settings.rate
    default_max_segments = 10  # Body takes up to 1,600 characters
    bulk_concurrency = 50
    paced_by_segment = True
    secret_keys = ("account_sid", "auth_token")

    def __init__(self, config: Any, page_url: str):
        super().__init__(config, page_url)
        if not (self.settings.get("messaging_service_sid") or self.settings.get("from")):
            from broadcast.errors import ConfigError

            raise ConfigError(config.path, "settings.messaging_service_sid", "set messaging_service_sid or from",
                              "a Messaging Service SID starts MG; a from number is in E.164 (+44...)")

    @property
    def api(self) -> str:
        return self.api_base("api", API)

    def _account(self) -> str:
        return f"{self.api}/2010-04-01/Accounts/{self.secret('account_sid')}"

    async def open(self, client: httpx.AsyncClient) -> None:
        import base64

        # HTTP Basic (RFC 7617), made once per run: httpx's BasicAuth would build it again for every request, and a
        # client with auth cannot take the lean POST.
        pair = f"{self.secret('account_sid')}:{self.secret('auth_token')}".encode()
        self._auth = {"authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    async def deliver(self, post: Post, recipient: Recipient, client: httpx.AsyncClient, key: str) -> Receipt:
        form = {"To": recipient.contact, "Body": post.text}
        if self.settings.get("messaging_service_sid"):
            form["MessagingServiceSid"] = str(self.settings["messaging_service_sid"])
        else:
            form["From"] = str(self.settings["from"])
        for name, setting in (("ValidityPeriod", "validity_period"), ("StatusCallback", "status_callback")):
            if self.settings.get(setting):
                form[name] = str(self.settings[setting])
        answer = await post_form(client, f"{self._account()}/Messages.json", form, self._auth)
        if answer.status not in (200, 201):
            response = answer.response()
            raise self.error(answer.status, response.text, "sending", response.headers.get("Retry-After"))
        return Receipt(remote_id=str(json.loads(answer.body)["sid"]))

    async def lookup(self, key: str, client: httpx.AsyncClient, *, recipient: Recipient | None = None,
                     post: Post | None = None, since: str | None = None) -> Receipt | None:
        """A message Twilio made to this person with exactly this text since the alert was sent, if any
        (GET Messages.json filtered by To and DateSent, as Twilio's list API allows)."""
        from datetime import UTC, datetime, timedelta
        from email.utils import parsedate_to_datetime

        if recipient is None or post is None or since is None:
            return None
        start = datetime.fromisoformat(since) - timedelta(minutes=1)
        params = {"To": recipient.contact, "DateSent>": f"{start.astimezone(UTC):%Y-%m-%d}", "PageSize": "50"}
        response = await client.get(f"{self._account()}/Messages.json", params=params, headers=self._auth)
        if response.status_code != 200:
            raise self.error(response.status_code, response.text, "looking up earlier messages",
                             response.headers.get("Retry-After"))
        messages = json.loads(response.content).get("messages") or []
        for message in messages:
            created = message.get("date_created")
            made = parsedate_to_datetime(created) if created else None
            if message.get("body") == post.text and made is not None and made >= start:
                return Receipt(remote_id=str(message["sid"]), note=f"already at Twilio ({message.get('status')})")
        return None

    receipts = True

    async def receipt(self, remote_id: str, client: httpx.AsyncClient) -> tuple[str, str | None]:
        """GET Messages/{sid}.json: delivered, undelivered or failed (with Twilio's error code), or still on its way."""
        response = await client.get(f"{self._account()}/Messages/{remote_id}.json", headers=self._auth)
        if response.status_code != 200:
            raise self.error(response.status_code, response.text, "reading a message's status",
                             response.headers.get("Retry-After"))
        message = json.loads(response.content)
        status = str(message.get("status", ""))
        if status == "delivered":
            return "delivered", None
        if status in ("undelivered", "failed"):
            code = message.get("error_code")
            return "failed", f"{status} (error {code})" if code else status
        return "pending", status or None

    async def check(self, client: httpx.AsyncClient) -> str:
        response = await client.get(f"{self._account()}.json",
                                    auth=(self.secret("account_sid"), self.secret("auth_token")))
        if response.status_code != 200:
            raise self.error(response.status_code, response.text, "reading the account")
        account = response.json()
        return f"account '{account.get('friendly_name')}' ({account.get('status')})"

    def error(self, status: int, text: str, what: str, retry_after: str | None = None) -> ChannelError:
        """Twilio's error body ({"code", "message", "more_info", "status"}) turned into a hint."""
        try:
            body = json.loads(text)
            code, message = int(body.get("code") or 0), str(body.get("message", ""))
        except (ValueError, AttributeError, TypeError):
            code, message = 0, text[:200].strip() or "(no body)"
        transient, hint = CODES.get(code, (status == 429 or status >= 500,
                                           AUTH_HINT if status == 401 else "a retry will not help"))
        label = f" error {code}" if code else ""
        return ChannelError(f"{self.name}: Twilio ({what}) answered HTTP {status}{label}: {message}",
                            transient=transient, status=status, retry_after=parse_retry_after(retry_after),
                            hint=hint)
