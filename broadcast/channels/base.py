"""What every channel adapter is: prepare a post, send it, retract it, check credentials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from broadcast.channels.textfit import characters, fit
from broadcast.errors import BroadcastError
from broadcast.secrets import mask, resolve

if TYPE_CHECKING:
    import httpx

    from broadcast.alert import Alert
    from broadcast.workspace import ChannelConfig


class ChannelError(BroadcastError):
    """A platform refused or failed. Adapters raise this; they never sleep or retry (the fan-out does)."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None,
                 status: int | None = None, hint: str | None = None, unknown_outcome: bool = False):
        super().__init__(mask(message), hint=mask(hint) if hint else None, exit_code=1)
        self.transient = transient
        self.retry_after = retry_after
        self.status = status
        # The request may have reached the platform: without a way to check, a resend could post twice.
        self.unknown_outcome = unknown_outcome


@dataclass(frozen=True)
class Post:
    """Exactly what goes to one channel in one language."""

    channel: str
    language: str
    text: str
    count: int
    limit: int
    unit: str
    shortened: bool
    extra: dict[str, Any]


@dataclass(frozen=True)
class Receipt:
    remote_id: str | None = None
    url: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Engagement:
    """What the public did with a post, as the platform reports it; None where it reports nothing."""

    replies: int | None = None
    reposts: int | None = None  # boosts, reposts, shares
    likes: int | None = None  # favourites, likes, reactions
    views: int | None = None
    said: tuple[tuple[str, str, str], ...] = ()  # the replies: (text, link, time); never who wrote them
    note: str | None = None  # what is missing and why (X's search of replies is not open to every access level)


class Channel:
    """Base adapter. Subclasses set the class attributes and implement send (and retract, check)."""

    kind: ClassVar[str]
    variant: ClassVar[str] = "short"
    limit: int = 4000  # an instance may learn its own (a Mastodon instance's max_characters)
    unit: ClassVar[str] = "characters"
    concurrency: ClassVar[int] = 4  # requests in flight at once to this account, from the platform's rate limits
    idempotent: ClassVar[bool] = False  # the platform dedupes a resend carrying our key
    can_retract: ClassVar[bool] = False
    secret_keys: ClassVar[tuple[str, ...]] = ()
    engagement_note: ClassVar[str] = "its API reports nothing about a post"  # why engagement() gives None
    per_person: ClassVar[bool] = False  # one message to each person on a list (ListChannel), not one post

    def __init__(self, config: ChannelConfig, page_url: str):
        self.config = config
        self.name = config.name
        self.settings = config.settings
        self.page_url = page_url

    def count(self, text: str) -> int:
        """Length as the platform counts it."""
        return characters(text)

    def secret(self, key: str) -> str:
        return resolve(self.config, key)

    def setting(self, key: str, default: str | None = None) -> str:
        value = self.settings.get(key, default)
        if value is None:
            from broadcast.errors import ConfigError

            raise ConfigError(self.config.path, f"settings.{key}", "missing", f"see channels/README.md for {self.kind}")
        return str(value)

    def limit_source(self) -> str | None:
        """Where the platform publishes this account's limit (the key it is cached under), or None: most publish
        none, and are never asked."""
        return None

    async def configure(self, client: httpx.AsyncClient) -> None:
        """Learn the limit from `limit_source()` into `self.limit`; raise when it could not be learnt, so the
        caller keeps what it knew. Called only where `limit_source()` names a place, and not when a cached limit
        is fresh (broadcast.send.limits)."""

    def api_base(self, key: str, default: str) -> str:
        """A base URL setting; https only, except a local sandbox, so a secret never travels in clear."""
        api = self.setting(key, default).rstrip("/")
        if not api.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ChannelError(f"{self.name}: {key} must start with https://", transient=False,
                               hint=f"fix settings.{key} in channels/{self.name}.toml")
        return api

    def text_parts(self, alert: Alert, language: str) -> list[tuple[str, bool]]:
        return [(str(text), bool(optional)) for text, optional in alert.info(language).texts[self.variant]]

    def prepare(self, alert: Alert, language: str) -> Post:
        """The exact text for this channel, fitted to its limit by rule."""
        info = alert.info(language)
        fitted = fit(self.text_parts(alert, language), headline=info.headline, link=info.web, count=self.count,
                     limit=self.limit, channel=self.name, unit=self.unit)
        return Post(self.name, language, fitted.text, fitted.count, fitted.limit, self.unit, fitted.shortened, {})

    @property
    def resend_is_safe(self) -> bool:
        """Whether a delivery that may have landed can be sent again without reaching anyone twice."""
        return self.idempotent

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        raise NotImplementedError

    async def retract(self, receipt: Receipt, client: httpx.AsyncClient) -> None:
        raise ChannelError(f"{self.name}: {self.kind} cannot delete a post", transient=False,
                           hint="post a correction instead")

    async def check(self, client: httpx.AsyncClient) -> str:
        """Verify the credentials without posting; return who we are posting as."""
        raise NotImplementedError

    async def engagement(self, receipt: Receipt, client: httpx.AsyncClient) -> Engagement | None:
        """The post's public counts and replies, where the platform reports them (None: it reports nothing)."""
        return None


class Whole(Protocol):
    """A whole answer: its status, body and headers at once, and httpx's response for it when an error's words are
    to be read."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...

    def header(self, name: str) -> str | None: ...

    def response(self) -> httpx.Response: ...


class _Read:
    def __init__(self, response: httpx.Response):
        self.status, self.body, self._response = response.status_code, response.content, response

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    def response(self) -> httpx.Response:
        return self._response


def read(response: httpx.Response) -> Whole:
    """An answer httpx read (a GET, say), as a Whole: a channel reads every answer one way."""
    return _Read(response)


async def post_whole(client: httpx.AsyncClient, url: str, content: bytes, headers: dict[str, str]) -> Whole:
    """POST `content` and read the whole answer: through the sending client's lean path where it has one
    (`post_bytes`, the same bytes on the wire with no httpx request or response built), else through httpx."""
    lean = getattr(client, "post_bytes", None)
    if lean is not None:
        whole: Whole = await lean(url, content, headers)
        return whole
    return _Read(await client.post(url, content=content, headers=headers))


async def get_whole(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> Whole:
    """GET `url` and read the whole answer, through the sending client's lean path where it has one."""
    lean = getattr(client, "get_bytes", None)
    if lean is not None:
        whole: Whole = await lean(url, headers or {})
        return whole
    return _Read(await client.get(url, headers=headers))


async def post_json(client: httpx.AsyncClient, url: str, payload: Any, headers: dict[str, str] | None = None
                    ) -> Whole:
    """POST `payload` as JSON, encoded as httpx's `json=` encodes it (compact UTF-8, no NaN), through post_whole:
    a warning's posts to the platforms go out without httpx."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return await post_whole(client, url, body, {**(headers or {}), "content-type": "application/json"})


async def post_form(client: httpx.AsyncClient, url: str, form: dict[str, str], headers: dict[str, str] | None = None
                    ) -> Whole:
    """POST `form` as an HTML form, encoded as httpx's `data=` encodes it, through post_whole."""
    from urllib.parse import urlencode

    body = urlencode(form).encode("ascii")
    return await post_whole(client, url, body, {**(headers or {}), "content-type": "application/x-www-form-urlencoded"})


def http_error(channel: str, response: httpx.Response, what: str, hint: str | None = None) -> ChannelError:
    """Classify a platform's HTTP answer: 429 and 5xx are worth retrying, other 4xx are not."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    # A success status with an answer that is not the API's (a proxy's page, a cut-off body): it may have posted.
    unknown = 200 <= status < 300
    transient = status == 429 or status >= 500 or unknown
    body = response.text[:300].strip().replace("\n", " ")
    if "json" not in response.headers.get("content-type", "") and body.startswith("<"):
        body = "(an HTML error page)"
    if unknown:
        hint = hint or "the platform may be having problems; look on it before resending: the post may be there"
    return ChannelError(f"{channel}: {what} answered HTTP {status}: {body}", transient=transient,
                        retry_after=retry_after, status=status, unknown_outcome=unknown,
                        hint=hint or ("a retry may help" if transient else "a retry will not help; check the message"))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None
