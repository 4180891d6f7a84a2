"""After the send, `review collect` asks Notify and Twilio what became of each text and email, keeps the answer in
the log, and the metrics report it."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner
from conftest import SETS
from listkit import approved, list_workspace, notify_channel, twilio_channel

from broadcast.cli import cli
from broadcast.sandbox.mail import start_mail
from broadcast.store import Store

pytest_plugins = ("listkit",)  # its `env` fixture




def invoke(root, *args):
    return CliRunner().invoke(cli, ["--workspace", str(root), *args], catch_exceptions=False)


def test_collect_reports_delivered_and_failed_with_the_platforms_reasons(tmp_path, sandbox, env):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url, email=True), twilio_channel(sandbox.url)])
    mail, port = start_mail(sandbox)
    (root / "channels" / "mail.toml").write_text(
        f'kind = "smtp"\n[settings]\nlist = "residents"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from = "alerts@testshire.example"\n', encoding="utf-8")
    approved(root)
    try:
        sent = invoke(root, "warn", "school-closure", *SETS, "--yes")
    finally:
        mail.stop()
    assert sent.exit_code == 0, sent.output
    incident = Store.open(root / "broadcast.db").incidents()[0]["slug"]
    time.sleep(0.3)  # the sandbox's receipts arrive a moment after the send, as real ones do

    collected = invoke(root, "review", "collect", incident)
    assert collected.exit_code == 0, collected.output
    # Notify: Bryn's number ends 002 (a permanent failure in the sandbox), Carys's 003 (temporary); the emails arrive.
    assert collected.output.splitlines() == [
        "A-2026-0001 mail (en-GB)  0 delivered, 4 unknown; smtp reports no delivery receipts",
        "A-2026-0001 sms-residents (en-GB)  4 delivered",  # Ann's text, and Ann's, Dai's and Gwen's emails
        "A-2026-0001 sms-residents (cy-GB)  1 delivered, 2 failed (permanent-failure 1, temporary-failure 1)",
        "A-2026-0001 sms-twilio (en-GB)  3 delivered"]
    data = json.loads(invoke(root, "review", "metrics", incident, "--json").stdout)
    receipts = {(r["channel"], r["language"]): r for r in data["receipts"]}
    assert receipts["sms-residents", "cy-GB"]["failed"] == 2
    assert receipts["sms-residents", "cy-GB"]["reasons"] == {"permanent-failure": 1, "temporary-failure": 1}
    assert receipts["sms-residents", "en-GB"]["delivered"] >= 1
    asked = [r for r in sandbox.received(accepted=True) if r.platform != "smtp"]
    assert sum(r["delivered"] + r["failed"] for r in data["receipts"]) == len(asked)

    store = Store.open(root / "broadcast.db")
    snapshots = [e for e in store.events() if e["type"] == "receipts_collected"]
    assert snapshots and all("07700" not in e["details"] and "@" not in e["details"] for e in snapshots)
    assert store.verify().ok
    store.close()
    again = invoke(root, "review", "collect", incident, "--json")  # a second snapshot, appended
    assert json.loads(again.stdout)["schema"] == "broadcast.receipts"
    assert len([e for e in Store.open(root / "broadcast.db").events() if e["type"] == "receipts_collected"]) \
        == 2 * len(snapshots)


def test_collect_brings_back_a_posts_counts_and_replies_without_who_wrote_them(live, sandbox):
    import httpx
    from conftest import invoke as run_in

    from broadcast.sandbox.server import CREDENTIALS

    assert run_in(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    [status] = sandbox.store("mastodon")["statuses"].values()
    status["reblogs_count"], status["favourites_count"] = 12, 40
    reply = httpx.post(f"{sandbox.url}/mastodon/api/v1/statuses", timeout=5,
                       headers={"Authorization": f"Bearer {CREDENTIALS['mastodon']}"},
                       json={"status": "Is the school bus running?", "in_reply_to_id": status["id"]})
    assert reply.status_code == 200
    incident = Store.open(live / "broadcast.db").incidents()[0]["slug"]

    collected = run_in(live, "review", "collect", incident)
    assert collected.exit_code == 0, collected.output
    assert "A-2026-0001 mastodon-council (en-GB)  1 reply, 12 reposts, 40 likes" in collected.output
    assert "Is the school bus running?" in collected.output and reply.json()["url"] in collected.output
    assert "A-2026-0001 hook-a (en-GB)  webhook: not available" in collected.output
    data = json.loads(run_in(live, "review", "metrics", incident, "--json").stdout)
    [mastodon] = [e for e in data["engagement"] if e["channel"] == "mastodon-council"]
    assert (mastodon["replies"], mastodon["reposts"], mastodon["likes"]) == (1, 12, 40)
    assert mastodon["said"] == [{"text": "Is the school bus running?", "link": reply.json()["url"],
                                 "at": reply.json()["created_at"]}]
    store = Store.open(live / "broadcast.db")
    [event] = [e for e in store.events() if e["type"] == "engagement_collected" and e["channel"] == "mastodon-council"]
    assert "acct" not in event["details"] and "council" not in json.loads(event["details"])["said"][0]["text"]
    store.close()

    sandbox.store("mastodon")["statuses"].pop(status["id"])  # removed on the platform since
    gone = run_in(live, "review", "collect", incident)
    assert "mastodon-council (en-GB)  mastodon-council: the post is no longer on Mastodon (deleted?)" in gone.output


def test_receipts_are_read_again_after_a_429_and_a_platform_that_keeps_failing_leaves_them_unknown(tmp_path, sandbox,
                                                                                                   env):
    root = list_workspace(tmp_path / "ws", [notify_channel(sandbox.url)])
    approved(root)
    assert invoke(root, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    incident = Store.open(root / "broadcast.db").incidents()[0]["slug"]
    time.sleep(0.3)  # the sandbox's receipts arrive a moment after the send, as real ones do

    # Notify's rate limit on the reads (its error shape, Retry-After), then a 500: each read is tried again.
    sandbox.fault("notify", fail_next=2, status=429, retry_after=0, methods=("GET",))
    collected = invoke(root, "review", "collect", incident, "--json")
    [english, welsh] = sorted(json.loads(collected.stdout)["receipts"], key=lambda r: r["language"], reverse=True)
    # Ann's text arrives; Bryn's (002) fails for good and Carys's (003) for now, as the sandbox's numbers do.
    assert (english["delivered"], english["unknown"], welsh["failed"], welsh["unknown"]) == (1, 0, 2, 0)
    reads = [r for r in sandbox.received("notify") if r.method == "GET"]
    assert [r.status for r in reads].count(429) == 2 and len(reads) == 3 + 2  # three texts, two read twice

    sandbox.fault("notify", fail_next=99, status=500, methods=("GET",))  # down for good
    down = json.loads(invoke(root, "review", "collect", incident, "--json").stdout)["receipts"]
    assert sum(r["unknown"] for r in down) == 3 and sum(r["delivered"] + r["failed"] for r in down) == 0
    assert all("could not be asked" in r["note"] and "500" in r["note"] for r in down)
    data = json.loads(invoke(root, "review", "metrics", incident, "--json").stdout)
    # A collect that could ask nothing leaves the last answer standing in the review (both snapshots are logged).
    assert (data["delivered"], data["failed"], data["unknown"]) == (1, 2, 0)
    store = Store.open(root / "broadcast.db")
    assert len([e for e in store.events() if e["type"] == "receipts_collected"]) == 4
    store.close()
