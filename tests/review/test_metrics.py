"""Review metrics on a constructed log: every duration on UTC instants, across the October clock change."""

from datetime import UTC, datetime

from reviewkit import SLUG

from broadcast.review.metrics import Histogram, duration, measure, summarise

pytest_plugins = ("reviewkit",)  # its `known` fixture


def test_metrics_of_a_known_incident(known):
    store, _ = known
    m = measure(store, SLUG)
    assert m.declared_at == "2026-10-25T00:20:00.000Z"
    assert m.first_warning_at == "2026-10-25T00:32:01.000Z"
    assert m.time_to_first_warning_s == 721.0
    assert m.approval_latency_s == [360.0] and m.approval_to_dispatch_s == [60.0]
    assert (m.attempted, m.accepted, m.delivered, m.failed, m.unknown) == (4, 3, None, 1, 0)
    assert (m.latency_p50_ms, m.latency_p95_ms) == (600, 900)
    assert (m.retries, m.needed_retry) == (2, 1)
    assert (m.page_publish_lag_s, m.page_publish_lag_max_s, m.page_failures) == (30.0, 30.0, 0)
    assert (m.public_updates, m.update_interval_median_s, m.longest_silence_s) == (3, 2280.0, 2400.0)
    assert (m.longest_silence_from, m.longest_silence_to) == ("2026-10-25T01:10:00.000Z", "2026-10-25T01:50:00.000Z")
    assert m.all_clear_at == "2026-10-25T01:50:00.000Z" and m.overrides == 0
    assert (m.corrections, m.retractions, m.decisions, m.notes) == (1, 0, 1, 0)
    channels = {c.channel: c for c in m.channels}
    mastodon, hook_b, hook_c = channels["mastodon-council"], channels["hook-b"], channels["hook-c"]
    assert (mastodon.attempted, mastodon.accepted, mastodon.first_delivery_s) == (2, 2, 1.0)
    assert (mastodon.latency_p50_ms, mastodon.latency_p95_ms) == (400, 600)
    # hook-b failed, then a resend delivered it: its final outcome is sent, after a retry and a resend.
    assert (hook_b.accepted, hook_b.failed, hook_b.retries, hook_b.needed_retry, hook_b.first_delivery_s) == (
        1, 0, 2, 1, 2400.0)
    assert (hook_c.attempted, hook_c.accepted, hook_c.failed, hook_c.failures) == (1, 0, 1, {"HTTP 403": 1})


def test_durations_across_the_clock_change_do_not_gain_or_lose_an_hour(known):
    """Declared 01:20 BST, all clear 01:50 GMT: 90 minutes, though the wall clocks differ by 30."""
    m = measure(known[0], SLUG)
    assert m.time_to_all_clear_s == 90 * 60
    assert m.duration_s == 100 * 60
    # The Update went out at 01:10 GMT, 38 minutes after the Alert at 01:32 BST (the clock says 22 minutes earlier).
    assert m.update_interval_median_s == 38 * 60
    assert duration(m.time_to_all_clear_s) == "1h 30m"


def test_cancels_deleted_posts_and_overrides_are_counted(known):
    """As `broadcast cancel` logs them: a CAP Cancel, then each post deleted (its delivery ends as retracted)."""
    store, _ = known
    store.append_event("policy_override", phase="warn", actor="duty-officer", incident=SLUG, alert="A-2026-0004",
                       details={"reason": "no second officer reachable", "flag": "review"}, pinned=True)
    store.append_event("alert_issued", phase="recover", actor="duty-officer", incident=SLUG, alert="A-2026-0004",
                       details={"msg_type": "Cancel", "status": "Actual"})
    store.append_event("retracted", phase="recover", actor="duty-officer", incident=SLUG, alert="A-2026-0001",
                       channel="mastodon-council", description="mastodon-council: post deleted",
                       details={"state": "retracted", "language": "en-GB", "remote_id": "1001"})
    store.append_event("alert_issued", phase="warn", actor="duty-officer", incident=SLUG, alert="A-2026-0005",
                       details={"msg_type": "Alert", "status": "Test"})  # never public: not an update
    m = measure(store, SLUG)
    assert (m.retractions, m.retracted_posts, m.overrides, m.public_updates) == (1, 1, 1, 4)
    mastodon = {c.channel: c for c in m.channels}["mastodon-council"]
    assert (mastodon.accepted, mastodon.deleted, mastodon.failed) == (2, 1, 0)  # deleted, but it was accepted


def test_histogram_percentiles_are_nearest_rank_and_bounded():
    h = Histogram()
    for value in range(1, 101):
        h.add(value)
    assert (h.percentile(0.5), h.percentile(0.95), h.percentile(1.0)) == (50, 95, 100)
    wide = Histogram()
    for value in range(0, 90_000, 7):
        wide.add(value)
    assert len(wide.counts) < 2000  # three significant figures above a second
    assert wide.percentile(0.5) == 45_000
    assert Histogram().percentile(0.5) is None


def test_summary_across_incidents(known):
    store, _ = known
    result = summarise(store, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    assert [i["slug"] for i in result.incidents] == [SLUG]
    assert result.incidents[0]["time_to_first_warning_s"] == 721.0
    assert {c.channel: (c.accepted, c.attempted) for c in result.channels} == {
        "hook-b": (1, 1), "hook-c": (0, 1), "mastodon-council": (2, 2)}
    assert summarise(store, datetime(2026, 11, 1, tzinfo=UTC)).incidents == []
