"""GOV.UK Notify: SMS and email with a JWT (the 30-second clock rule), 3,000 a minute, references, statuses.

Error bodies are Notify's documented shape: {"errors": [{"error", "message"}], "status_code"}.
The rolling rate limit is `sandbox.store("notify")["rate_limit"] = (messages, seconds)`; None lifts it.
In the sandbox a number ending 002 ends `permanent-failure` and one ending 003 `temporary-failure`.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"{CREDENTIALS['notify'].replace('-', '_')}-{SERVICE_ID}-{SECRET}"  # keyname-serviceid-secret
SMS_TEMPLATE = "00000000-0000-4000-8000-000000000001"
EMAIL_TEMPLATE = "00000000-0000-4000-8000-000000000002"
TEMPLATES = {
    SMS_TEMPLATE: {"id": SMS_TEMPLATE, "name": "Emergency alert (SMS)", "type": "sms", "version": 1,
                   "body": "((message))", "subject": None},
    EMAIL_TEMPLATE: {"id": EMAIL_TEMPLATE, "name": "Emergency alert (email)", "type": "email", "version": 1,
                     "body": "((message))", "subject": "((subject))"},
}
RATE_LIMIT = (3000, 60.0)
CLOCK_SKEW = 30


def error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"error": kind, "message": message}], "status_code": status}, status=status)


def _claims(token: str) -> dict[str, Any]:
    import jwt

    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def uk_mobile(number: str) -> str:
    """Notify's own rule (notifications-utils): a UK mobile is 10 digits starting 7 after +44, 0044 or 0;
    an international number is + and 8 to 15 digits."""
    digits = "".join(c for c in number if c.isdigit())
    international = number.strip().startswith(("+", "00")) and not digits.startswith(("44", "0044"))
    if international:
        digits = digits.removeprefix("00")
        if 8 <= len(digits) <= 15:
            return f"+{digits}"
        raise ValueError("not an international number")
    for prefix in ("0044", "44", "0"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 10:
            digits = digits[len(prefix):]
            break
    if len(digits) != 10 or not digits.startswith("7"):
        raise ValueError("not a UK mobile number")
    return f"+44{digits}"


def register(sandbox: Sandbox, app: web.Application) -> None:
    def state() -> dict[str, Any]:
        store = sandbox.store("notify")
        store.setdefault("notifications", {})
        store.setdefault("references", {})
        store.setdefault("sent_at", deque())
        return store

    def authorise(request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return error(401, "AuthError", "Unauthorized: authentication token must be provided")
        token = header.removeprefix("Bearer ").strip()
        checked: dict[str, float] = sandbox.store("notify").setdefault("tokens", {})
        iat = checked.get(token)
        if iat is None:
            refused = verify(token)
            if refused:
                return refused
            iat = checked[token] = float(_claims(token)["iat"])
        if abs(time.time() - iat) > CLOCK_SKEW:  # checked on every request: a reused token ages
            return error(403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds")
        return None

    def verify(token: str) -> web.Response | None:
        import jwt

        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return error(403, "AuthError", "Invalid token: signature, api token is not valid")
        if claims.get("iss") != SERVICE_ID:
            return error(403, "AuthError", "Invalid token: service not found")
        try:
            jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"], "verify_iat": False})
        except jwt.PyJWTError:
            return error(403, "AuthError", "Invalid token: API key not found")
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
            return error(429, "RateLimitError", f"Exceeded rate limit for key type LIVE of {count} requests per "
                         f"{window:g} seconds")
        sent_at.append(now)
        return None

    async def notify(request: web.Request, kind: str) -> web.Response:
        from broadcast.prepare.recipients import normalise_email

        refused = authorise(request) or limited()
        if refused:
            return refused
        record = request[RECORD]
        body = record.body if isinstance(record.body, dict) else {}
        template = TEMPLATES.get(str(body.get("template_id")))
        if template is None or template["type"] != kind:
            return error(400, "BadRequestError", "Template not found")
        personalisation = body.get("personalisation") or {}
        for name in ("message",) + (("subject",) if kind == "email" else ()):
            if name not in personalisation:
                return error(400, "BadRequestError", f"Missing personalisation: {name}")
        field_name = "phone_number" if kind == "sms" else "email_address"
        try:
            contact = uk_mobile(str(body.get(field_name, ""))) if kind == "sms" else \
                normalise_email(str(body.get(field_name, "")))
        except ValueError:
            return error(400, "ValidationError", f"{field_name} Not a UK mobile number" if kind == "sms"
                         else f"{field_name} Not a valid email address")
        notification_id = str(uuid.uuid4())
        reference = body.get("reference")
        notification = {
            "id": notification_id, "reference": reference, "type": kind, field_name: contact,
            "status": "created", "created_at": datetime.now(UTC).isoformat(), "created": time.monotonic(),
            "body": personalisation["message"], "subject": personalisation.get("subject"),
            "template": {"id": template["id"], "version": 1, "uri": f"{sandbox.url}/notify/v2/template/"
                         f"{template['id']}"},
        }
        store = state()
        store["notifications"][notification_id] = notification
        if reference:
            store["references"].setdefault(reference, []).append(notification_id)
        record.accepted = True
        content = {"body": personalisation["message"]}
        content |= {"from_number": "GOVUK"} if kind == "sms" else {"subject": personalisation["subject"],
                                                                   "from_email": "alerts@notifications.example"}
        return web.json_response({"id": notification_id, "reference": reference, "content": content,
                                  "uri": f"{sandbox.url}/notify/v2/notifications/{notification_id}",
                                  "template": notification["template"], "scheduled_for": None}, status=201)

    def public(notification: dict[str, Any]) -> dict[str, Any]:
        status = notification["status"]
        if time.monotonic() - notification["created"] > 0.2:
            contact = str(notification.get("phone_number") or "")
            status = ("permanent-failure" if contact.endswith("002") else "temporary-failure"
                      if contact.endswith("003") else "delivered")
        return {k: v for k, v in notification.items() if k != "created"} | {"status": status}

    async def send_sms(request: web.Request) -> web.Response:
        return await notify(request, "sms")

    async def send_email(request: web.Request) -> web.Response:
        return await notify(request, "email")

    async def find(request: web.Request) -> web.Response:
        refused = authorise(request)
        if refused:
            return refused
        store = state()
        reference = request.query.get("reference")
        ids = store["references"].get(reference, []) if reference else list(store["notifications"])
        return web.json_response({"notifications": [public(store["notifications"][i]) for i in reversed(ids)],
                                  "links": {"current": f"{sandbox.url}{request.path_qs}"}})

    async def one(request: web.Request) -> web.Response:
        refused = authorise(request)
        if refused:
            return refused
        notification = state()["notifications"].get(request.match_info["id"])
        if notification is None:
            return error(404, "NoResultFound", "No result found")
        return web.json_response(public(notification))

    async def template(request: web.Request) -> web.Response:
        refused = authorise(request)
        if refused:
            return refused
        found = TEMPLATES.get(request.match_info["id"])
        return web.json_response(found) if found else error(404, "NoResultFound", "No result found")

    # Under /notify/ (the adapter's api setting) and at the root too, where notifications-python-client looks (it
    # takes a base URL but drops any path after the host).
    for root, suffix in (("/notify", ""), ("", "-root")):
        app.router.add_post(f"{root}/v2/notifications/sms", send_sms, name="notify:sms" + suffix)
        app.router.add_post(f"{root}/v2/notifications/email", send_email, name="notify:email" + suffix)
        app.router.add_get(f"{root}/v2/notifications", find, name="notify:find" + suffix)
        app.router.add_get(f"{root}/v2/notifications/{{id}}", one, name="notify:one" + suffix)
        app.router.add_get(f"{root}/v2/template/{{id}}", template, name="notify:template" + suffix)
