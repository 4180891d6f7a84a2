"""Facebook Pages through the Graph API: /{page-id}/feed, DELETE /{post-id}, /me, comments, the read of a post's
fields (shares, reactions and comments with their summaries) and Graph's error shape.

Tokens: CREDENTIALS["facebook"] is the Page's own token; EXPIRED_TOKEN answers code 190/463 (expired); USER_TOKEN is
a person's token, which /me names and which may not post to the Page (code 200); PUBLIC_TOKEN is a member of the
public's, to comment with. A post's `shares` and `reactions` are counts kept on the stored post for a test to set.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

PAGE = {"id": "100000000000001", "name": "Sandbox County Council"}
USER = {"id": "5550001", "name": "Sandbox Duty Officer"}
PUBLIC = {"id": "5550002", "name": "Gwen Hughes"}
EXPIRED_TOKEN = "sandbox-expired-token"
USER_TOKEN = "sandbox-user-token"
PUBLIC_TOKEN = "sandbox-public-token"
MAX_CHARACTERS = 63_206
MISSING = ("Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support "
           "this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api")
POST_FIELDS = ("id", "message", "created_time", "permalink_url", "shares", "reactions", "comments")
COMMENT_FIELDS = ("id", "message", "created_time", "permalink_url", "from")
PAGE_SIZE = 25  # an edge's default page
FIELD_RE = re.compile(r"^(\w+)((?:\.\w+\([^)]*\))*)(?:\{(.*)\})?$")
MODIFIER_RE = re.compile(r"\.(\w+)\(([^)]*)\)")

Handler = Callable[["Sandbox", web.Request, dict[str, str]], Awaitable[web.Response]]


def register(sandbox: Sandbox, app: web.Application) -> None:
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, f"/facebook/{{version}}{path}", _with_token(handler, sandbox),
                             name=f"facebook:{name}")


def _with_token(handler: Handler, sandbox: Sandbox) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Every Graph call here needs a token; the handler gets the account it belongs to."""

    async def handle(request: web.Request) -> web.Response:
        account, refused = who(request)
        if refused:
            return refused
        assert account is not None
        return await handler(sandbox, request, account)

    return handle


def error(code: int, message: str, kind: str = "GraphMethodException", subcode: int | None = None,
          status: int = 400) -> web.Response:
    body: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_urlsafe(9)}
    if subcode is not None:
        body["error_subcode"] = subcode
    return web.json_response({"error": body}, status=status)


def who(request: web.Request) -> tuple[dict[str, str] | None, web.Response | None]:
    """The account the request's token belongs to, or the error Graph would answer."""
    body = request[RECORD].body if isinstance(request[RECORD].body, dict) else {}
    header = request.headers.get("Authorization", "")
    token = body.get("access_token") or request.query.get("access_token") or (
        header.split(" ", 1)[1] if header.startswith(("Bearer ", "OAuth ")) else None)
    if not token:
        return None, error(104, "An access token is required to request this resource.", "OAuthException")
    if token == EXPIRED_TOKEN:
        return None, error(190, "Error validating access token: Session has expired on Sunday, 22-Nov-26 "
                           "23:00:00 PST. The current time is Monday, 23-Nov-26 06:05:00 PST.",
                           "OAuthException", subcode=463)
    accounts = {USER_TOKEN: USER, PUBLIC_TOKEN: PUBLIC, CREDENTIALS["facebook"]: PAGE}
    if token not in accounts:
        return None, error(190, "Invalid OAuth access token - Cannot parse access token", "OAuthException")
    return accounts[token], None


def posts(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return sandbox.store("facebook").setdefault("posts", {})


def comments(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return sandbox.store("facebook").setdefault("comments", {})


def message_of(request: web.Request) -> str:
    body = request[RECORD].body
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")  # Graph's own form of a time


async def feed(sandbox: Sandbox, request: web.Request, account: dict[str, str]) -> web.Response:
    page_id = request.match_info["page"]
    if page_id != PAGE["id"]:
        return error(100, f"Unsupported post request. {MISSING.format(id=page_id)}", subcode=33)
    if account is not PAGE:
        return error(200, "(#200) If posting to a page, requires both pages_read_engagement and "
                     "pages_manage_posts as an admin with sufficient administrative permission", "OAuthException")
    body = request[RECORD].body
    message = message_of(request)
    if not message and not (isinstance(body, dict) and body.get("link")):
        return error(100, "(#100) Missing message or attachment", "OAuthException")
    if len(message) > MAX_CHARACTERS:
        return error(100, f"(#100) The message is longer than {MAX_CHARACTERS} characters", "OAuthException")
    if any(p["message"] == message for p in posts(sandbox).values()):
        return error(506, "Duplicate status message", "OAuthException", subcode=1455006)
    post_id = f"{PAGE['id']}_{sandbox.next_id()}"
    posts(sandbox)[post_id] = {"message": message, "link": body.get("link"), "created_time": now(), "shares": 0,
                               "reactions": 0}
    request[RECORD].accepted = True
    return web.json_response({"id": post_id})


async def comment(sandbox: Sandbox, request: web.Request, account: dict[str, str]) -> web.Response:
    """POST /{object-id}/comments: on a post, or on a comment (a reply in its thread)."""
    parent = request.match_info["object"]
    on = comments(sandbox).get(parent)
    post_id = on["post"] if on else parent
    if post_id not in posts(sandbox):
        return error(100, f"Unsupported post request. {MISSING.format(id=parent)}", subcode=33)
    if not message_of(request):
        return error(100, "(#100) Missing message or attachment", "OAuthException")
    comment_id = f"{post_id.split('_')[1]}_{sandbox.next_id()}"
    comments(sandbox)[comment_id] = {
        "id": comment_id, "post": post_id, "parent": parent, "message": message_of(request), "from": account,
        "created_time": now(),
        "permalink_url": f"https://www.facebook.com/{PAGE['id']}/posts/{post_id.split('_')[1]}"
                         f"?comment_id={comment_id.split('_')[1]}"}
    request[RECORD].accepted = True
    return web.json_response({"id": comment_id})


async def read(sandbox: Sandbox, request: web.Request, account: dict[str, str]) -> web.Response:
    """GET /{post-id}?fields=...: the fields asked for, edges with their modifiers (summary, limit, filter)."""
    post_id = request.match_info["object"]
    post = posts(sandbox).get(post_id)
    if post is None:
        return error(100, f"Unsupported get request. {MISSING.format(id=post_id)}", subcode=33)
    try:
        asked = parse_fields(request.query.get("fields", "id,message,created_time"))
    except ValueError as exc:
        return error(100, f"(#100) {exc}", "OAuthException")
    answer: dict[str, Any] = {}
    for name, modifiers, subfields in asked:
        if name not in POST_FIELDS:
            return error(100, f"(#100) Tried accessing nonexisting field ({name}) on node type (PagePost)",
                         "OAuthException")
        value = field_value(sandbox, post_id, post, name, modifiers, subfields)
        if isinstance(value, web.Response):
            return value
        if value is not None:
            answer[name] = value
    return web.json_response({**answer, "id": post_id})


def field_value(sandbox: Sandbox, post_id: str, post: dict[str, Any], name: str, modifiers: dict[str, str],
                subfields: str) -> Any:
    if name == "shares":
        return {"count": post["shares"]} if post["shares"] else None  # Graph leaves it out while there are none
    if name == "reactions":
        edge: dict[str, Any] = {"data": []}  # the sandbox keeps a count, not who reacted
        if "summary" in modifiers:
            edge["summary"] = {"total_count": post["reactions"], "viewer_reaction": "NONE"}
        return edge
    if name == "comments":
        return comment_edge(sandbox, post_id, modifiers, subfields)
    if name == "permalink_url":
        return f"https://www.facebook.com/{PAGE['id']}/posts/{post_id.split('_')[1]}"
    return post.get(name, post_id if name == "id" else None)


def comment_edge(sandbox: Sandbox, post_id: str, modifiers: dict[str, str], subfields: str) -> Any:
    """The comments edge: top-level only unless filter(stream), oldest first, with the fields asked for."""
    stream = modifiers.get("filter") == "stream"
    found = [c for c in comments(sandbox).values() if c["post"] == post_id and (stream or c["parent"] == post_id)]
    try:
        fields = [name for name, _, _ in parse_fields(subfields or "id,message,created_time,from")]
        limit = int(modifiers.get("limit", PAGE_SIZE))
    except ValueError as exc:
        return error(100, f"(#100) {exc}", "OAuthException")
    if unknown := [f for f in fields if f not in COMMENT_FIELDS]:
        return error(100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (Comment)",
                     "OAuthException")
    edge: dict[str, Any] = {"data": [{key: c[key] for key in ("id", *fields)} for c in found[:limit]]}
    if found[:limit]:
        edge["paging"] = {"cursors": {"before": "U2FuZGJveEJlZm9yZQ", "after": "U2FuZGJveEFmdGVy"}}
    if "summary" in modifiers:
        edge["summary"] = {"order": "chronological", "total_count": len(found), "can_comment": True}
    return edge


def parse_fields(spec: str) -> list[tuple[str, dict[str, str], str]]:
    """Graph's field expansion, `a,b.summary(total_count).limit(0),c{d,e}`, as (name, modifiers, subfields)."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(spec):
        depth += char in "({"
        depth -= char in ")}"
        if char == "," and depth == 0:
            parts.append(spec[start:at])
            start = at + 1
    parts.append(spec[start:])
    found = []
    for part in filter(None, (p.strip() for p in parts)):
        match = FIELD_RE.match(part)
        if not match:
            raise ValueError(f"Syntax error \"Expected end of string instead of \"{part}\".\" at character 0")
        found.append((match.group(1), dict(MODIFIER_RE.findall(match.group(2))), match.group(3) or ""))
    return found


async def delete(sandbox: Sandbox, request: web.Request, account: dict[str, str]) -> web.Response:
    post_id = request.match_info["object"]
    if posts(sandbox).pop(post_id, None) is None:
        return error(100, f"Unsupported delete request. {MISSING.format(id=post_id)}", subcode=33)
    return web.json_response({"success": True})


async def me(sandbox: Sandbox, request: web.Request, account: dict[str, str]) -> web.Response:
    fields = request.query.get("fields", "id,name").split(",")
    return web.json_response({k: v for k, v in account.items() if k in fields})


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/me", me, "me"),  # before /{object}: the first route that matches answers
    ("POST", "/{page}/feed", feed, "feed"),
    ("POST", "/{object}/comments", comment, "comment"),
    ("GET", "/{object}", read, "read"),
    ("DELETE", "/{object}", delete, "delete"),
]
