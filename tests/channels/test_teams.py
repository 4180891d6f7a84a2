import asyncio

import pytest
from conftest import channel_config, everything_stored, make_alert, send_one, with_client

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.channels.teams import QUEUED

CONFIG = """kind = "teams"
[secrets]
workflow_url = "env:TEST_TEAMS_URL"
"""
HOSTILE = "St Mary & St John's \"Infants\" <script>alert(1)</script> 🚸 מדרסה"


@pytest.fixture
def teams(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "teams-lrf", CONFIG)
    return workspace, load(config, workspace.organisation.web)






def test_posts_an_adaptive_card_and_says_it_is_only_queued(teams, sandbox):
    workspace, channel = teams
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert)
    assert outcome.state == "sent" and outcome.attempts == 1
    assert outcome.receipt.note == QUEUED == "accepted by the workflow (queued; Teams does not confirm the post)"
    [received] = sandbox.received("teams", accepted=True)
    [stored] = sandbox.store("teams")["cards"]
    assert outcome.receipt.remote_id == stored["run"]  # the run id, to look the run up in Power Automate
    info, post = alert.info("en-GB"), channel.prepare(alert, "en-GB")
    assert received.body == {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "lang": "en",
            "body": [
                {"type": "TextBlock", "text": info.headline, "weight": "bolder", "size": "medium", "wrap": True},
                {"type": "TextBlock", "text": post.text, "wrap": True},
                {"type": "TextBlock", "text": "Keep children at home. Next update at 10am.", "wrap": True},
            ],
            "actions": [{"type": "Action.OpenUrl", "title": "More information",
                         "url": "https://alerts.testshire.example"}],
        },
    }]}
    assert int(received.headers["content-length"]) == post.count  # the count is the bytes that arrive
    row = store.deliveries("A-2026-0001")[0]
    assert row["state"] == "sent" and row["remote_id"] == stored["run"]


def test_welsh_card_has_a_welsh_button(teams, sandbox):
    workspace, channel = teams
    outcome, _ = send_one(channel, make_alert(workspace), "cy-GB")
    assert outcome.state == "sent"
    content = sandbox.store("teams")["cards"][0]["card"]
    assert content["lang"] == "cy" and content["actions"][0]["title"] == "Rhagor o wybodaeth"
    assert content["body"][2]["text"].startswith("Cadwch blant gartref.")


def test_hostile_text_arrives_byte_for_byte(teams, sandbox):
    workspace, channel = teams
    alert = make_alert(workspace, values={"school": HOSTILE[:60]})
    post = channel.prepare(alert, "en-GB")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    body = sandbox.store("teams")["cards"][0]["card"]["body"]
    assert body[1]["text"] == post.text and HOSTILE[:60] in body[1]["text"]
    assert body[0]["text"] == alert.info("en-GB").headline and "<script>" in body[0]["text"]


def test_the_whole_card_is_fitted_to_the_byte_limit(teams, sandbox):
    workspace, channel = teams
    assert channel.limit == 28_000 and channel.unit == "bytes (the whole card as sent)"
    alert = make_alert(workspace, values={"school": "Ysgol Gymraeg Llanfair-ym-Muallt 🏫"})
    full = channel.prepare(alert, "en-GB")
    assert full.count > len(full.text.encode()) + 300  # headline, instruction and card structure count too
    channel.limit = full.count - 1
    post = channel.prepare(alert, "en-GB")
    assert post.shortened and post.count <= post.limit == full.count - 1
    assert post.text.endswith("… https://alerts.testshire.example")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("teams", accepted=True)
    assert int(received.headers["content-length"]) == post.count <= channel.limit


def test_a_wrong_signature_is_permanent_and_says_to_recreate_the_url(teams, sandbox, sandbox_env, monkeypatch):
    workspace, channel = teams
    wrong = sandbox_env["TEST_TEAMS_URL"].replace("sig=sandboxsig", "sig=WrongSig99")
    monkeypatch.setenv("TEST_TEAMS_URL", wrong)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "HTTP 401" in outcome.error and "DirectApiInvalidAuthorizationSignature" in outcome.error
    assert "recreate" in outcome.hint and "TEST_TEAMS_URL" in outcome.hint
    assert "WrongSig99" not in everything_stored(store) + outcome.error + outcome.hint
    assert sandbox.received("teams", accepted=True) == []


def test_a_deleted_workflow_is_permanent(teams, sandbox, sandbox_env, monkeypatch):
    workspace, channel = teams
    deleted = sandbox_env["TEST_TEAMS_URL"].replace("/workflows/sandbox/", "/workflows/gone/")
    monkeypatch.setenv("TEST_TEAMS_URL", deleted)
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "HTTP 404" in outcome.error and "no longer exists" in outcome.hint


def test_transient_error_then_success(teams, sandbox):
    workspace, channel = teams
    sandbox.fault("teams", fail_next=2, status=502)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(sandbox.received("teams", accepted=True)) == 1
    assert [e["type"] for e in store.events()].count("retry_scheduled") == 2


def test_429_retry_after_is_honoured_at_the_sandbox(teams, sandbox):
    workspace, channel = teams
    sandbox.fault("teams", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("teams")
    assert first.status == 429 and second.status == 202
    assert second.at - first.at >= 0.3


def test_retract_is_refused_with_the_correction_hint(teams):
    _, channel = teams
    assert channel.can_retract is False
    with pytest.raises(ChannelError) as raised:
        with_client(lambda client: channel.retract(None, client))
    assert raised.value.hint == "post a correction instead"


def test_check_says_plainly_that_the_workflow_was_not_contacted(teams, sandbox):
    _, channel = teams
    result = with_client(channel.check)
    assert result == ("Power Automate workflow sandbox at 127.0.0.1; the URL has the right shape, but the workflow "
                      "was not contacted: it cannot be checked without posting to the channel")
    assert sandbox.received("teams") == []


@pytest.mark.parametrize(("url", "says"), [
    ("https://contoso.webhook.office.com/webhookb2/0000/IncomingWebhook/1111/RetiredSecret", "retired"),
    ("https://prod-00.uksouth.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sp=run", "signature"),
    ("http://prod-00.uksouth.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=PlainSecret", "https"),
    ("https://[prod-00.uksouth.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=BrokenSecret",
     "not a valid URL"),
    ("https://prod-00.uksouth.logic.azure.com:port/workflows/abc/paths/invoke?sig=PortSecret", "not a valid URL"),
])
def test_check_refuses_urls_that_cannot_work_without_showing_them(teams, monkeypatch, url, says):
    _, channel = teams
    monkeypatch.setenv("TEST_TEAMS_URL", url)
    with pytest.raises(ChannelError) as raised:
        with_client(channel.check)
    assert says in raised.value.message and raised.value.transient is False
    assert "Secret" not in raised.value.message + raised.value.hint
