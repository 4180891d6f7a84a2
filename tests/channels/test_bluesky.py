import asyncio
import dataclasses
import re
import time

import pytest
from conftest import TEMPLATE, VALUES, channel_config, make_alert, send_one, with_client

from broadcast.channels import load
from broadcast.channels.base import ChannelError
from broadcast.channels.bluesky import record_key
from broadcast.channels.textfit import graphemes
from broadcast.send.fanout import delivery_key
from broadcast.workspace import Workspace

CONFIG = """kind = "bluesky"
[settings]
service = "{url}/bluesky"
handle = "alerts.testshire.example"
[secrets]
app_password = "env:TEST_BLUESKY_PASSWORD"
"""
SHORT = ("## short\n{{ school }} is closed on {{ date }} because of {{ reason }}. ((Pupils should not travel.)) "
         "{{ org.web }}\n")
TID = re.compile(r"^[234567a-j][234567a-z]{12}$")


@pytest.fixture
def bluesky(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "bluesky-council", CONFIG.format(url=sandbox.url))
    return workspace, load(config, workspace.organisation.web)


def paths(sandbox):
    return [r.path.rsplit("/", 1)[1] for r in sandbox.received("bluesky")]




def test_posts_with_link_facets_in_bytes_and_one_session_for_every_post(bluesky, sandbox):
    workspace, channel = bluesky
    alert = make_alert(workspace, values={"school": "Ysgol Gynradd Llanddŵr 🏫"})
    outcome, store = send_one(channel, alert)
    send_one(channel, alert, "cy-GB", store=store)
    second, _ = send_one(channel, make_alert(workspace, "A-2026-0002"), store=store)
    assert outcome.state == second.state == "sent"
    assert paths(sandbox).count("com.atproto.server.createSession") == 1  # the session is reused
    received = sandbox.received("bluesky", accepted=True)
    assert len(received) == 3
    body = received[0].body
    record = body["record"]
    assert record["text"] == channel.prepare(alert, "en-GB").text
    assert record["text"].startswith("Ysgol Gynradd Llanddŵr 🏫 is closed on Monday 23 November 2026")
    assert record["$type"] == "app.bsky.feed.post" and record["langs"] == ["en"]
    assert received[1].body["record"]["langs"] == ["cy"]
    [facet] = record["facets"]
    link = "https://alerts.testshire.example"
    raw = record["text"].encode("utf-8")
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert raw[start:end].decode("utf-8") == link == facet["features"][0]["uri"]
    assert start == record["text"].index(link) + 4  # ŵ is 2 bytes and 🏫 is 4: byte offsets, not characters
    key = store.deliveries("A-2026-0001")[0]["idempotency_key"]
    assert key == delivery_key("A-2026-0001", "bluesky-council", "en-GB")
    rkey = record_key(key, alert.sent)
    assert body["rkey"] == rkey and TID.match(rkey)
    assert outcome.receipt.remote_id == f"at://{body['repo']}/app.bsky.feed.post/{rkey}"
    assert outcome.receipt.url == f"https://bsky.app/profile/alerts.testshire.example/post/{rkey}"
    assert store.deliveries("A-2026-0001")[0]["remote_url"] == outcome.receipt.url


def test_a_resend_with_the_same_key_reads_the_first_record_back(bluesky, sandbox):
    workspace, channel = bluesky
    post = channel.prepare(make_alert(workspace), "en-GB")

    async def three_times(client):
        first = await channel.send(post, client, "same-key")
        second = await channel.send(post, client, "same-key")  # the PDS refuses the key: 400
        sandbox.fault("bluesky", fail_next=1, status=500)  # as the reference PDS answers today
        third = await channel.send(post, client, "same-key")
        return first, second, third

    first, second, third = with_client(three_times)
    assert first == second == third
    assert len(sandbox.received("bluesky", accepted=True)) == 1
    creates = [r.status for r in sandbox.received("bluesky") if r.path.endswith("createRecord")]
    assert creates == [200, 400, 500]
    assert paths(sandbox).count("com.atproto.repo.getRecord") == 2


def test_an_expired_access_token_is_refreshed_and_the_post_made_once(bluesky, sandbox):
    workspace, channel = bluesky
    send_one(channel, make_alert(workspace))
    for token in sandbox.store("bluesky")["access"].values():
        token["expires"] = time.time() - 1
    outcome, _ = send_one(channel, make_alert(workspace, "A-2026-0002"))
    assert outcome.state == "sent" and outcome.attempts == 1
    assert paths(sandbox) == ["com.atproto.server.createSession", "com.atproto.repo.createRecord",
                              "com.atproto.repo.createRecord", "com.atproto.server.refreshSession",
                              "com.atproto.repo.createRecord"]
    assert [r.status for r in sandbox.received("bluesky")][1:] == [200, 400, 200, 200]
    assert len(sandbox.received("bluesky", accepted=True)) == 2


def test_a_wrong_app_password_is_permanent_with_a_hint(bluesky, sandbox, monkeypatch):
    workspace, channel = bluesky
    monkeypatch.setenv("TEST_BLUESKY_PASSWORD", "wrong-app-password")
    outcome, _ = send_one(channel, make_alert(workspace))
    assert outcome.state == "failed" and outcome.attempts == 1
    assert "HTTP 401" in outcome.error and "Invalid identifier or password" in outcome.error
    assert "wrong-app-password" not in outcome.error
    assert "app password" in outcome.hint
    assert sandbox.received("bluesky", accepted=True) == []


def test_transient_error_then_success(bluesky, sandbox):
    workspace, channel = bluesky
    sandbox.fault("bluesky", fail_next=2, status=503)
    outcome, store = send_one(channel, make_alert(workspace))
    assert outcome.state == "sent" and outcome.attempts == 3
    assert len(sandbox.received("bluesky", accepted=True)) == 1
    assert [e["type"] for e in store.events()].count("retry_scheduled") == 2


def test_429_retry_after_is_honoured_at_the_sandbox(bluesky, sandbox):
    workspace, channel = bluesky
    sandbox.fault("bluesky", fail_next=1, status=429, retry_after=0.3)
    outcome, _ = send_one(channel, make_alert(workspace), sleep=asyncio.sleep)
    assert outcome.state == "sent" and outcome.waits == [0.3]
    first, second = sandbox.received("bluesky")[:2]
    assert first.status == 429 and second.at - first.at >= 0.3


def test_create_session_is_limited_as_the_real_one_is(bluesky, sandbox):
    workspace, channel = bluesky
    now = time.time()
    sandbox.store("bluesky")["session_log"] = {"alerts.testshire.example": [now - 60] * 30}
    with pytest.raises(ChannelError) as raised:
        with_client(channel.check)
    assert raised.value.status == 429 and raised.value.transient
    assert 230 < raised.value.retry_after <= 241  # from RateLimit-Reset: the oldest login leaves the window


def test_retract_and_check(bluesky, sandbox):
    workspace, channel = bluesky

    async def go(client):
        receipt = await channel.send(channel.prepare(make_alert(workspace), "en-GB"), client, "k")
        await channel.retract(receipt, client)
        await channel.retract(receipt, client)  # already gone: not an error
        return await channel.check(client)

    assert with_client(go) == f"posting as @alerts.testshire.example on {sandbox.url}/bluesky"
    assert sandbox.store("bluesky")["records"] == {}
    assert [r.status for r in sandbox.received("bluesky") if r.path.endswith("deleteRecord")] == [200, 200]


def test_a_long_text_is_fitted_to_300_graphemes_and_keeps_the_link(tmp_path, sandbox, sandbox_env):
    workspace, config = channel_config(tmp_path, "bluesky-council", CONFIG.format(url=sandbox.url))
    filler = " ".join(f"Bus route {n} 🚌 will not stop at the school gates today." for n in range(1, 9))
    (workspace.root / "templates" / "school-closure.md").write_text(
        TEMPLATE.replace(SHORT, SHORT.replace("((Pupils should not travel.))", filler)), encoding="utf-8")
    workspace = Workspace(workspace.root)
    channel = load(workspace.channels["bluesky-council"], workspace.organisation.web)
    alert = make_alert(workspace)
    assert graphemes("".join(text for text, _ in alert.info("en-GB").texts["short"])) > 300
    post = channel.prepare(alert, "en-GB")
    assert post.shortened and post.unit == "graphemes" and post.limit == 300
    assert post.count == graphemes(post.text) <= 300
    assert post.text.endswith("… https://alerts.testshire.example")
    assert post.text.startswith("Hillside Primary School is closed on Monday 23 November 2026 because of snow")
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("bluesky", accepted=True)
    assert received.body["record"]["text"] == post.text

    # The sandbox refuses what the adapter would never send: over 300 graphemes.
    too_long = dataclasses.replace(post, text="a" * 301)
    with pytest.raises(ChannelError) as raised:
        with_client(lambda client: channel.send(too_long, client, "other-key"))
    assert raised.value.status == 400 and "300 graphemes" in raised.value.message and not raised.value.transient


def test_the_byte_limit_counts_too(bluesky):
    _, channel = bluesky
    family = "👨‍👩‍👧‍👦"  # one grapheme, 25 bytes
    assert graphemes(family * 150) == 150
    assert channel.count(family * 150) == 375  # 3,750 bytes: over the 3,000-byte cap, so over the limit


def test_hostile_text_arrives_byte_for_byte(bluesky, sandbox):
    workspace, channel = bluesky
    hostile = "\"Ysgol\" <script>alert('x')</script> 🌧️ مدرسة"
    alert = make_alert(workspace, values={**VALUES, "school": hostile})
    outcome, _ = send_one(channel, alert)
    assert outcome.state == "sent"
    [received] = sandbox.received("bluesky", accepted=True)
    text = received.body["record"]["text"]
    assert text == channel.prepare(alert, "en-GB").text and text.startswith(hostile + " is closed")
