import json
from dataclasses import asdict

import pytest
from conftest import channel_config, make_alert, send_one
from standardwebhooks import Webhook

from broadcast.channels import load
from broadcast.sandbox.server import CREDENTIALS

CONFIG = """kind = "webhook"
languages = ["en-GB", "cy-GB"]
[settings]
url = "{url}/hooks/partners"
[secrets]
signing_secret = "env:TEST_WEBHOOK_SECRET"
"""


@pytest.fixture
def webhook(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "webhook-partners", CONFIG.format(url=sandbox.url))
    return workspace, load(config, workspace.organisation.web)


def test_signed_json_derived_from_the_alert(webhook, sandbox):
    workspace, channel = webhook
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert, "cy-GB")
    assert outcome.state == "sent"
    [received] = sandbox.received("webhook", accepted=True)
    # The receiver's check passed; check the signature again here, independently, with the spec's library.
    raw = json.dumps(received.body, ensure_ascii=False, separators=(",", ":"))
    Webhook(CREDENTIALS["webhook"]).verify(raw, received.headers, json_parse=False)
    body = received.body
    assert body["identifier"] == "A-2026-0001" and body["language"] == "cy-GB"
    assert body["headline"] == alert.info("cy-GB").headline
    assert body["event_id"] == received.headers["webhook-id"] == store.deliveries("A-2026-0001")[0]["idempotency_key"]
    assert body["cap"] == "https://alerts.testshire.example/cap/A-2026-0001.xml"
    assert body["areas"] == [json.loads(json.dumps(asdict(area))) for area in alert.info("cy-GB").areas]
    assert body["areas"][0]["desc"] == "Tref Testshire" and body["areas"][0]["polygons"]


def test_a_wrong_signature_is_refused_by_the_receiver(webhook, sandbox, monkeypatch):
    workspace, channel = webhook
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "whsec_d3JvbmctZG9lcy1ub3QtbWF0Y2gtdGhlLXJlY2VpdmVy")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1 and "HTTP 401" in outcome.error
    assert sandbox.received("webhook", accepted=True) == []


def test_garbage_answers_are_a_clear_error(webhook, sandbox):
    workspace, channel = webhook
    sandbox.fault("partners", fail_next=5, status=502)
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 5
    assert "HTTP 502" in outcome.error


def test_a_retry_is_logged_only_when_it_really_happens(webhook, sandbox):
    workspace, channel = webhook
    sandbox.fault("partners", fail_next=9, status=503)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 5
    types = [e["type"] for e in store.events()]
    assert types.count("delivery_attempt") == 5 and types.count("retry_scheduled") == 4
    assert len(outcome.waits) == 4
