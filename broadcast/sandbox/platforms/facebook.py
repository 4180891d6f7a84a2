"""Facebook Pages through the Graph API: /{page-id}/feed, DELETE /{post-id}, /me, and Graph's error shape.

Tokens: CREDENTIALS["facebook"] is the Page's own token; EXPIRED_TOKEN answers code 190/463 (expired); USER_TOKEN is
a person's token, which /me names and which may not post to the Page (code 200).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

PAGE = {"id": "100000000000001", "name": "Sandbox County Council"}
USER = {"id": "5550001", "name": "Sandbox Duty Officer"}
EXPIRED_TOKEN = "sandbox-expired-token"
USER_TOKEN = "sandbox-user-token"
MAX_CHARACTERS = 63_206
MISSING = ("Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support "
           "this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api")


def register(sandbox: Sandbox, app: web.Application) -> None:
    def error(code: int, message: str, kind: str = "GraphMethodException", subcode: int | None = None,
              status: int = 400) -> web.Response:
        body: dict[str, Any] = {"message": message, "type": kind, "code": code,
                                "fbtrace_id": f"Sandbox{sandbox.next_id()}"}
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
        if token == USER_TOKEN:
            return USER, None
        if token != CREDENTIALS["facebook"]:
            return None, error(190, "Invalid OAuth access token - Cannot parse access token", "OAuthException")
        return PAGE, None

    async def feed(request: web.Request) -> web.Response:
        account, refused = who(request)
        if refused:
            return refused
        page_id = request.match_info["page"]
        if page_id != PAGE["id"]:
            return error(100, f"Unsupported post request. {MISSING.format(id=page_id)}", subcode=33)
        if account is USER:
            return error(200, "(#200) If posting to a page, requires both pages_read_engagement and "
                         "pages_manage_posts as an admin with sufficient administrative permission", "OAuthException")
        body = request[RECORD].body
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if not message and not (isinstance(body, dict) and body.get("link")):
            return error(100, "(#100) Missing message or attachment", "OAuthException")
        if len(message) > MAX_CHARACTERS:
            return error(100, f"(#100) The message is longer than {MAX_CHARACTERS} characters", "OAuthException")
        posts = sandbox.store("facebook").setdefault("posts", {})
        if any(p["message"] == message for p in posts.values()):
            return error(506, "Duplicate status message", "OAuthException", subcode=1455006)
        post_id = f"{PAGE['id']}_{sandbox.next_id()}"
        posts[post_id] = {"message": message, "link": body.get("link")}
        request[RECORD].accepted = True
        return web.json_response({"id": post_id})

    async def delete(request: web.Request) -> web.Response:
        _, refused = who(request)
        if refused:
            return refused
        post_id = request.match_info["post"]
        if sandbox.store("facebook").setdefault("posts", {}).pop(post_id, None) is None:
            return error(100, f"Unsupported delete request. {MISSING.format(id=post_id)}", subcode=33)
        return web.json_response({"success": True})

    async def me(request: web.Request) -> web.Response:
        account, refused = who(request)
        if refused:
            return refused
        assert account is not None
        fields = request.query.get("fields", "id,name").split(",")
        return web.json_response({k: v for k, v in account.items() if k in fields})

    app.router.add_get("/facebook/{version}/me", me, name="facebook:me")
    app.router.add_post("/facebook/{version}/{page}/feed", feed, name="facebook:feed")
    app.router.add_delete("/facebook/{version}/{post}", delete, name="facebook:delete")
