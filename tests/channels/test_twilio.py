import asyncio
import base64
import json

import pytest
from conftest import VALUES, make_alert
from listkit import ENV, approved, list_workspace, many, twilio_channel

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.channels.checks import check_channels
from broadcast.prepare.recipients import Recipient, scrub
from broadcast.sandbox.platforms.twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID
from broadcast.send.client import http_client
from broadcast.store import Store
from broadcast.workspace import Workspace

PERSON = Recipient("sms", "+447700900001", "sms:0", "+44 7*** ***001", "en-GB", 2)


@pytest.fixture
def twilio(tmp_path, sandbox, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    root = list_workspace(tmp_path / "ws", [twilio_channel(sandbox.url)])
    workspace = Workspace(root)
    return workspace, load(workspace.channels["sms-twilio"], workspace.organisation.web)


def deliver(channel, post, person=PERSON):
    async def go():
        async with http_client() as client:
            await channel.open(client)
            return await channel.deliver(post, person, client, "key-1")

    return asyncio.run(go())


def test_messages_are_form_encoded_with_basic_auth(twilio, sandbox):
    workspace, channel = twilio
    [check] = check_channels(workspace, ("sms-twilio",))
    assert check.ok and check.detail == "account 'Sandbox council' (active)"
    post = channel.prepare(make_alert(workspace), "en-GB")
    receipt = deliver(channel, post)
    [received] = sandbox.received("twilio", accepted=True)
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert received.headers["authorization"] == f"Basic {credentials}"
    assert received.body == {"To": "+447700900001", "Body": post.text, "MessagingServiceSid": MESSAGING_SERVICE_SID}
    assert receipt.remote_id.startswith("SM")


def test_a_wrong_token_is_permanent_and_never_shown(twilio, sandbox, monkeypatch):
    workspace, channel = twilio
    monkeypatch.setenv("TEST_TWILIO_TOKEN", "wrong-token-value")
    with pytest.raises(ChannelError) as caught:
        deliver(channel, channel.prepare(make_alert(workspace), "en-GB"))
    assert "HTTP 401 error 20003: Authenticate" in caught.value.message and not caught.value.transient
    assert "Auth Token" in caught.value.hint and "wrong-token-value" not in caught.value.message


def test_20429_is_retried_and_everyone_gets_one_text(tmp_path, sandbox, monkeypatch):
    from broadcast.send.sending import plan_warning, send_warning

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    root = list_workspace(tmp_path / "ws", [twilio_channel(sandbox.url)], residents=many(20), fast=False)
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[fanout]\nfirst_backoff = 0.1\nmax_backoff = 0.3\n",
                      encoding="utf-8")
    approved(root)
    sandbox.store("twilio")["rate_limit"] = (8, 0.1)
    workspace = Workspace(root)
    store = Store.open(workspace.db_path)
    report = send_warning(workspace, store, plan_warning(workspace, "school-closure", VALUES, store=store),
                          actor="test")
    assert [o.state for o in report.outcomes] == ["sent"]
    texted = [r.body["To"] for r in sandbox.received("twilio", accepted=True)]
    assert len(texted) == len(set(texted)) == 20
    refused = [r for r in sandbox.received("twilio") if r.status == 429]
    assert refused
    retries = [json.loads(e["details"]) for e in store.events() if e["type"] == "retry_scheduled"]
    assert retries and "error 20429: Too Many Requests" in retries[0]["error"]


def test_twilios_errors_are_classified_and_a_number_in_them_is_masked(twilio):
    _, channel = twilio
    error = channel.error(400, json.dumps({"code": 21211, "message": "The 'To' number +447700900001 is not a valid "
                                           "phone number.", "status": 400}), "sending")
    assert not error.transient and "check the person's row" in error.hint
    assert scrub(error.message, PERSON).endswith("The 'To' number +44 7*** ***001 is not a valid phone number.")
    assert channel.error(429, json.dumps({"code": 20429, "message": "Too Many Requests"}), "sending").transient
    assert not channel.error(400, json.dumps({"code": 21610, "message": "unsubscribed"}), "sending").transient
