"""The sandbox speaks each platform's real contract: the platforms' own client libraries work against it, as they
would against the real thing (only the base URL differs)."""

from __future__ import annotations

import pytest

from broadcast.sandbox.server import CREDENTIALS


@pytest.mark.real_clock  # the clients read their tokens' expiry against the real clock
def test_atproto_logs_in_and_posts_as_on_bluesky(sandbox):
    import atproto

    client = atproto.Client(base_url=f"{sandbox.url}/bluesky/xrpc")
    profile = client.login("alerts.testshire.example", CREDENTIALS["bluesky"])
    assert profile.handle == "alerts.testshire.example"
    posted = client.send_post(text="Hillside Primary School is closed today.")  # no record key: the PDS makes one
    assert posted.uri.startswith("at://did:plc:") and "/app.bsky.feed.post/" in posted.uri
    [record] = sandbox.store("bluesky")["records"].values()
    assert record["value"]["text"] == "Hillside Primary School is closed today."
    client.delete_post(posted.uri)
    assert sandbox.store("bluesky")["records"] == {}


@pytest.mark.real_clock  # the clients read their tokens' expiry against the real clock
def test_atproto_reads_a_posts_counts_and_its_replies(sandbox):
    import atproto
    from atproto import models
    from atproto_client.exceptions import BadRequestError

    client = atproto.Client(base_url=f"{sandbox.url}/bluesky/xrpc")
    client.login("alerts.testshire.example", CREDENTIALS["bluesky"])
    posted = client.send_post(text="Hillside Primary School is closed today.")
    sandbox.store("bluesky")["records"][posted.uri].update(likeCount=40, repostCount=5)
    public = atproto.Client(base_url=f"{sandbox.url}/bluesky/xrpc")
    public.login("gwen.example", CREDENTIALS["bluesky"])
    ref = models.create_strong_ref(posted)
    public.send_post(text="Is the school bus running?", reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref))

    [post] = client.app.bsky.feed.get_posts({"uris": [posted.uri]}).posts
    assert (post.like_count, post.repost_count, post.reply_count, post.quote_count) == (40, 5, 1, 0)
    thread = client.get_post_thread(posted.uri, depth=1).thread
    assert [(r.post.record.text, r.post.author.handle) for r in thread.replies] == [
        ("Is the school bus running?", "gwen.example")]
    client.delete_post(posted.uri)
    assert client.app.bsky.feed.get_posts({"uris": [posted.uri]}).posts == []  # left out, not an error
    with pytest.raises(BadRequestError) as raised:
        client.get_post_thread(posted.uri, depth=1)
    assert raised.value.response.status_code == 400 and raised.value.response.content.error == "NotFound"


def test_notifications_python_client_sends_and_finds_by_reference(sandbox):
    from notifications_python_client.notifications import NotificationsAPIClient

    from broadcast.sandbox.platforms.notify import API_KEY, SMS_TEMPLATE

    client = NotificationsAPIClient(API_KEY, base_url=sandbox.url)
    sent = client.send_sms_notification(phone_number="07700900001", template_id=SMS_TEMPLATE,
                                        personalisation={"message": "Hillside is closed today."},
                                        reference="drill-ref-1")
    assert sent["content"]["body"] == "Hillside is closed today." and sent["reference"] == "drill-ref-1"
    found = client.get_all_notifications(reference="drill-ref-1")["notifications"]
    assert [n["id"] for n in found] == [sent["id"]]
    assert client.get_notification_by_id(sent["id"])["phone_number"]
    assert len(sandbox.received("notify", accepted=True)) == 1


def test_mastodon_py_posts_with_an_idempotency_key_and_deletes(sandbox):
    from mastodon import Mastodon

    client = Mastodon(access_token=CREDENTIALS["mastodon"], api_base_url=f"{sandbox.url}/mastodon",
                      version_check_mode="none")
    first = client.status_post("Hillside is closed today.", idempotency_key="drill-key-1")
    again = client.status_post("Hillside is closed today.", idempotency_key="drill-key-1")
    assert first["id"] == again["id"] and str(first["url"]).startswith(sandbox.url + "/")  # absolute, as real ones
    assert len(sandbox.received("mastodon", accepted=True)) == 1
    client.status_delete(first["id"])
    assert sandbox.store("mastodon")["statuses"] == {}


def test_slack_sdk_webhook_client_posts(sandbox):
    from slack_sdk.webhook import WebhookClient

    hook = WebhookClient(f"{sandbox.url}/slack/services/T0001/B0001/{CREDENTIALS['slack']}")
    answer = hook.send(text="Hillside is closed today.")
    assert answer.status_code == 200 and answer.body == "ok"
    assert len(sandbox.received("slack", accepted=True)) == 1


def test_pytelegrambotapi_sends_and_deletes(sandbox, monkeypatch):
    import telebot
    from telebot import apihelper

    monkeypatch.setattr(apihelper, "API_URL", f"{sandbox.url}/telegram/bot{{0}}/{{1}}")
    bot = telebot.TeleBot(CREDENTIALS["telegram"])
    message = bot.send_message("@TestshireAlerts", "Hillside is closed today.")
    assert message.text == "Hillside is closed today." and message.message_id
    assert bot.delete_message("@TestshireAlerts", message.message_id) is True


def test_twilio_python_sends_lists_and_fetches(sandbox):
    from twilio.rest import Client

    from broadcast.sandbox.platforms import twilio

    client = Client(twilio.ACCOUNT_SID, twilio.AUTH_TOKEN)
    client.api.base_url = f"{sandbox.url}/twilio"  # the library's one place for the API's address
    message = client.messages.create(to="+447700900001", messaging_service_sid=twilio.MESSAGING_SERVICE_SID,
                                     body="Hillside is closed today.")
    assert message.sid.startswith("SM") and message.status == "accepted"
    assert [m.sid for m in client.messages.list(to="+447700900001", limit=5)] == [message.sid]  # what we ask after
    assert client.messages(message.sid).fetch().body == "Hillside is closed today."          # a crash


def test_the_graph_api_over_requests_posts_to_a_page_and_deletes(sandbox):
    import requests

    graph = f"{sandbox.url}/facebook/v21.0"
    token = {"access_token": CREDENTIALS["facebook"]}
    me = requests.get(f"{graph}/me", params={**token, "fields": "id,name"}, timeout=5).json()
    posted = requests.post(f"{graph}/{me['id']}/feed", data={**token, "message": "Hillside is closed today."},
                           timeout=5)
    assert posted.status_code == 200 and "_" in posted.json()["id"]  # PAGEID_POSTID, as the Graph API answers
    gone = requests.delete(f"{graph}/{posted.json()['id']}", params=token, timeout=5)
    assert gone.status_code == 200 and gone.json() == {"success": True}


def tweepy_client(sandbox, access_token: str = CREDENTIALS["x_access_token"],
                  access_secret: str = CREDENTIALS["x_access_secret"]):
    """A tweepy v2 client signing as one account, its requests forwarded to the sandbox."""
    import requests.adapters
    import tweepy

    class ToTheSandbox(requests.adapters.HTTPAdapter):
        """tweepy's host is fixed: send what it signed for api.twitter.com to the sandbox instead."""

        def send(self, request, **kwargs):  # type: ignore[override]
            request.url = request.url.replace("https://api.twitter.com", f"{sandbox.url}/x", 1)
            return super().send(request, **kwargs)

    client = tweepy.Client(consumer_key=CREDENTIALS["x_consumer_key"], consumer_secret=CREDENTIALS["x_consumer_secret"],
                           access_token=access_token, access_token_secret=access_secret)
    client.session.mount("https://api.twitter.com", ToTheSandbox())
    return client


def test_tweepy_posts_and_deletes_with_oauth1(sandbox):
    import tweepy

    client = tweepy_client(sandbox)
    posted = client.create_tweet(text="Hillside is closed today.")
    assert posted.data["text"] == "Hillside is closed today." and posted.data["id"]
    with pytest.raises(tweepy.Forbidden):  # X refuses the same text twice, and so does the sandbox
        client.create_tweet(text="Hillside is closed today.")
    assert client.delete_tweet(posted.data["id"]).data == {"deleted": True}


def test_tweepy_reads_a_posts_public_metrics_and_its_replies(sandbox):
    from broadcast.sandbox.platforms import x

    client = tweepy_client(sandbox)
    posted = client.create_tweet(text="Hillside is closed today.").data["id"]
    sandbox.store("x")["tweets"][posted]["public_metrics"].update(like_count=40, impression_count=900)
    public = tweepy_client(sandbox, x.PUBLIC_ACCESS_TOKEN, x.PUBLIC_ACCESS_SECRET)
    reply = public.create_tweet(text="Is the school bus running?", in_reply_to_tweet_id=posted).data["id"]

    read = client.get_tweet(posted, tweet_fields=["public_metrics", "created_at"], user_auth=True).data
    assert read.public_metrics["like_count"] == 40 and read.public_metrics["reply_count"] == 1
    assert read.public_metrics["impression_count"] == 900 and read.created_at.tzinfo is not None
    found = client.search_recent_tweets(f"conversation_id:{posted}", tweet_fields=["created_at", "referenced_tweets"],
                                        max_results=100, user_auth=True)
    assert [(t.id, t.text) for t in found.data] == [(int(reply), "Is the school bus running?")]
    assert found.data[0].referenced_tweets[0].id == int(posted) and found.meta["result_count"] == 1
    client.delete_tweet(posted)
    gone = client.get_tweet(posted, user_auth=True)  # X answers 200, with the problem in `errors`
    assert gone.data is None and gone.errors[0]["type"] == "https://api.twitter.com/2/problems/resource-not-found"
