"""GOV.UK Notify: POST /v2/notifications/sms and /email with a JWT; our key is the `reference`, checked first."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError, Receipt, post_json
from broadcast.channels.lists import ListChannel

if TYPE_CHECKING:
    import httpx

    from broadcast.channels.base import Post
    from broadcast.prepare.recipients import Recipient

API = "https://api.notifications.service.gov.uk"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEY_RE = re.compile(rf"^(?P<name>.+)-(?P<service>{UUID})-(?P<secret>{UUID})$")
TOKEN_LIFE = 10.0  # seconds a token is reused; Notify refuses one whose iat is more than 30 s off its clock
KEY_HINT = ("create an API key in GOV.UK Notify (API integration > API keys), put the whole key in the environment "
            "variable named in the channel file, then resend")
# Notify's documented errors (error, words in the message) -> what to do next.
HINTS = (
    ("AuthError", "clock", "this machine's clock is more than 30 seconds out: set it right (timedatectl), then resend"),
    ("AuthError", "", KEY_HINT),
    ("BadRequestError", "trial mode", "the Notify service is in trial mode: it can only text its own team; ask "
                                      "Notify to make it live"),
    ("BadRequestError", "team-only", "this is a team-only (or test) API key: use a live key"),
    ("BadRequestError", "template", "check sms_template_id / email_template_id in the channel file against Notify's "
                                    "Templates page"),
    ("BadRequestError", "personalisation", "the Notify template must contain ((message)) (and ((subject)) for email)"),
    ("ValidationError", "", "this recipient's contact was refused: check their row in the list"),
    ("RateLimitError", "", "Notify's 3,000 a minute limit: lower settings.rate; the send goes on after a pause"),
    ("TooManyRequestsError", "", "Notify's daily limit is reached (it resets at midnight UTC): send the rest through "
                                 "the backup route (broadcast channels enable sms-twilio-backup)"),
    ("Exception", "", "Notify had an internal error: a resend may help"),
)


class Notify(ListChannel):
    kind = "govuk-notify"
    variant = "short"
    unit = "SMS segments"
    checkable = True
    idempotent = True  # not by itself: `reference` is looked up before any resend, so nobody is sent it twice
    default_rate = 50.0  # 3,000 messages a minute per API key
    default_max_segments = 6  # Notify takes up to 918 characters
    bulk_concurrency = 100
    secret_keys = ("api_key",)

    def __init__(self, config: Any, page_url: str):
        settings = config.settings
        self.media = tuple(m for m in ("sms", "email") if settings.get(f"{m}_template_id"))
        super().__init__(config, page_url)
        if not self.media:
            from broadcast.errors import ConfigError

            raise ConfigError(config.path, "settings.sms_template_id", "set sms_template_id, email_template_id "
                              "or both", "copy the template ID from the template's page in GOV.UK Notify")
        self._token: tuple[float, str] | None = None

    @property
    def api(self) -> str:
        return self.api_base("api", API)

    def _key(self) -> tuple[str, str]:
        match = KEY_RE.match(self.secret("api_key").strip())
        if not match:
            raise ChannelError(f"{self.name}: the API key is not in Notify's form (key name, service ID, secret)",
                               transient=False, hint=KEY_HINT)
        return match["service"], match["secret"]

    def token(self) -> str:
        """A JWT (HS256, iss = service ID, iat = now) signed with the key's secret, reused for a few seconds."""
        now = time.time()
        if self._token is None or now - self._token[0] > TOKEN_LIFE:
            import jwt

            service, secret = self._key()
            self._token = (now, jwt.encode({"iss": service, "iat": int(now)}, secret, algorithm="HS256",
                                           headers={"typ": "JWT"}))
        return self._token[1]

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    async def deliver(self, post: Post, recipient: Recipient, client: httpx.AsyncClient, key: str) -> Receipt:
        if recipient.medium == "sms":
            path, body = "sms", {"phone_number": recipient.contact, "template_id": self.setting("sms_template_id"),
                                 "personalisation": {"message": post.text}, "reference": key}
            if self.settings.get("sms_sender_id"):
                body["sms_sender_id"] = str(self.settings["sms_sender_id"])
        else:
            email = self.email_of(post).extra
            path, body = "email", {"email_address": recipient.contact,
                                   "template_id": self.setting("email_template_id"), "reference": key,
                                   "personalisation": {"subject": email["subject"], "message": email["text"]}}
            if self.settings.get("email_reply_to_id"):
                body["email_reply_to_id"] = str(self.settings["email_reply_to_id"])
        answer = await post_json(client, f"{self.api}/v2/notifications/{path}", body, self._headers())
        if answer.status != 201:
            raise self.error(answer.status, answer.response().text, "sending")
        return Receipt(remote_id=str(json.loads(answer.body)["id"]))

    async def lookup(self, key: str, client: httpx.AsyncClient, *, recipient: Recipient | None = None,
                     post: Post | None = None, since: str | None = None) -> Receipt | None:
        """Notify's notification with our reference, if one was made (a resend then sends nothing)."""
        response = await client.get(f"{self.api}/v2/notifications", params={"reference": key},
                                    headers=self._headers())
        if response.status_code != 200:
            raise self.error(response.status_code, response.text, "looking up a reference")
        found = json.loads(response.content).get("notifications") or []
        if not found:
            return None
        return Receipt(remote_id=str(found[0]["id"]), note=f"already at Notify ({found[0].get('status')})")

    receipts = True
    # Notify's statuses (docs.notifications.service.gov.uk, "Get the status of one message").
    FAILED = ("permanent-failure", "temporary-failure", "technical-failure", "validation-failed",
              "virus-scan-failed")

    async def receipt(self, remote_id: str, client: httpx.AsyncClient) -> tuple[str, str | None]:
        """GET /v2/notifications/{id}: delivered, one of the failures (with its name as the reason), or pending."""
        response = await client.get(f"{self.api}/v2/notifications/{remote_id}", headers=self._headers())
        if response.status_code != 200:
            raise self.error(response.status_code, response.text, "reading a message's status")
        status = str(json.loads(response.content).get("status", ""))
        if status == "delivered":
            return "delivered", None
        return ("failed", status) if status in self.FAILED else ("pending", status or None)

    async def check(self, client: httpx.AsyncClient) -> str:
        service, _ = self._key()
        names = []
        for medium in self.media:
            template = self.setting(f"{medium}_template_id")
            response = await client.get(f"{self.api}/v2/template/{template}", headers=self._headers())
            if response.status_code != 200:
                raise self.error(response.status_code, response.text, f"reading the {medium} template")
            names.append(f"{medium} template '{response.json().get('name')}'")
        return f"service {service}, {', '.join(names)}"

    def error(self, status: int, text: str, what: str) -> ChannelError:
        """Notify's error body ({"errors": [{"error", "message"}], "status_code"}) turned into a hint."""
        try:
            errors = json.loads(text).get("errors") or []
            kind, message = str(errors[0].get("error", "")), str(errors[0].get("message", ""))
        except (ValueError, AttributeError, IndexError, TypeError):
            kind, message = "", text[:200].strip() or "(no body)"
        # A success status without Notify's answer (a proxy's page): it may have been sent; a retry looks it up first.
        unknown = 200 <= status < 300
        transient = status >= 500 or unknown or kind == "RateLimitError" or (
            status == 429 and kind != "TooManyRequestsError")
        hint = next((h for error, words, h in HINTS if error == kind and words in message.lower()),
                    "a retry may help" if transient else "a retry will not help")
        label = f" {kind}" if kind else ""
        return ChannelError(f"{self.name}: Notify ({what}) answered HTTP {status}{label}: {message}",
                            transient=transient, status=status, hint=hint, unknown_outcome=unknown)
