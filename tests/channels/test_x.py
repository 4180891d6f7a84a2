import asyncio
import dataclasses
import time

import httpx
import pytest
from conftest import TEMPLATE, VALUES, channel_config, make_alert, send_one, with_client

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.channels.textfit import x_weighted_length
from broadcast.sandbox.server import CREDENTIALS
from broadcast.workspace import Workspace

CONFIG = """kind = "x"
[settings]
api = "{url}/x"
[secrets]
consumer_key = "env:TEST_X_CONSUMER_KEY"
consumer_secret = "env:TEST_X_CONSUMER_SECRET"
access_token = "env:TEST_X_ACCESS_TOKEN"
access_token_secret = "env:TEST_X_ACCESS_SECRET"
"""
SHORT = ("## short\n{{ school }} is closed on {{ date }} because of {{ reason }}. ((Pupils should not travel.)) "
         "{{ org.web }}\n")


@pytest.fixture
def x(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "x-council", CONFIG.format(url=sandbox.url))
    return workspace, load(config, workspace.organisation.web)




def test_posts_the_short_text_signed_with_oauth1(x, sandbox):
    workspace, channel = x
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert)
    assert outcome.state == "sent" and outcome.attempts == 1
    [received] = sandbox.received("x", accepted=True)  # accepted: the sandbox checked the signature
    assert received.body == {"text": channel.prepare(alert, "en-GB").text}
    authorization = received.headers["authorization"]
    assert authorization.startswith("OAuth ") and 'oauth_signature_method="HMAC-SHA1"' in authorization
    assert f'oauth_consumer_key="{CREDENTIALS["x_consumer_key"]}"' in authorization
    assert CREDENTIALS["x_consumer_secret"] not in authorization
    [tweet_id] = sandbox.store("x")["tweets"]
    assert outcome.receipt.remote_id == tweet_id
    assert outcome.receipt.url == f"https://x.com/i/web/status/{tweet_id}"
    assert store.deliveries("A-2026-0001")[0]["remote_url"] == outcome.receipt.url


def test_a_wrong_secret_fails_the_signature_check_with_a_hint(x, sandbox, monkeypatch):
    workspace, channel = x
    monkeypatch.setenv("TEST_X_ACCESS_SECRET", "not-the-access-token-secret")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert outcome.error == "x-council: X (posting) answered HTTP 401: Unauthorized"
    assert "not-the-access-token-secret" not in outcome.error
    assert "regenerate the access token and secret" in outcome.hint and "developer portal" in outcome.hint
    assert sandbox.received("x", accepted=True) == []


def test_duplicate_content_is_permanent_with_a_hint(x, sandbox):
    workspace, channel = x
    first, store = send_one(channel, make_alert(workspace))
    # X takes no key, but refuses the same words again: a second alert with the same text is not posted.
    second, _ = send_one(channel, make_alert(workspace, "A-2026-0002"), store=store)
    assert first.state == "sent" and second.state == "failed" and second.attempts == 1
    assert "HTTP 403" in second.error and "duplicate content" in second.error
    assert "if the first went out, nothing more is needed" in second.hint
    assert len(sandbox.received("x", accepted=True)) == 1


def test_transient_error_then_success_signs_each_attempt_afresh(x, sandbox):
    workspace, channel = x
    sandbox.fault("x", fail_next=2, status=503)
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(sandbox.received("x", accepted=True)) == 1
    nonces = {r.headers["authorization"].split('oauth_nonce="')[1].split('"')[0] for r in sandbox.received("x")}
    assert len(nonces) == 3  # the sandbox refuses a nonce it has seen, as X does


def test_429_retry_after_is_honoured_at_the_sandbox(x, sandbox):
    workspace, channel = x
    sandbox.fault("x", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("x")
    assert first.status == 429 and second.at - first.at >= 0.3


def test_a_429_without_retry_after_waits_for_the_window_reset(x):
    _, channel = x
    # X's own 429: no Retry-After, the end of the window in x-rate-limit-reset (epoch seconds).
    response = httpx.Response(429, json={"title": "Too Many Requests", "detail": "Too Many Requests",
                                         "type": "about:blank", "status": 429},
                              headers={"x-rate-limit-reset": str(int(time.time()) + 30)})
    error = channel._error(response, "posting")
    assert error.transient and 28 <= error.retry_after <= 30


def test_a_403_that_is_not_a_duplicate_says_to_fix_the_app_permissions(x):
    _, channel = x
    response = httpx.Response(403, json={"title": "Forbidden", "type": "about:blank", "status": 403,
                                         "detail": "You are not permitted to perform this action."})
    error = channel._error(response, "posting")
    assert not error.transient and error.message.endswith("HTTP 403: Forbidden: You are not permitted to perform "
                                                          "this action.")
    assert "Read and Write permission" in error.hint


def test_retract_and_check(x, sandbox):
    workspace, channel = x

    async def go(client):
        receipt = await channel.send(channel.prepare(make_alert(workspace), "en-GB"), client, "k")
        await channel.retract(receipt, client)
        await channel.retract(receipt, client)  # already gone: not an error
        return await channel.check(client)

    assert with_client(go) == "posting as @TestshireCC"
    assert sandbox.store("x")["tweets"] == {}
    assert [r.status for r in sandbox.received("x") if r.method == "DELETE"] == [200, 404]


def test_a_long_text_is_fitted_to_280_weighted_and_keeps_the_link(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "x-council", CONFIG.format(url=sandbox.url))
    filler = " ".join(f"{n} 🚌 雪のため休校です." for n in range(1, 10))
    (workspace.root / "templates" / "school-closure.md").write_text(
        TEMPLATE.replace(SHORT, SHORT.replace("((Pupils should not travel.))", filler)), encoding="utf-8")
    workspace = Workspace(workspace.root)
    channel = load(workspace.channels["x-council"], workspace.organisation.web)
    alert = make_alert(workspace)
    full = "".join(text for text, _ in alert.info("en-GB").texts["short"])
    assert len(full) < 280 < x_weighted_length(full)  # over the limit only as X weighs it
    post = channel.prepare(alert, "en-GB")
    assert post.shortened and post.limit == 280 and post.unit.startswith("weighted")
    assert post.count == x_weighted_length(post.text) <= 280
    assert post.text.endswith("… https://alerts.testshire.example")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    assert sandbox.received("x", accepted=True)[0].body["text"] == post.text

    # The sandbox weighs as X does and refuses what the adapter would never send.
    too_long = dataclasses.replace(post, text="🚌" * 141)
    with pytest.raises(ChannelError) as raised:
        with_client(lambda client: channel.send(too_long, client, "other-key"))
    assert raised.value.status == 400 and not raised.value.transient
    assert raised.value.message == ("x-council: X (posting) answered HTTP 400: Your Tweet text is too long. For more "
                                    "information on how Twitter determines text length see "
                                    "https://github.com/twitter/twitter-text.")


def test_hostile_text_arrives_byte_for_byte(x, sandbox):
    workspace, channel = x
    hostile = "\"Ysgol\" <script>alert('x')</script> 🌧️ مدرسة"
    alert = make_alert(workspace, values={**VALUES, "school": hostile})
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("x", accepted=True)
    assert received.body["text"] == channel.prepare(alert, "en-GB").text
    assert received.body["text"].startswith(hostile + " is closed")
