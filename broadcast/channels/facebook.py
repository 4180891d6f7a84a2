"""Facebook Page: POST /{page-id}/feed with a Page access token; delete with DELETE /{post-id}."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import (
    Channel,
    ChannelError,
    Engagement,
    Post,
    Receipt,
    http_error,
    parse_retry_after,
    post_form,
)

if TYPE_CHECKING:
    import httpx

    from broadcast.alert import Alert

PERMISSIONS = ("pages_manage_posts", "pages_read_engagement", "pages_show_list")
RATE_LIMITS = (4, 17, 32, 613, 80001)  # app, user, Page, custom and Pages business-use-case limits
TOKEN_CODES = (102, 190)
# One read for every figure: the counts as summaries (no list of who reacted), and the top-level comments with
# their text, time and link only; `from` is not asked for, so no commenter's name or id ever arrives.
ENGAGEMENT_FIELDS = ("shares,reactions.summary(total_count).limit(0),"
                     "comments.summary(total_count).filter(toplevel).limit(100){message,created_time,permalink_url}")
EXPIRED = {463: "the token expired", 460: "the password of the account that made the token changed",
           458: "the app was removed from the account", 467: "the token is no longer valid"}


class Facebook(Channel):
    kind = "facebook"
    variant = "body"
    limit = 63_206
    concurrency = 2
    can_retract = True  # DELETE /{page-post-id}, with the Page token
    secret_keys = ("page_access_token",)

    @property
    def api(self) -> str:
        graph = self.setting("graph", "https://graph.facebook.com").rstrip("/")
        if not graph.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ChannelError(f"{self.name}: graph must start with https://", transient=False,
                               hint=f"fix settings.graph in channels/{self.name}.toml")
        return f"{graph}/{self.setting('api_version', 'v21.0')}"

    def prepare(self, alert: Alert, language: str) -> Post:
        post = super().prepare(alert, language)
        return replace(post, extra={"link": alert.info(language).web, "alert": alert.identifier})

    async def send(self, post: Post, client: httpx.AsyncClient, key: str) -> Receipt:
        # The token goes in the form body, never the URL, so no proxy or server log holds it.
        answer = await post_form(client, f"{self.api}/{self.setting('page_id')}/feed", {
            "message": post.text, "link": post.extra["link"], "access_token": self.secret("page_access_token")})
        if answer.status != 200:
            raise self._error(answer.response(), "posting", post.extra.get("alert"))
        post_id = str(json.loads(answer.body)["id"])
        return Receipt(remote_id=post_id, url=f"https://www.facebook.com/{post_id}")

    async def retract(self, receipt: Receipt, client: httpx.AsyncClient) -> None:
        response = await client.request("DELETE", f"{self.api}/{receipt.remote_id}",
                                        data={"access_token": self.secret("page_access_token")})
        if response.status_code == 200:
            return
        error = _graph_error(response)
        if error.get("code") == 100 and error.get("error_subcode") == 33:
            return  # the post no longer exists: already retracted
        raise self._error(response, "deleting")

    async def check(self, client: httpx.AsyncClient) -> str:
        response = await client.get(f"{self.api}/me", params={"fields": "id,name"},
                                    headers={"authorization": f"Bearer {self.secret('page_access_token')}"})
        if response.status_code != 200:
            raise self._error(response, "checking the token")
        me = response.json()
        page_id = self.setting("page_id")
        if str(me.get("id")) != page_id:
            raise ChannelError(f"{self.name}: this token belongs to {me.get('name')} ({me.get('id')}), not the Page "
                               f"{page_id}", transient=False,
                               hint=f"use a Page access token for Page {page_id}, not a user token: "
                                    f"{self._renew_steps()}")
        return f"posting as the Page {me.get('name')} ({page_id})"

    async def engagement(self, receipt: Receipt, client: httpx.AsyncClient) -> Engagement | None:
        """GET /{post-id} with shares, reactions and top-level comments (their summary counts and first 100)."""
        if not receipt.remote_id:
            raise ChannelError(f"{self.name}: no post id recorded for this post, so it cannot be looked up",
                               transient=False, hint="look at the post on the Page")
        response = await client.get(f"{self.api}/{receipt.remote_id}", params={"fields": ENGAGEMENT_FIELDS},
                                    headers={"authorization": f"Bearer {self.secret('page_access_token')}"})
        if response.status_code != 200:
            error = _graph_error(response)
            if error.get("code") == 100 and error.get("error_subcode") == 33:
                raise ChannelError(f"{self.name}: the post is no longer on Facebook (deleted?)", transient=False)
            raise self._error(response, "reading a post")
        post = response.json()
        comments = post.get("comments") or {}
        shares = post.get("shares") or {}  # Graph leaves `shares` out altogether while there are none
        return Engagement(replies=_total(comments), reposts=int(shares.get("count") or 0),
                          likes=_total(post.get("reactions") or {}),
                          said=tuple((str(c.get("message") or ""), str(c.get("permalink_url") or ""),
                                      str(c.get("created_time") or "")) for c in comments.get("data") or []))

    def _where(self) -> str:
        env = str(self.config.secrets.get("page_access_token", "")).removeprefix("env:")
        return f"{env} (named in channels/{self.name}.toml)"

    def _renew_steps(self) -> str:
        return (f"generate a new long-lived Page access token (Meta Business Suite, or Graph API Explorer: choose "
                f"the Page, with the permissions {', '.join(PERMISSIONS)}), store it in {self._where()}")

    def _error(self, response: httpx.Response, what: str, alert: str | None = None) -> ChannelError:
        """Classify a Graph API error by its code, which says more than the HTTP status."""
        error = _graph_error(response)
        if not error:
            return http_error(self.name, response, f"Facebook ({what})")
        code, subcode = error.get("code"), error.get("error_subcode")
        trace = f" (fbtrace_id {error['fbtrace_id']})" if error.get("fbtrace_id") else ""
        message = (f"{self.name}: Facebook ({what}) answered HTTP {response.status_code}, code {code}"
                   f"{f'/{subcode}' if subcode else ''}: {error.get('message', '')}{trace}")
        resend = f", then: broadcast resend {alert} --only {self.name}" if alert else ""
        if code in TOKEN_CODES:
            why = EXPIRED.get(subcode or 0, "the token is not valid")
            return ChannelError(f"{message} [{why}]", transient=False, status=response.status_code,
                                hint=f"renew the Page token: {self._renew_steps()}{resend}")
        if code in RATE_LIMITS:
            return ChannelError(f"{message} [rate limited]", transient=True, status=response.status_code,
                                retry_after=_retry_after(response),
                                hint="Facebook is limiting calls: a later retry will help")
        if code == 368:
            return ChannelError(f"{message} [the Page is blocked from posting]", transient=False,
                                status=response.status_code,
                                hint="Facebook has blocked this Page from posting for now (a policy block): see "
                                     "Page quality in Meta Business Suite; other channels are not affected")
        if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
            missing = [p for p in PERMISSIONS if p in str(error.get("message", ""))] or list(PERMISSIONS)
            return ChannelError(f"{message} [permission missing]", transient=False, status=response.status_code,
                                hint=f"the token lacks {' and '.join(missing)} (or the CREATE_CONTENT task on the "
                                     f"Page): {self._renew_steps()}{resend}")
        if code == 506:
            return ChannelError(f"{message} [duplicate post]", transient=False, status=response.status_code,
                                hint="Facebook refused an identical post: it is probably on the Page already; "
                                     "look before resending")
        if code == 100 and subcode == 33:
            return ChannelError(f"{message} [no such Page or post]", transient=False, status=response.status_code,
                                hint=f"check settings.page_id in channels/{self.name}.toml and that the token is "
                                     "for that Page")
        transient = code in (1, 2) or bool(error.get("is_transient")) or response.status_code >= 500
        return ChannelError(message, transient=transient, status=response.status_code,
                            retry_after=_retry_after(response) if transient else None,
                            hint="a retry may help" if transient else "a retry will not help; check the message")


def _total(edge: dict[str, Any]) -> int:
    """An edge's summary total_count."""
    return int((edge.get("summary") or {}).get("total_count") or 0)


def _graph_error(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After if sent; else the Pages business-use-case header's estimate (in minutes)."""
    seconds = parse_retry_after(response.headers.get("retry-after"))
    if seconds is not None:
        return seconds
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", "{}"))
        minutes = max((int(entry.get("estimated_time_to_regain_access") or 0)
                       for entries in usage.values() for entry in entries), default=0)
    except (ValueError, AttributeError, TypeError):
        return None
    return minutes * 60.0 if minutes else None

