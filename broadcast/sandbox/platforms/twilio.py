"""Twilio: the Messages API (form-encoded, Basic auth), error 20429 under load, message status.

Error bodies are Twilio's shape: {"code", "message", "more_info", "status"}. The rolling limit that answers
429 / 20429 is `sandbox.store("twilio")["rate_limit"] = (requests, seconds)`; None lifts it.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import deque
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

ACCOUNT_SID = "AC5a4db0c55a4db0c55a4db0c55a4db0c5"
AUTH_TOKEN = CREDENTIALS["twilio"]
MESSAGING_SERVICE_SID = "MG00000000000000000000000000000000"
RATE_LIMIT = (100, 1.0)
MAX_BODY = 1600


def error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/"
                              f"{code}", "status": status}, status=status)


def register(sandbox: Sandbox, app: web.Application) -> None:
    def state() -> dict[str, Any]:
        store = sandbox.store("twilio")
        store.setdefault("messages", {})
        store.setdefault("sent_at", deque())
        return store

    def authorise(request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}" or request.match_info["sid"] != ACCOUNT_SID:
            return error(401, 20003, "Authenticate")
        return None

    def limited() -> web.Response | None:
        limit = state().get("rate_limit", RATE_LIMIT)
        if not limit:
            return None
        count, window = limit
        sent_at: deque[float] = state()["sent_at"]
        now = time.monotonic()
        while sent_at and now - sent_at[0] > window:
            sent_at.popleft()
        if len(sent_at) >= count:
            return error(429, 20429, "Too Many Requests")
        sent_at.append(now)
        return None

    async def create(request: web.Request) -> web.Response:
        from broadcast.channels.sms import segments
        from broadcast.prepare.recipients import normalise_phone

        refused = authorise(request) or limited()
        if refused:
            return refused
        record = request[RECORD]
        form = record.body if isinstance(record.body, dict) else {}
        to, text = str(form.get("To", "")), str(form.get("Body", ""))
        try:
            to = normalise_phone(to)
        except ValueError:
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not text:
            return error(400, 21602, "Message body is required.")
        if len(text) > MAX_BODY:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        service, sender = form.get("MessagingServiceSid"), form.get("From")
        if not service and not sender:
            return error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        if service and service != MESSAGING_SERVICE_SID:
            return error(400, 21701, "The Messaging Service Sid is invalid.")
        sid = "SM" + uuid.uuid4().hex
        message = {"sid": sid, "account_sid": ACCOUNT_SID, "to": to, "from": sender, "messaging_service_sid": service,
                   "body": text, "status": "accepted" if service else "queued", "num_segments":
                   str(segments(text).parts), "error_code": None, "error_message": None,
                   "date_created": formatdate(usegmt=True), "created": time.monotonic(),
                   "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"}
        state()["messages"][sid] = message
        record.accepted = True
        return web.json_response(public(message), status=201)

    def public(message: dict[str, Any]) -> dict[str, Any]:
        status = "delivered" if time.monotonic() - message["created"] > 0.2 else message["status"]
        return {k: v for k, v in message.items() if k != "created"} | {"status": status}

    async def fetch(request: web.Request) -> web.Response:
        refused = authorise(request)
        if refused:
            return refused
        message = state()["messages"].get(request.match_info["message"])
        if message is None:
            return error(404, 20404, "The requested resource was not found")
        return web.json_response(public(message))

    async def listing(request: web.Request) -> web.Response:
        """GET Messages.json: newest first, filtered by To and DateSent>= (a day) as Twilio's list API is."""
        from email.utils import parsedate_to_datetime

        refused = authorise(request)
        if refused:
            return refused
        to, day = request.query.get("To"), request.query.get("DateSent>")
        found = [m for m in state()["messages"].values() if (not to or m["to"] == to)
                 and (not day or f"{parsedate_to_datetime(m['date_created']).date():%Y-%m-%d}" >= day)]
        size = int(request.query.get("PageSize", "50"))
        return web.json_response({"messages": [public(m) for m in reversed(found)][:size], "page_size": size,
                                  "next_page_uri": None})

    async def account(request: web.Request) -> web.Response:
        refused = authorise(request)
        if refused:
            return refused
        return web.json_response({"sid": ACCOUNT_SID, "friendly_name": "Sandbox council", "status": "active"})

    base = "/twilio/2010-04-01/Accounts/{sid}"
    app.router.add_post(f"{base}/Messages.json", create, name="twilio:create")
    app.router.add_get(f"{base}/Messages.json", listing, name="twilio:list")
    app.router.add_get(f"{base}/Messages/{{message}}.json", fetch, name="twilio:fetch")
    app.router.add_get(f"{base}.json", account, name="twilio:account")
