"""Teams workflow webhooks (Power Automate): a signed trigger URL that queues an Adaptive Card and answers 202.

Error bodies take the Logic Apps shape {"error": {"code", "message"}}. A real workflow accepts an oversized card
and fails the run later, out of sight; the sandbox refuses it up front so a drill shows the problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.sandbox.server import CREDENTIALS, RECORD

if TYPE_CHECKING:
    from broadcast.sandbox.server import Sandbox

WORKFLOW = "sandbox"
MAX_BYTES = 28 * 1024
CARD = "application/vnd.microsoft.card.adaptive"


def register(sandbox: Sandbox, app: web.Application) -> None:
    def error(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message}}, status=status)

    async def invoke(request: web.Request) -> web.Response:
        if request.match_info["workflow"] != WORKFLOW:
            return error(404, "WorkflowNotFound", f"The workflow '{request.match_info['workflow']}' could not be "
                         "found.")
        sig = request.query.get("sig")
        if not sig:
            return error(401, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared "
                         "Access scheme.")
        if sig != CREDENTIALS["teams"]:
            return error(401, "DirectApiInvalidAuthorizationSignature", "The provided authorization signature is "
                         "not valid.")
        if int(request.headers.get("Content-Length", "0")) > MAX_BYTES:
            return error(413, "RequestEntityTooLarge", f"The message is larger than {MAX_BYTES} bytes.")
        record = request[RECORD]
        content = _card(record.body)
        if content is None:
            return error(400, "TriggerInputSchemaMismatch", "The input body for trigger 'manual' of type "
                         "'Request' did not match its schema definition.")
        run = f"0858{sandbox.next_id()}"
        sandbox.store("teams").setdefault("cards", []).append({"run": run, "card": content})
        record.accepted = True
        return web.Response(status=202, headers={"x-ms-workflow-run-id": run})

    app.router.add_post("/teams/workflows/{workflow}/triggers/manual/paths/invoke", invoke, name="teams:invoke")


def _card(body: Any) -> dict[str, Any] | None:
    """The Adaptive Card in a Teams message, or None when the body is not one."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return None
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments or not isinstance(attachments[0], dict):
        return None
    if attachments[0].get("contentType") != CARD:
        return None
    content = attachments[0].get("content")
    if not isinstance(content, dict) or content.get("type") != "AdaptiveCard" or not content.get("body"):
        return None
    return content
