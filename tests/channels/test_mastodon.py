import asyncio

import httpx
import pytest
from conftest import channel_config, make_alert, send_one

from broadcast.channels import load
from broadcast.channels.base import ChannelError

CONFIG = """kind = "mastodon"
[settings]
instance = "{url}/mastodon"
[secrets]
access_token = "env:TEST_MASTODON_TOKEN"
"""


@pytest.fixture
def mastodon(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "mastodon-council", CONFIG.format(url=sandbox.url))
    return workspace, load(config, workspace.organisation.web)


def test_posts_the_short_text_and_records_the_receipt(mastodon, sandbox):
    workspace, channel = mastodon
    alert = make_alert(workspace)
    outcome, store = send_one(channel, alert)
    assert outcome.state == "sent" and outcome.attempts == 1
    [received] = sandbox.received("mastodon", accepted=True)
    assert received.body["status"] == channel.prepare(alert, "en-GB").text
    assert received.body["status"].startswith("Hillside Primary School is closed on Monday 23 November 2026")
    assert received.body["language"] == "en"
    assert received.headers["idempotency-key"] == store.deliveries("A-2026-0001")[0]["idempotency_key"]
    row = store.deliveries("A-2026-0001")[0]
    assert row["state"] == "sent" and row["remote_url"] == outcome.receipt.url
    assert [e["type"] for e in store.events() if e["channel"] == "mastodon-council"] == [
        "delivery_queued", "delivery_attempt", "delivery_result"]


def test_a_resend_with_the_same_key_does_not_post_twice(mastodon, sandbox):
    workspace, channel = mastodon
    alert = make_alert(workspace)
    post = channel.prepare(alert, "en-GB")

    async def twice():
        async with httpx.AsyncClient() as client:
            first = await channel.send(post, client, "same-key")
            second = await channel.send(post, client, "same-key")
            return first, second

    first, second = asyncio.run(twice())
    assert first.remote_id == second.remote_id
    assert len(sandbox.received("mastodon", accepted=True)) == 1


def test_wrong_token_is_permanent_with_a_hint(mastodon, sandbox, monkeypatch):
    workspace, channel = mastodon
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "wrong-token-value")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "HTTP 401" in outcome.error and "wrong-token-value" not in outcome.error
    assert "write:statuses" in outcome.hint


def test_transient_error_then_success(mastodon, sandbox):
    workspace, channel = mastodon
    sandbox.fault("mastodon", fail_next=2, status=503)
    waits = []

    async def sleep(seconds):
        waits.append(seconds)

    outcome, store = send_one(channel, make_alert(workspace), sleep=sleep)
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(waits) == 2 and all(w > 0 for w in waits)
    assert len(sandbox.received("mastodon", accepted=True)) == 1
    assert [e["type"] for e in store.events()].count("retry_scheduled") == 2


def test_429_retry_after_is_honoured_at_the_sandbox(mastodon, sandbox):
    workspace, channel = mastodon
    sandbox.fault("mastodon", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("mastodon")
    assert second.at - first.at >= 0.3


def test_instance_limit_retract_and_check(mastodon, sandbox):
    workspace, channel = mastodon
    channel.limit = 100

    async def go():
        async with httpx.AsyncClient() as client:
            await channel.configure(client)
            receipt = await channel.send(channel.prepare(make_alert(workspace), "en-GB"), client, "k")
            await channel.retract(receipt, client)
            await channel.retract(receipt, client)  # already gone: not an error
            return await channel.check(client)

    assert asyncio.run(go()) == f"posting as @council on {sandbox.url}/mastodon"
    assert channel.limit == 500  # learnt from /api/v2/instance
    assert sandbox.store("mastodon")["statuses"] == {}
    deletes = [r for r in sandbox.received("mastodon") if r.method == "DELETE"]
    assert [r.status for r in deletes] == [200, 404]


def test_check_with_a_wrong_token_says_how_to_renew(mastodon, monkeypatch):
    workspace, channel = mastodon
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "wrong")

    async def go():
        async with httpx.AsyncClient() as client:
            return await channel.check(client)

    with pytest.raises(ChannelError) as raised:
        asyncio.run(go())
    assert raised.value.status == 401 and "write:statuses" in raised.value.hint


def test_a_key_used_before_for_another_text_is_a_fail_never_ok(mastodon, sandbox):
    workspace, channel = mastodon
    first = channel.prepare(make_alert(workspace), "en-GB")
    other = channel.prepare(make_alert(workspace, values={"school": "Ysgol Bro Lliw"}), "en-GB")

    async def collide():
        async with httpx.AsyncClient() as client:
            await channel.send(first, client, "reused-key")
            await channel.send(other, client, "reused-key")

    with pytest.raises(ChannelError) as raised:
        asyncio.run(collide())
    assert "answered with an earlier, different post for this message's key" in raised.value.message
    assert not raised.value.transient and "restored from a copy" in raised.value.hint
    assert len(sandbox.received("mastodon", accepted=True)) == 1


def test_html_content_with_split_links_reads_as_the_text_sent():
    from broadcast.channels.mastodon import same_words

    text = "Hillside is closed.\nMore: https://alerts.testshire.example/x"
    content = ('<p>Hillside is closed.<br />More: <a href="https://alerts.testshire.example/x"><span class="invisible">'
               'https://</span><span class="">alerts.testshire.example/x</span></a></p>')
    assert same_words(content, text) and not same_words(content, text.replace("closed", "open"))
