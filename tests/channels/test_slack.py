import asyncio
import json
from dataclasses import replace

import pytest
from conftest import channel_config, everything_stored, make_alert, send_one, with_client
from hypothesis import given
from hypothesis import strategies as st

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.channels.slack import SECTION_MAX, chunks, escape

CONFIG = """kind = "slack"
[secrets]
webhook_url = "env:TEST_SLACK_URL"
"""
HOSTILE = "St Mary & St John's \"Infants\" <script>alert(1)</script> 🚸 מדרסה"


@pytest.fixture
def slack(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "slack-duty", CONFIG)
    return workspace, load(config, workspace.organisation.web)






def test_posts_text_and_blocks_and_slack_answers_ok(slack, sandbox):
    workspace, channel = slack
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert)
    assert outcome.state == "sent" and outcome.attempts == 1
    assert outcome.receipt.note.startswith("posted (Slack answered ok")
    [received] = sandbox.received("slack", accepted=True)
    post = channel.prepare(alert, "en-GB")
    info = alert.info("en-GB")
    assert received.body["text"] == post.text
    assert received.body["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": info.headline, "emoji": True}},
        {"type": "section", "text": {"type": "plain_text", "text": post.text, "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": "<https://alerts.testshire.example|https://alerts.testshire.example>"}]},
    ]
    assert post.text.startswith("Testshire Council: Hillside Primary School in Testshire town is closed")
    assert store.deliveries("A-2026-0001")[0]["state"] == "sent"


def test_hostile_text_is_escaped_as_slack_requires_and_reads_back_byte_for_byte(slack, sandbox):
    workspace, channel = slack
    alert = make_alert(workspace, values={"school": HOSTILE[:60]})
    post = channel.prepare(alert, "en-GB")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("slack", accepted=True)
    assert "<script>" not in json.dumps(received.body, ensure_ascii=False)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in received.body["text"]
    [message] = sandbox.store("slack")["messages"]
    assert message["shown"] == post.text  # what the reader sees once Slack decodes its entities
    assert HOSTILE[:60] in message["shown"]


def test_over_long_text_is_shortened_by_rule_counting_the_escapes(slack, sandbox):
    workspace, channel = slack
    assert channel.limit == 40_000
    alert = make_alert(workspace, values={"school": "Ash & Elm <Federation> School"})
    full = channel.prepare(alert, "en-GB")
    assert full.count == len(escape(full.text)) == len(full.text) + 4 + 3 + 3  # &amp; &lt; &gt;
    channel.limit = full.count - 1
    post = channel.prepare(alert, "en-GB")
    assert post.shortened and post.count <= post.limit == full.count - 1
    assert post.unit == "characters (& < > counted escaped)"
    assert post.text.endswith("… https://alerts.testshire.example")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    assert sandbox.received("slack", accepted=True)[0].body["text"] == escape(post.text)


def test_a_revoked_webhook_is_permanent_with_a_hint_and_the_url_is_masked(slack, sandbox, sandbox_env, monkeypatch):
    workspace, channel = slack
    revoked = sandbox_env["TEST_SLACK_URL"].replace("sandboxslack", "RevokedSecret42")
    monkeypatch.setenv("TEST_SLACK_URL", revoked)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "HTTP 404: no_service" in outcome.error
    assert "create a new incoming webhook" in outcome.hint and "TEST_SLACK_URL" in outcome.hint
    logged = everything_stored(store) + outcome.error + outcome.hint
    assert "RevokedSecret42" not in logged and revoked not in logged


def test_an_unreachable_webhook_never_shows_its_url(slack, monkeypatch):
    workspace, channel = slack
    monkeypatch.setenv("TEST_SLACK_URL", "http://127.0.0.1:9/slack/services/T1/B1/UnreachableSecret7")
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and "cannot connect" in outcome.error
    assert "UnreachableSecret7" not in everything_stored(store) + outcome.error + (outcome.hint or "")


def test_an_archived_channel_is_not_retried(slack, sandbox):
    workspace, channel = slack
    sandbox.store("slack")["archived"] = True
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "HTTP 410: channel_is_archived" in outcome.error and "unarchive" in outcome.hint


def test_transient_error_then_success(slack, sandbox):
    workspace, channel = slack
    sandbox.fault("slack", fail_next=2, status=500)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(sandbox.received("slack", accepted=True)) == 1
    assert [e["type"] for e in store.events()].count("retry_scheduled") == 2


def test_429_retry_after_is_honoured_at_the_sandbox(slack, sandbox):
    workspace, channel = slack
    sandbox.fault("slack", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("slack")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.3


def test_an_answer_that_is_not_ok_leaves_the_post_uncertain(slack, sandbox):
    workspace, channel = slack
    sandbox.fault("slack", garbage="html")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "uncertain" and outcome.attempts == 1  # not idempotent: never posted twice
    assert "check slack-duty by hand" in outcome.hint


def test_retract_is_refused_with_the_correction_hint(slack):
    _, channel = slack
    assert channel.can_retract is False
    with pytest.raises(ChannelError) as raised:
        with_client(lambda client: channel.retract(None, client))
    assert raised.value.hint == "post a correction instead"


def test_check_says_plainly_that_slack_was_not_contacted(slack, sandbox):
    _, channel = slack
    result = with_client(channel.check)
    assert result == ("incoming webhook of Slack workspace T0001 at 127.0.0.1; the URL has the right shape, but "
                      "Slack was not contacted: a webhook cannot be checked without posting")
    assert "sandboxslack" not in result
    assert sandbox.received("slack") == []


def test_check_refuses_a_url_of_the_wrong_shape_without_showing_it(slack, monkeypatch):
    _, channel = slack
    monkeypatch.setenv("TEST_SLACK_URL", "https://hooks.slack.com/triggers/T1/123/WrongShapeSecret")
    with pytest.raises(ChannelError) as raised:
        with_client(channel.check)
    assert "not a Slack incoming webhook URL" in raised.value.message
    assert "WrongShapeSecret" not in raised.value.message + raised.value.hint


def test_a_plain_http_url_is_refused_before_anything_is_sent(slack, monkeypatch):
    workspace, channel = slack
    monkeypatch.setenv("TEST_SLACK_URL", "http://hooks.slack.com/services/T1/B1/PlainHttpSecret")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and "must start with https://" in outcome.error


def test_a_long_body_is_split_into_sections_and_a_very_long_one_goes_as_text(slack):
    workspace, channel = slack
    post = channel.prepare(make_alert(workspace), "en-GB")
    long_post = replace(post, text="Sandbags at the depot. " * 300)
    payload = channel.payload(long_post)
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert len(sections) == 3 and all(len(s) <= SECTION_MAX for s in sections)
    assert "".join(sections) == long_post.text
    huge = replace(post, text="Sandbags at the depot. " * 600)
    assert channel.payload(huge) == {"text": huge.text}


@given(st.text(alphabet="ab &<>\n", max_size=400), st.integers(min_value=5, max_value=60))
def test_chunks_keep_every_character_and_never_split_an_entity(text, size):
    escaped = escape(text)
    pieces = chunks(escaped, size)
    assert "".join(pieces) == escaped
    assert all(0 < len(piece) <= size for piece in pieces)
    for piece in pieces:
        tail = piece[piece.rfind("&"):] if "&" in piece else ";"
        assert ";" in tail
