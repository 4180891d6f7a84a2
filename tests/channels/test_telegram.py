import asyncio

import httpx
import pytest
from conftest import TEMPLATE, VALUES, channel_config, make_alert, send_one, with_client

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.workspace import Workspace

CONFIG = """kind = "telegram"
[settings]
chat_id = "{chat}"
api = "{url}/telegram"
[secrets]
bot_token = "env:TEST_TELEGRAM_TOKEN"
"""
BODY = ("## body\n{{ org.name }}: {{ school }} in {{ area }} is closed on {{ date }} because of {{ reason }}. "
        "More: {{ org.web }}\n")


@pytest.fixture
def telegram(tmp_path, sandbox, sandbox_env):
    return make_channel(tmp_path, sandbox)


def make_channel(tmp_path, sandbox, chat="@testshire_alerts"):
    workspace, config = channel_config(tmp_path, "telegram-alerts", CONFIG.format(url=sandbox.url, chat=chat))
    return workspace, load(config, workspace.organisation.web)




def test_sends_the_body_text_to_the_channel(telegram, sandbox):
    workspace, channel = telegram
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert, "cy-GB")
    assert outcome.state == "sent" and outcome.attempts == 1
    [received] = sandbox.received("telegram", accepted=True)
    assert received.path == "/telegram/bot123456:sandbox-telegram-token/sendMessage"
    assert received.body == {"chat_id": "@testshire_alerts", "text": channel.prepare(alert, "cy-GB").text,
                             "link_preview_options": {"is_disabled": False}}
    assert received.body["text"].startswith("Cyngor Testshire: mae Hillside Primary School yn Tref Testshire ar gau")
    [message] = sandbox.store("telegram")["messages"].values()
    assert outcome.receipt.url == f"https://t.me/testshire_alerts/{message['message_id']}"
    assert outcome.receipt.remote_id == f"{message['chat']['id']}/{message['message_id']}"
    assert store.deliveries("A-2026-0001")[0]["remote_url"] == outcome.receipt.url


def test_a_wrong_token_is_masked_in_the_error(telegram, sandbox, monkeypatch):
    workspace, channel = telegram
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", "654321:wrong-bot-token-value")
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert f"({sandbox.url}/telegram/bot***/sendMessage) answered 401: Unauthorized" in outcome.error
    assert "wrong-bot-token-value" not in outcome.error
    assert not any("wrong-bot-token-value" in str(e) for e in store.events())
    assert "@BotFather" in outcome.hint


def test_an_unknown_chat_is_permanent_with_a_hint(tmp_path, sandbox, sandbox_env):
    workspace, channel = make_channel(tmp_path, sandbox, chat="@no")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "answered 400: Bad Request: chat not found" in outcome.error
    assert "administrator of the channel" in outcome.hint


def test_transient_error_then_success(telegram, sandbox):
    workspace, channel = telegram
    sandbox.fault("telegram", fail_next=2, status=502)
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(sandbox.received("telegram", accepted=True)) == 1


def test_429_retry_after_from_the_body_is_honoured_at_the_sandbox(telegram, sandbox):
    workspace, channel = telegram
    sandbox.fault("telegram", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("telegram")
    assert first.status == 429 and second.at - first.at >= 0.3


def test_retry_after_is_read_from_the_json_body(telegram):
    _, channel = telegram
    # A 429 as Telegram sends it: the wait is in parameters.retry_after, with no Retry-After header.
    response = httpx.Response(429, json={"ok": False, "error_code": 429, "description": "Too Many Requests: retry "
                                         "after 7", "parameters": {"retry_after": 7}},
                              request=httpx.Request("POST", "https://api.telegram.org/botX/sendMessage"))
    error = channel._error("sendMessage", str(response.request.url), response, response.json())
    assert error.transient and error.retry_after == 7.0 and error.status == 429


def test_an_answer_that_is_not_json_is_uncertain_and_not_retried(telegram, sandbox):
    workspace, channel = telegram
    sandbox.fault("telegram", garbage="html")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "uncertain" and outcome.attempts == 1  # it may have posted: a retry could post twice
    assert "check telegram-alerts by hand" in outcome.hint


def test_retract_within_48_hours_then_refused_after(telegram, sandbox):
    workspace, channel = telegram
    alert = make_alert(workspace)

    async def send_two(client):
        return [await channel.send(channel.prepare(alert, language), client, language)
                for language in ("en-GB", "cy-GB")]

    recent, old = with_client(send_two)
    messages = sandbox.store("telegram")["messages"]
    messages[old.remote_id]["date"] -= 49 * 3600  # sent 49 hours ago

    with_client(lambda client: channel.retract(recent, client))
    with_client(lambda client: channel.retract(recent, client))  # already gone: not an error
    assert recent.remote_id not in messages
    with pytest.raises(ChannelError) as raised:
        with_client(lambda client: channel.retract(old, client))
    assert "message can't be deleted" in raised.value.message and not raised.value.transient
    assert "48 hours" in raised.value.hint and "post a correction" in raised.value.hint
    assert old.remote_id in messages


def test_check_names_the_bot_and_the_channel(telegram, sandbox):
    _, channel = telegram
    assert with_client(channel.check) == "posting as @testshire_alerts_bot to @testshire_alerts"


def test_a_long_text_is_fitted_to_4096_characters_and_keeps_the_link(tmp_path, sandbox, sandbox_env):
    workspace, channel = make_channel(tmp_path, sandbox)
    filler = " ".join(f"Road {n} near the school is closed to traffic until the snow is cleared."
                      for n in range(1, 80))
    (workspace.root / "templates" / "school-closure.md").write_text(
        TEMPLATE.replace(BODY, BODY.replace(" More:", " " + filler + " More:")), encoding="utf-8")
    workspace = Workspace(workspace.root)
    channel = load(workspace.channels["telegram-alerts"], workspace.organisation.web)
    alert = make_alert(workspace)
    assert len("".join(text for text, _ in alert.info("en-GB").texts["body"])) > 4096
    post = channel.prepare(alert, "en-GB")
    assert post.shortened and post.unit == "characters" and post.count == len(post.text) <= 4096
    assert post.text.endswith("… https://alerts.testshire.example")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("telegram", accepted=True)
    assert received.body["text"] == post.text


def test_hostile_text_arrives_byte_for_byte(telegram, sandbox):
    workspace, channel = telegram
    hostile = "\"Ysgol\" <b>&amp;</b><script>alert('x')</script> 🌧️ مدرسة"
    alert = make_alert(workspace, values={**VALUES, "school": hostile})
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("telegram", accepted=True)
    assert "parse_mode" not in received.body  # plain text: nothing in it is read as markup
    assert received.body["text"] == channel.prepare(alert, "en-GB").text
    assert f"Testshire Council: {hostile} in Testshire town" in received.body["text"]
