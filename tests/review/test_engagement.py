"""`review collect` asks Bluesky, X and Facebook what the public did with each post (counts, and the replies' text,
link and time, never who wrote them), through each platform's own read API as the sandbox emulates it; a removed
post, a rate limit and a platform that keeps failing are each reported on their post without stopping the others,
and the platforms that cannot report anything say why."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import SETS, invoke

from broadcast.sandbox.platforms import facebook as graph
from broadcast.sandbox.platforms import x as xapi
from broadcast.sandbox.server import CREDENTIALS
from broadcast.store import Store

HANDLE = "gwen.example"  # the member of the public who replies, on every platform
NAME = "Gwen Hughes"

CHANNELS = {
    "bluesky-council": 'kind = "bluesky"\n[settings]\nservice = "{url}/bluesky"\nhandle = "alerts.testshire.example"\n'
                       '[secrets]\napp_password = "env:TEST_BLUESKY_PASSWORD"\n',
    "x-council": 'kind = "x"\n[settings]\napi = "{url}/x"\n[secrets]\nconsumer_key = "env:TEST_X_CONSUMER_KEY"\n'
                 'consumer_secret = "env:TEST_X_CONSUMER_SECRET"\naccess_token = "env:TEST_X_ACCESS_TOKEN"\n'
                 'access_token_secret = "env:TEST_X_ACCESS_SECRET"\n',
    "facebook-page": 'kind = "facebook"\n[settings]\npage_id = "100000000000001"\ngraph = "{url}/facebook"\n'
                     '[secrets]\npage_access_token = "env:TEST_FACEBOOK_TOKEN"\n',
    "telegram-alerts": 'kind = "telegram"\n[settings]\nchat_id = "@testshire_alerts"\napi = "{url}/telegram"\n'
                       '[secrets]\nbot_token = "env:TEST_TELEGRAM_TOKEN"\n',
    "slack-staff": 'kind = "slack"\n[secrets]\nwebhook_url = "env:TEST_SLACK_URL"\n',
    "teams-staff": 'kind = "teams"\n[secrets]\nworkflow_url = "env:TEST_TEAMS_URL"\n',
}


@pytest.fixture
def sent(live, sandbox):
    """The fixture workspace with every social and staff channel on the sandbox, one warning sent to them all;
    returns (workspace directory, incident)."""
    for name, text in CHANNELS.items():
        (live / "channels" / f"{name}.toml").write_text(text.format(url=sandbox.url), encoding="utf-8")
    result = invoke(live, "warn", "school-closure", *SETS, "--yes")
    assert result.exit_code == 0, result.output
    store = Store.open(live / "broadcast.db")
    incident = store.incidents()[0]["slug"]
    store.close()
    return live, incident


# -- the public, replying on each platform through its own posting path ------------------------------------
def reply_on_bluesky(sandbox, uri: str, text: str) -> dict:
    xrpc = f"{sandbox.url}/bluesky/xrpc"
    session = httpx.post(f"{xrpc}/com.atproto.server.createSession", timeout=5,
                         json={"identifier": HANDLE, "password": CREDENTIALS["bluesky"]}).json()
    sandbox.store("bluesky").setdefault("profiles", {})[session["did"]] = {"displayName": NAME}
    ref = {"uri": uri, "cid": sandbox.store("bluesky")["records"][uri]["cid"]}
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-23T07:20:00.000Z",
              "reply": {"root": ref, "parent": ref}}
    created = httpx.post(f"{xrpc}/com.atproto.repo.createRecord", timeout=5,
                         headers={"Authorization": f"Bearer {session['accessJwt']}"},
                         json={"repo": session["did"], "collection": "app.bsky.feed.post", "record": record})
    assert created.status_code == 200, created.text
    rkey = created.json()["uri"].rsplit("/", 1)[1]
    return {"did": session["did"], "link": f"https://bsky.app/profile/{session['did']}/post/{rkey}",
            "at": record["createdAt"]}


def reply_on_x(sandbox, tweet_id: str, text: str) -> dict:
    from oauthlib.oauth1 import Client

    signer = Client(CREDENTIALS["x_consumer_key"], client_secret=CREDENTIALS["x_consumer_secret"],
                    resource_owner_key=xapi.PUBLIC_ACCESS_TOKEN, resource_owner_secret=xapi.PUBLIC_ACCESS_SECRET)
    url = f"{sandbox.url}/x/2/tweets"
    _, headers, _ = signer.sign(url, "POST")
    created = httpx.post(url, timeout=5, headers={"Authorization": headers["Authorization"]},
                         json={"text": text, "reply": {"in_reply_to_tweet_id": tweet_id}})
    assert created.status_code == 201, created.text
    reply_id = created.json()["data"]["id"]
    return {"id": reply_id, "link": f"https://x.com/i/web/status/{reply_id}",
            "at": sandbox.store("x")["tweets"][reply_id]["created_at"]}


def comment_on_facebook(sandbox, object_id: str, text: str) -> dict:
    created = httpx.post(f"{sandbox.url}/facebook/v21.0/{object_id}/comments", timeout=5,
                         data={"message": text, "access_token": graph.PUBLIC_TOKEN})
    assert created.status_code == 200, created.text
    return sandbox.store("facebook")["comments"][created.json()["id"]]


def only(store_of: dict) -> tuple[str, dict]:
    [(key, value)] = store_of.items()
    return key, value


# -- reading back what was collected --------------------------------------------------------------------------
def engagement(root, incident: str, channel: str) -> dict:
    data = json.loads(invoke(root, "review", "metrics", incident, "--json").stdout)
    [found] = [e for e in data["engagement"] if (e["channel"], e["language"]) == (channel, "en-GB")]
    return found


def stored(root, channel: str) -> dict:
    """The last engagement_collected event for a channel, exactly as the log holds it."""
    store = Store.open(root / "broadcast.db")
    try:
        return [e for e in store.events() if e["type"] == "engagement_collected" and e["channel"] == channel][-1]
    finally:
        store.close()


def stored_details(root, channel: str) -> str:
    return stored(root, channel)["details"]


def shown(output: str, channel: str) -> str:
    """What `review collect` printed about the channel's post: its figures, or its note."""
    [line] = [line for line in output.splitlines() if line.startswith(f"A-2026-0001 {channel} (en-GB)  ")]
    return line.split("  ", 1)[1]


def counted_nothing(root, incident: str, output: str, channel: str) -> bool:
    """The post was read: every count it reports is 0, and nothing went wrong."""
    found = engagement(root, incident, channel)
    return (found["note"] is None and (found["replies"], found["reposts"], found["likes"]) == (0, 0, 0)
            and shown(output, channel).endswith(" 0 reposts, 0 likes" + (", 0 views" if channel == "x-council"
                                                                        else "")))


def collect(root, incident: str) -> str:
    result = invoke(root, "review", "collect", incident)
    assert result.exit_code == 0, result.output
    return result.output


# -- each platform's counts and replies --------------------------------------------------------------------------
def test_bluesky_counts_and_replies_come_back_without_who_wrote_them(sent, sandbox):
    root, incident = sent
    uri, post = only(sandbox.store("bluesky")["records"])
    post["repostCount"], post["quoteCount"], post["likeCount"] = 5, 2, 40
    reply = reply_on_bluesky(sandbox, uri, "Is the school bus running?")

    output = collect(root, incident)
    assert "A-2026-0001 bluesky-council (en-GB)  1 reply, 7 reposts, 40 likes" in output  # quotes count as reposts
    assert f"    reply 2026-11-23 07:20: Is the school bus running?  {reply['link']}" in output
    found = engagement(root, incident, "bluesky-council")
    assert (found["replies"], found["reposts"], found["likes"], found["views"]) == (1, 7, 40, None)
    assert found["said"] == [{"text": "Is the school bus running?", "link": reply["link"], "at": reply["at"]}]
    details = stored_details(root, "bluesky-council")
    assert HANDLE not in details and NAME not in details
    assert reply["did"] not in details.replace(reply["link"], "")  # the account only as a post's address names it


def test_x_counts_views_and_direct_replies_come_back_without_who_wrote_them(sent, sandbox):
    root, incident = sent
    tweet_id, tweet = only(sandbox.store("x")["tweets"])
    tweet["public_metrics"].update(retweet_count=5, quote_count=2, like_count=40, impression_count=900)
    reply = reply_on_x(sandbox, tweet_id, "Is the school bus running?")
    answer = reply_on_x(sandbox, reply["id"], "It was at 7 this morning")  # in the conversation, not to our post

    output = collect(root, incident)
    assert "A-2026-0001 x-council (en-GB)  1 reply, 7 reposts, 40 likes, 900 views" in output
    at = reply["at"][:16].replace("T", " ")
    assert f"    reply {at}: Is the school bus running?  {reply['link']}" in output
    assert answer["link"] not in output
    found = engagement(root, incident, "x-council")
    assert (found["replies"], found["reposts"], found["likes"], found["views"]) == (1, 7, 40, 900)
    assert found["said"] == [{"text": "Is the school bus running?", "link": reply["link"], "at": reply["at"]}]
    details = stored_details(root, "x-council")
    for who in (xapi.PUBLIC["id"], xapi.PUBLIC["username"], xapi.PUBLIC["name"]):
        assert who not in details


def test_x_still_gives_the_counts_when_the_access_level_cannot_search(sent, sandbox):
    root, incident = sent
    tweet_id, tweet = only(sandbox.store("x")["tweets"])
    tweet["public_metrics"].update(like_count=40, impression_count=900)
    reply_on_x(sandbox, tweet_id, "Is the school bus running?")
    sandbox.store("x")["search_forbidden"] = True

    output = collect(root, incident)
    assert ("A-2026-0001 x-council (en-GB)  1 reply, 0 reposts, 40 likes, 900 views; replies' text not available: "
            "X refused the search (HTTP 403 Client Forbidden (client-not-enrolled)); it needs the Basic access level "
            "or above\n") in output
    found = engagement(root, incident, "x-council")
    assert (found["replies"], found["likes"], found["views"], found["said"]) == (1, 40, 900, [])


def test_facebook_shares_reactions_and_top_level_comments_come_back_without_who_wrote_them(sent, sandbox):
    root, incident = sent
    post_id, post = only(sandbox.store("facebook")["posts"])
    post["shares"], post["reactions"] = 7, 40
    comment = comment_on_facebook(sandbox, post_id, "Is the school bus running?")
    answer = comment_on_facebook(sandbox, comment["id"], "It was at 7 this morning")  # a reply to the comment

    output = collect(root, incident)
    assert "A-2026-0001 facebook-page (en-GB)  1 reply, 7 reposts, 40 likes" in output
    assert comment["permalink_url"] in output and answer["permalink_url"] not in output
    found = engagement(root, incident, "facebook-page")
    assert (found["replies"], found["reposts"], found["likes"], found["views"]) == (1, 7, 40, None)
    assert found["said"] == [{"text": "Is the school bus running?", "link": comment["permalink_url"],
                              "at": comment["created_time"]}]
    details = stored_details(root, "facebook-page")
    assert graph.PUBLIC["id"] not in details and NAME not in details


def test_a_facebook_post_without_shares_counts_none(sent, sandbox):
    root, incident = sent  # Graph leaves `shares` out of its answer until someone shares the post
    assert counted_nothing(root, incident, collect(root, incident), "facebook-page")
    assert stored(root, "facebook-page")["description"] == "facebook-page (en-GB): 0 replies, 0 reposts, 0 likes"


# -- failures, each on its own post ----------------------------------------------------------------------------
REMOVE = {"bluesky": ("records", "Bluesky", "bluesky-council"), "x": ("tweets", "X", "x-council"),
          "facebook": ("posts", "Facebook", "facebook-page")}


@pytest.mark.parametrize("platform", list(REMOVE))
def test_a_post_removed_since_says_so_and_the_others_are_still_collected(sent, sandbox, platform):
    root, incident = sent
    kept, name, channel = REMOVE[platform]
    sandbox.store(platform)[kept].clear()  # removed on the platform, by hand or by its moderators

    output = collect(root, incident)
    assert f"A-2026-0001 {channel} (en-GB)  {channel}: the post is no longer on {name} (deleted?)" in output
    assert engagement(root, incident, channel)["replies"] is None
    others = [c for p, (_, _, c) in REMOVE.items() if p != platform]
    assert all(counted_nothing(root, incident, output, c) for c in others)


@pytest.mark.parametrize("platform", list(REMOVE))
def test_a_rate_limited_read_is_retried_and_the_figures_still_arrive(sent, sandbox, platform):
    root, incident = sent
    _, _, channel = REMOVE[platform]
    sandbox.fault(platform, fail_next=1, status=429, retry_after=0, methods=("GET",))

    output = collect(root, incident)
    assert counted_nothing(root, incident, output, channel)
    reads = [r.status for r in sandbox.received(platform) if r.method == "GET"]
    assert reads[0] == 429 and set(reads[1:]) == {200}


def test_the_wait_a_429_asks_for_is_the_wait_taken(sent, sandbox):
    from broadcast.review.receipts import collect_reach
    from broadcast.workspace import Workspace

    root, incident = sent
    sandbox.fault("x", fail_next=1, status=429, retry_after=0.05, methods=("GET",))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # nothing sleeps for real
        waits.append(seconds)

    store = Store.open(root / "broadcast.db")
    try:
        found = {r.channel: r for r in collect_reach(Workspace(root), store, incident, actor="test", sleep=sleep)}
    finally:
        store.close()
    assert waits == [0.05]
    assert (found["x-council"].likes, found["x-council"].note) == (0, None)


def test_a_platform_failing_every_time_is_noted_and_the_others_are_collected(sent, sandbox):
    root, incident = sent
    sandbox.fault("facebook", status=500, error_rate=1.0, methods=("GET",))

    output = collect(root, incident)
    assert ("A-2026-0001 facebook-page (en-GB)  facebook-page: Facebook (reading a post) answered HTTP 500, code 2: "
            "sandbox fault") in output and "(5 tries)" in output  # [fanout] max_attempts, as for sending
    assert len([r for r in sandbox.received("facebook") if r.method == "GET"]) == 5
    for channel in ("bluesky-council", "x-council", "mastodon-council"):
        assert counted_nothing(root, incident, output, channel)
    assert engagement(root, incident, "facebook-page")["note"].endswith("(5 tries)")


def test_a_platform_that_does_not_answer_is_cut_at_the_deadline(sent, sandbox):
    root, incident = sent
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[fanout]\n", "[fanout]\nchannel_deadline = 0.3\n"),
                      encoding="utf-8")
    sandbox.fault("bluesky", latency=2.0, methods=("GET",))

    output = collect(root, incident)
    assert "A-2026-0001 bluesky-council (en-GB)  bluesky-council: no answer before the deadline" in output
    assert counted_nothing(root, incident, output, "x-council")


def test_the_platforms_that_cannot_report_say_why(sent, sandbox):
    root, incident = sent
    output = collect(root, incident)
    for channel, why in (
            ("telegram-alerts", "telegram: not available (the Bot API gives bots no counts for a channel post"),
            ("slack-staff", "slack: not available (an incoming webhook answers only \"ok\", with no message ts"),
            ("teams-staff", "teams: not available (a Teams workflow (incoming webhook) can only post"),
            ("hook-a", "webhook: not available (our signed webhooks are one-way")):
        assert f"A-2026-0001 {channel} (en-GB)  {why}" in output
        assert engagement(root, incident, channel)["note"].startswith(why)
    assert "its API reports nothing about a post" not in output
