import asyncio
import json

import httpx
import pytest
from conftest import channel_config, everything_stored, make_alert, send_one, with_client

from broadcast.channels import load
from broadcast.channels.base import ChannelError, Receipt
from broadcast.sandbox.platforms.facebook import EXPIRED_TOKEN, USER_TOKEN
from broadcast.sandbox.server import CREDENTIALS
from broadcast.send.lifecycle import retract

CONFIG = """kind = "facebook"
languages = ["en-GB", "cy-GB"]
[settings]
page_id = "100000000000001"
graph = "{url}/facebook"
[secrets]
page_access_token = "env:TEST_FACEBOOK_TOKEN"
"""
HOSTILE = "St Mary & St John's \"Infants\" <script>alert(1)</script> 🚸 מדרסה"


@pytest.fixture
def facebook(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "facebook-page", CONFIG.format(url=sandbox.url))
    return workspace, load(config, workspace.organisation.web)






def test_a_correction_or_cancellation_deletes_the_page_post(facebook, sandbox):
    workspace, channel = facebook
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert)
    assert outcome.state == "sent" and len(sandbox.store("facebook")["posts"]) == 1
    [result] = retract(workspace, store, [alert], actor="duty officer")
    assert (result.channel, result.done, result.detail) == ("facebook-page", True, "deleted")
    assert sandbox.store("facebook")["posts"] == {}  # gone from the Page
    [delete] = [r for r in sandbox.received("facebook") if r.method == "DELETE"]
    assert delete.path == f"/facebook/v21.0/{outcome.receipt.remote_id}"
    assert store.deliveries(alert.identifier)[0]["state"] == "retracted"


def test_posts_the_body_and_link_with_the_token_in_the_form_not_the_url(facebook, sandbox):
    workspace, channel = facebook
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert)
    assert outcome.state == "sent" and outcome.attempts == 1
    [received] = sandbox.received("facebook", accepted=True)
    assert received.path == "/facebook/v21.0/100000000000001/feed"
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert received.body == {"message": channel.prepare(alert, "en-GB").text,
                             "link": "https://alerts.testshire.example", "access_token": CREDENTIALS["facebook"]}
    assert "authorization" not in received.headers
    [post_id] = sandbox.store("facebook")["posts"]
    assert outcome.receipt == Receipt(remote_id=post_id, url=f"https://www.facebook.com/{post_id}")
    assert store.deliveries("A-2026-0001")[0]["remote_url"] == f"https://www.facebook.com/{post_id}"


def test_hostile_text_arrives_byte_for_byte(facebook, sandbox):
    workspace, channel = facebook
    alert = make_alert(workspace, values={"school": HOSTILE[:60]})
    outcome, _ = send_one(channel, alert, "cy-GB")
    assert outcome.state == "sent"
    [stored] = sandbox.store("facebook")["posts"].values()
    assert stored["message"] == channel.prepare(alert, "cy-GB").text
    assert HOSTILE[:60] in stored["message"] and stored["message"].startswith("Cyngor Testshire: mae ")


def test_over_long_text_is_shortened_by_rule_to_the_character_limit(facebook, sandbox):
    workspace, channel = facebook
    assert channel.limit == 63_206 and channel.unit == "characters"
    alert = make_alert(workspace, values={"school": "Ysgol Gymraeg Llanfair-ym-Muallt 🏫"})
    full = channel.prepare(alert, "en-GB")
    channel.limit = full.count - 1
    post = channel.prepare(alert, "en-GB")
    assert post.shortened and post.count == len(post.text) <= full.count - 1
    assert post.text.endswith("… https://alerts.testshire.example")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    assert sandbox.received("facebook", accepted=True)[0].body["message"] == post.text


def test_an_expired_token_is_permanent_and_says_how_to_renew(facebook, sandbox, monkeypatch):
    workspace, channel = facebook
    monkeypatch.setenv("TEST_FACEBOOK_TOKEN", EXPIRED_TOKEN)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "code 190/463" in outcome.error and "[the token expired]" in outcome.error
    assert outcome.hint == (
        "renew the Page token: generate a new long-lived Page access token (Meta Business Suite, or Graph API "
        "Explorer: choose the Page, with the permissions pages_manage_posts, pages_read_engagement, "
        "pages_show_list), store it in TEST_FACEBOOK_TOKEN (named in channels/facebook-page.toml), then: "
        "broadcast resend A-2026-0001 --only facebook-page")
    assert EXPIRED_TOKEN not in everything_stored(store) + outcome.error


def test_a_user_token_cannot_post_and_the_hint_names_the_missing_permissions(facebook, sandbox, monkeypatch):
    workspace, channel = facebook
    monkeypatch.setenv("TEST_FACEBOOK_TOKEN", USER_TOKEN)
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1 and "code 200" in outcome.error
    assert outcome.hint.startswith("the token lacks pages_manage_posts and pages_read_engagement")


def test_transient_error_then_success(facebook, sandbox):
    workspace, channel = facebook
    sandbox.fault("facebook", fail_next=2, status=503)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(sandbox.received("facebook", accepted=True)) == 1
    assert [e["type"] for e in store.events()].count("retry_scheduled") == 2


def test_429_retry_after_is_honoured_at_the_sandbox(facebook, sandbox):
    workspace, channel = facebook
    sandbox.fault("facebook", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("facebook")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.3


def test_a_second_identical_post_is_refused_as_a_duplicate(facebook, sandbox):
    workspace, channel = facebook
    post = channel.prepare(make_alert(workspace), "en-GB")

    async def twice(client):
        await channel.send(post, client, "k")
        await channel.send(post, client, "k")

    with pytest.raises(ChannelError) as raised:
        with_client(twice)
    assert "code 506" in raised.value.message and raised.value.transient is False
    assert "look before resending" in raised.value.hint
    assert len(sandbox.received("facebook", accepted=True)) == 1


def test_retract_deletes_with_the_token_in_the_body_and_a_second_retract_is_not_an_error(facebook, sandbox):
    workspace, channel = facebook

    async def go(client):
        receipt = await channel.send(channel.prepare(make_alert(workspace), "en-GB"), client, "k")
        await channel.retract(receipt, client)
        await channel.retract(receipt, client)  # already gone
        return receipt

    receipt = with_client(go)
    assert sandbox.store("facebook")["posts"] == {}
    deletes = [r for r in sandbox.received("facebook") if r.method == "DELETE"]
    assert [r.path for r in deletes] == [f"/facebook/v21.0/{receipt.remote_id}"] * 2
    assert [r.status for r in deletes] == [200, 400]
    assert deletes[0].body == {"access_token": CREDENTIALS["facebook"]}


def test_check_reads_me_with_a_bearer_header(facebook, sandbox):
    _, channel = facebook
    assert with_client(channel.check) == "posting as the Page Sandbox County Council (100000000000001)"
    [request] = sandbox.received("facebook")
    assert request.path == "/facebook/v21.0/me" and request.body == {"fields": "id,name"}
    assert request.headers["authorization"] == f"Bearer {CREDENTIALS['facebook']}"


def test_check_with_a_user_token_says_whose_it_is(facebook, monkeypatch):
    _, channel = facebook
    monkeypatch.setenv("TEST_FACEBOOK_TOKEN", USER_TOKEN)
    with pytest.raises(ChannelError) as raised:
        with_client(channel.check)
    assert raised.value.message == ("facebook-page: this token belongs to Sandbox Duty Officer (5550001), not the "
                                    "Page 100000000000001")
    assert raised.value.transient is False and "Page access token" in raised.value.hint


def test_check_with_an_expired_token_says_how_to_renew(facebook, monkeypatch):
    _, channel = facebook
    monkeypatch.setenv("TEST_FACEBOOK_TOKEN", EXPIRED_TOKEN)
    with pytest.raises(ChannelError) as raised:
        with_client(channel.check)
    assert "code 190/463" in raised.value.message
    assert raised.value.hint.startswith("renew the Page token: generate a new long-lived Page access token")


def graph_answer(status, error, headers=None):
    return httpx.Response(status, json={"error": error}, headers=headers or {})


@pytest.mark.parametrize(("status", "error", "headers", "transient", "retry_after", "says"), [
    (400, {"message": "Error validating access token: The user has changed the password.", "type": "OAuthException",
           "code": 190, "error_subcode": 460}, {}, False, None, "[the password of the account"),
    (400, {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32},
     {"x-business-use-case-usage": json.dumps({"100000000000001": [{"type": "pages", "call_count": 100,
                                                                    "estimated_time_to_regain_access": 3}]})},
     True, 180.0, "[rate limited]"),
    (400, {"message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4,
           "is_transient": True}, {}, True, None, "[rate limited]"),
    (400, {"message": "(#613) Calls to this api have exceeded the rate limit.", "type": "OAuthException",
           "code": 613}, {"retry-after": "7"}, True, 7.0, "[rate limited]"),
    (500, {"message": "An unexpected error has occurred. Please retry your request later.",
           "type": "OAuthException", "code": 2, "is_transient": True}, {}, True, None, "code 2:"),
    (400, {"message": "It looks like you were misusing this feature by going too fast.", "type": "OAuthException",
           "code": 368, "error_subcode": 1390008}, {}, False, None, "[the Page is blocked from posting]"),
    (403, {"message": "(#10) The pages_manage_posts permission is required", "type": "OAuthException",
           "code": 10}, {}, False, None, "[permission missing]"),
])
def test_graph_errors_are_classified_by_code(facebook, status, error, headers, transient, retry_after, says):
    _, channel = facebook
    raised = channel._error(graph_answer(status, {**error, "fbtrace_id": "AbC123"}, headers), "posting", "A-1")
    assert raised.transient is transient and raised.retry_after == retry_after
    assert says in raised.message and "fbtrace_id AbC123" in raised.message
    if error["code"] == 10:
        assert raised.hint.startswith("the token lacks pages_manage_posts (or the CREATE_CONTENT task")


def test_a_graph_url_over_plain_http_is_refused(tmp_path, sandbox_env):
    workspace, config = channel_config(tmp_path, "facebook-page", CONFIG.format(url="http://graph.example"))
    outcome, _ = send_one(load(config, workspace.organisation.web), make_alert(workspace))
    assert outcome.state == "failed" and "graph must start with https://" in outcome.error
