"""What a channel that sends to a recipient list adds to an adapter: its list, its media, its rate, its cost.

List channels (govuk-notify, twilio, smtp) are sent by `broadcast.send.bulk`, one delivery per person, not by the
fan-out: `deliver` takes a person and the process's sending client (the fan-out's, with its lean POST) instead of
`send`'s one post per channel.
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from broadcast.channels.base import Channel, ChannelError, Post, Receipt
from broadcast.channels.sms import count_segments, segments
from broadcast.channels.textfit import fit
from broadcast.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from broadcast.alert import Alert
    from broadcast.prepare.recipients import Recipient

EMAIL_LIMIT = 100_000


class ListChannel(Channel):
    """A channel whose audience is a list in lists/: texts or emails, one per person."""

    per_person: ClassVar[bool] = True
    media: tuple[str, ...] = ("sms",)  # which contacts of a row it uses; an instance may set its own
    checkable: ClassVar[bool] = False  # can ask the platform whether a delivery (by our key) already went
    bulk_concurrency: ClassVar[int] = 100  # requests in flight at once (rate limits still apply)
    default_rate: ClassVar[float] = 0.0  # messages (SMS: segments) a second; 0 means no limit of ours
    default_max_segments: ClassVar[int] = 6
    paced_by_segment: ClassVar[bool] = False  # the rate counts segments (Twilio's MPS), not messages

    def __init__(self, config: Any, page_url: str):
        super().__init__(config, page_url)
        from broadcast.workspace import check_name

        self.list_name = check_name("list", self.setting("list"))
        if not self.list_file(config.path.parent.parent).is_file():
            raise ChannelError(f"{self.name}: no list lists/{self.list_name}.csv on this machine", transient=False,
                               hint="lists hold personal data and are git-ignored: copy the list into lists/ "
                               "(format: channels/README.md, section lists)")
        self.max_segments = self._number("max_segments", self.default_max_segments, whole=True)
        self.rate = self._number("rate", self.default_rate)
        self.concurrency_limit = self._number("concurrency", self.bulk_concurrency, whole=True)
        price = "price_per_segment" if "sms" in self.media else "price_per_message"
        self.price: float | None = self._number(price, 0.0) if price in self.settings else None
        self.currency = str(self.settings.get("currency", "£"))

    @property
    def resend_is_safe(self) -> bool:
        return self.idempotent or self.checkable  # a checkable platform is asked before anything is sent again

    def _number(self, key: str, default: float, *, whole: bool = False) -> Any:
        value = self.settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (whole and value < 1):
            raise ConfigError(self.config.path, f"settings.{key}", f"expected a number above 0, got {value!r}")
        return int(value) if whole else float(value)

    def list_file(self, root: Path) -> Path:
        from broadcast.prepare.recipients import list_path

        return list_path(root, self.list_name)

    # -- what goes out ----------------------------------------------------------------------------
    def prepare(self, alert: Alert, language: str) -> Post:
        """The SMS text fitted to max_segments (by textfit's rule), or the email, per language."""
        if "sms" not in self.media:
            return self.email_post(alert, language)
        info = alert.info(language)
        fitted = fit(self.text_parts(alert, language), headline=info.headline, link=info.web,
                     count=count_segments, limit=self.max_segments, channel=self.name, unit="SMS segments")
        counted = segments(fitted.text)
        extra: dict[str, Any] = {"encoding": counted.encoding, "units": counted.units}
        if "email" in self.media:
            extra["email"] = self.email_post(alert, language).extra
        unit = f"SMS segments ({counted.encoding}, {counted.units} {_unit(counted.encoding)})"
        return Post(self.name, language, fitted.text, fitted.count, fitted.limit, unit, fitted.shortened, extra)

    def with_max_segments(self, count: int) -> None:
        """Keep each text within `count` segments (--one-segment)."""
        self.max_segments = count

    def email_post(self, alert: Alert, language: str) -> Post:
        info = alert.info(language)
        parts = [(str(text), bool(optional)) for text, optional in info.texts.get("body", [])]
        body = fit(parts, headline=info.headline, link=info.web, count=len, limit=EMAIL_LIMIT, channel=self.name)
        paragraphs = [body.text] + ([info.instruction] if info.instruction else [])
        more = "" if info.web in body.text else info.web
        text = "\n\n".join(paragraphs + ([f"More information: {more}"] if more else [])) + "\n"
        markup = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        if more:
            markup += f'<p>More information: <a href="{html.escape(more, quote=True)}">{html.escape(more)}</a></p>'
        page = (f'<!doctype html><html lang="{html.escape(language, quote=True)}"><head><meta charset="utf-8">'
                f"<title>{html.escape(info.headline)}</title></head><body><h1>{html.escape(info.headline)}</h1>"
                f"{markup}</body></html>")
        extra = {"subject": info.headline, "text": text, "html": page}
        return Post(self.name, language, text, len(text), EMAIL_LIMIT, "characters (email)", body.shortened, extra)

    def units(self, post: Post, medium: str) -> int:
        """What one delivery costs in the price's unit: segments for a text, 1 for an email."""
        return post.count if medium == "sms" and post.unit.startswith("SMS") else 1

    def email_of(self, post: Post) -> Post:
        """The email half of a post that carries both (a Notify channel with both template ids)."""
        if "subject" in post.extra:
            return post
        return replace(post, text=post.extra["email"]["text"], extra=post.extra["email"])

    # -- sending, one person at a time --------------------------------------------------------------
    async def open(self, client: httpx.AsyncClient) -> None:
        """Get ready to deliver (connections, tokens); called once per run."""

    async def close(self) -> None:
        """Release what `open` took."""

    async def deliver(self, post: Post, recipient: Recipient, client: httpx.AsyncClient, key: str) -> Receipt:
        raise NotImplementedError

    async def lookup(self, key: str, client: httpx.AsyncClient, *, recipient: Recipient | None = None,
                     post: Post | None = None, since: str | None = None) -> Receipt | None:
        """The platform's record of this delivery, if it has one (checkable channels only): by our key where the
        platform keeps it, else by recipient, text and time (`since`: the alert's sent time)."""
        return None

    receipts: ClassVar[bool] = False  # the platform reports what became of each message (delivered, failed)

    async def receipt(self, remote_id: str, client: httpx.AsyncClient) -> tuple[str, str | None]:
        """What became of one message: ('delivered' | 'failed' | 'pending', the platform's reason or status)."""
        raise ChannelError(f"{self.name}: {self.kind} reports no delivery receipts", transient=False)

    async def send(self, post: Post, client: Any, key: str) -> Receipt:
        raise ChannelError(f"{self.name}: a list channel is sent per recipient", transient=False,
                           hint="send it with broadcast warn or broadcast resend")


def _unit(encoding: str) -> str:
    return "characters" if encoding == "GSM-7" else "UCS-2 units"
