import asyncio
import json
import time

import jwt
import pytest
from conftest import make_alert
from listkit import ENV, approved, list_workspace, notify_channel

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.channels.checks import check_channels
from broadcast.prepare.recipients import Recipient
from broadcast.sandbox.platforms.notify import API_KEY, SERVICE_ID
from broadcast.send.client import http_client
from broadcast.store import Store
from broadcast.workspace import Workspace

PERSON = Recipient("sms", "+447700900001", "sms:0", "+44 7*** ***001", "en-GB", 2)


@pytest.fixture
def notify(tmp_path, sandbox, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url, email=True)])
    workspace = Workspace(root)
    return workspace, load(workspace.channels["sms-residents"], workspace.organisation.web)


def deliver(channel, post, person=PERSON, key="key-1"):
    async def go():
        async with http_client() as client:
            return await channel.deliver(post, person, client, key)

    return asyncio.run(go())


def test_the_jwt_is_accepted_and_the_reference_is_our_key(notify, sandbox):
    workspace, channel = notify
    [result] = check_channels(workspace, ("sms-residents",))
    assert result.ok and result.detail == (f"service {SERVICE_ID}, sms template 'Emergency alert (SMS)', "
                                           "email template 'Emergency alert (email)'")
    post = channel.prepare(make_alert(workspace), "en-GB")
    receipt = deliver(channel, post)
    [received] = sandbox.received("notify", accepted=True)
    claims = jwt.decode(received.headers["authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    assert claims["iss"] == SERVICE_ID and abs(claims["iat"] - time.time()) < 5
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("broadcast/")  # the sending client's, as every channel's
    assert received.body == {"phone_number": "+447700900001", "template_id": "00000000-0000-4000-8000-000000000001",
                             "personalisation": {"message": post.text}, "reference": "key-1"}
    assert receipt.remote_id in sandbox.store("notify")["notifications"]
    email = deliver(channel, post, Recipient("email", "ann@example.org", "email:0", "a***@example.org", "en-GB", 2))
    body = sandbox.received("notify", accepted=True)[-1].body
    assert body["personalisation"]["subject"] == "Hillside Primary School is closed on Monday 23 November 2026"
    assert "Keep children at home." in body["personalisation"]["message"] and email.remote_id


def test_a_slow_clock_is_refused_with_a_hint_to_set_it(notify, sandbox):
    workspace, channel = notify
    from broadcast.sandbox.platforms.notify import SECRET

    # What this machine would sign if its clock were 40 seconds slow.
    channel._token = (time.time(), jwt.encode({"iss": SERVICE_ID, "iat": int(time.time()) - 40}, SECRET,
                                              algorithm="HS256"))
    with pytest.raises(ChannelError) as caught:
        deliver(channel, channel.prepare(make_alert(workspace), "en-GB"))
    assert "HTTP 403 AuthError: Error: Your system clock must be accurate to within 30 seconds" in caught.value.message
    assert "clock" in caught.value.hint and not caught.value.transient


@pytest.mark.parametrize(("key", "words"), [
    ("not-a-notify-key", "the API key is not in Notify's form"),
    (API_KEY[:-4] + "0000", "HTTP 403 AuthError: Invalid token: API key not found"),
])
def test_a_wrong_key_says_how_to_get_a_new_one(notify, sandbox, monkeypatch, key, words):
    workspace, channel = notify
    monkeypatch.setenv("TEST_NOTIFY_KEY", key)
    with pytest.raises(ChannelError) as caught:
        deliver(channel, channel.prepare(make_alert(workspace), "en-GB"))
    assert words in caught.value.message and "API integration > API keys" in caught.value.hint
    assert key not in caught.value.message


def test_notify_error_bodies_become_hints(notify):
    _, channel = notify
    body = json.dumps({"errors": [{"error": "BadRequestError", "message": "Template not found"}], "status_code": 400})
    error = channel.error(400, body, "sending")
    assert error.message.endswith("HTTP 400 BadRequestError: Template not found") and not error.transient
    assert "sms_template_id" in error.hint
    daily = channel.error(429, json.dumps({"errors": [{"error": "TooManyRequestsError", "message":
                                                       "Exceeded send limits (250000) for today"}]}), "sending")
    assert not daily.transient and "midnight UTC" in daily.hint
    assert channel.error(429, json.dumps({"errors": [{"error": "RateLimitError", "message": "x"}]}), "s").transient
    assert channel.error(500, "<html>oops</html>", "sending").transient


def test_a_resend_asks_notify_first_and_sends_nothing_twice(tmp_path, sandbox, monkeypatch):
    from conftest import VALUES

    from broadcast.send.sending import plan_warning, resend, send_warning

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)])
    approved(root)
    workspace = Workspace(root)
    store = Store.open(workspace.db_path)
    report = send_warning(workspace, store, plan_warning(workspace, "school-closure", VALUES, store=store),
                          actor="test")
    assert {o.state for o in report.outcomes} == {"sent"} and len(sandbox.received("notify", accepted=True)) == 3
    # As a kill right after the requests left would leave them: sending, the answers never recorded.
    store.conn.execute("UPDATE deliveries SET state = 'sending', remote_id = NULL WHERE recipient != ''")
    again = resend(workspace, store, "A-2026-0001", actor="test")
    assert {o.state for o in again.outcomes} == {"sent"}
    assert len(sandbox.received("notify", accepted=True)) == 3  # looked up by reference, not sent again
    lookups = [r for r in sandbox.received("notify") if r.method == "GET"]
    assert len(lookups) == 3 and all(r.body["reference"] for r in lookups)
    notes = [json.loads(e["details"]).get("note") for e in Store.open(root / "broadcast.db").events()
             if e["type"] == "delivery_result"][-3:]
    assert len(notes) == 3 and all(note.startswith("already at Notify") for note in notes)
