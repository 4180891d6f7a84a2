"""What a warning no longer pays for: templates compiled again, limits asked of platforms that publish none, a TLS
context for http, a transaction per log line. Behaviour only: bench/warn.py measures the time."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import pytest
from conftest import VALUES, approved

from broadcast.prepare.templates import _environment, find_template, render
from broadcast.send.fanout import Job, Limits, fan_out
from broadcast.send.limits import CACHE
from broadcast.send.sending import plan_warning, queue_posts, send_warning
from broadcast.send.wire import tls_context
from broadcast.store import Store
from broadcast.workspace import Workspace


def webhooks_only(root, sandbox, count: int = 2) -> Workspace:
    """The fixture workspace with only webhooks on the sandbox, and its template approved."""
    (root / "channels" / "mastodon-council.toml").unlink()
    for i in range(count):
        (root / "channels" / f"hook-{i}.toml").write_text(
            f'kind = "webhook"\n[settings]\nurl = "{sandbox.url}/hooks/hook-{i}"\n'
            '[secrets]\nsigning_secret = "env:TEST_WEBHOOK_SECRET"\n', encoding="utf-8")
    return approved(root)


def with_mastodon(root, sandbox) -> Workspace:
    (root / "channels" / "mastodon-council.toml").write_text(
        f'kind = "mastodon"\n[settings]\ninstance = "{sandbox.url}/mastodon"\n'
        '[secrets]\naccess_token = "env:TEST_MASTODON_TOKEN"\n', encoding="utf-8")
    return Workspace(root)


def limit_requests(sandbox) -> list[str]:
    return [r.path for r in sandbox.received() if r.path.endswith("/api/v2/instance")]


def test_each_section_is_compiled_once_per_process_even_from_another_copy(workspace_dir, tmp_path, monkeypatch):
    template = workspace_dir / "templates" / "school-closure.md"
    marker = "{# " + uuid.uuid4().hex + " #}\n"  # in every section: texts no earlier test compiled
    template.write_text(re.sub(r"^(## .*\n)", lambda m: m[1] + marker, template.read_text(encoding="utf-8"),
                               flags=re.M), encoding="utf-8")
    environment = _environment()
    compiled: list[str] = []
    original = environment.compile
    monkeypatch.setattr(environment, "compile", lambda source, *a, **k: compiled.append(source) or original(
        source, *a, **k))
    workspace = Workspace(workspace_dir)
    first = render(find_template(workspace, "school-closure"), workspace, VALUES)
    assert len(compiled) == 8  # four variants in two languages
    again = render(find_template(workspace, "school-closure"), workspace, {**VALUES, "school": "Ysgol Bro Lliw"})
    copy = Workspace(shutil.copytree(workspace_dir, tmp_path / "copy"))
    copied = render(find_template(copy, "school-closure"), copy, VALUES)
    assert len(compiled) == 8  # none again: not for other values, not for the same text in another folder
    assert copied.texts == first.texts and "Ysgol Bro Lliw" in again.texts["en-GB"]["headline"].full()


def test_a_warning_to_webhooks_asks_no_platform_for_limits_and_builds_no_tls_for_http(workspace_dir, sandbox,
                                                                                        sandbox_env):
    workspace = webhooks_only(workspace_dir, sandbox)
    tls_context.cache_clear()
    store = Store.open(workspace.db_path)
    plan = plan_warning(workspace, "school-closure", VALUES, store=store, learn_limits=True)
    report = send_warning(workspace, store, plan, actor="duty officer")
    store.close()
    assert [o.state for o in report.outcomes] == ["sent", "sent"]
    assert sorted(r.path for r in sandbox.received()) == ["/hooks/hook-0", "/hooks/hook-1"]  # nothing else asked
    assert tls_context.cache_info().misses == 0  # http only: no CA bundle was loaded
    assert not (workspace_dir / CACHE).exists()


def test_a_send_leaves_the_older_heap_out_of_collections_and_the_collector_as_it_found_it(workspace_dir, sandbox,
                                                                                           sandbox_env, monkeypatch):
    import gc

    from broadcast.channels.webhook import Webhook
    from broadcast.send import sending

    workspace = webhooks_only(workspace_dir, sandbox)
    frozen = []
    original = Webhook.send

    async def send(self, post, client, key):
        frozen.append(gc.get_freeze_count())
        return await original(self, post, client, key)

    monkeypatch.setattr(Webhook, "send", send)
    before = gc.get_threshold(), gc.get_freeze_count()
    store = Store.open(workspace.db_path)
    report = send_warning(workspace, store, plan_warning(workspace, "school-closure", VALUES, store=store),
                          actor="duty officer")
    assert [o.state for o in report.outcomes] == ["sent", "sent"]
    assert len(frozen) == 2 and all(count > 1000 for count in frozen)  # every module imported before the send
    assert (gc.get_threshold(), gc.get_freeze_count()) == before

    async def broken(*args, **kwargs):
        raise RuntimeError("the fan-out broke")

    monkeypatch.setattr(sending, "_fan_out", broken)
    with pytest.raises(RuntimeError, match="the fan-out broke"):
        send_warning(workspace, store, plan_warning(workspace, "school-closure", VALUES, store=store),
                     actor="duty officer")
    store.close()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


# A `broadcast warn` in a new interpreter, which prints, after its exit code, what it loaded of the list machinery,
# babel and httpx (with what httpx brings).
FRESH_WARN = (
    "import sys\nfrom broadcast.cli import main\nsys.argv = ['broadcast', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code)\n"
    "print(sorted({name.split('.')[0] if name.startswith(('babel', 'httpx', 'httpcore', 'anyio')) else name\n"
    "              for name in sys.modules\n"
    "              if name.startswith(('babel', 'httpx', 'httpcore', 'anyio', 'broadcast.send.audience',\n"
    "                                  'broadcast.send.bulk', 'broadcast.prepare.recipients',\n"
    "                                  'broadcast.channels.lists'))}))")


def fresh_warn(root) -> list[str]:
    """`broadcast warn school-closure ... --yes` from a new process in `root`: the last two lines it printed."""
    values = [arg for name, value in VALUES.items() for arg in ("--set", f"{name}={value}")]
    done = subprocess.run([sys.executable, "-c", FRESH_WARN, "warn", "school-closure", *values, "--yes"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "BROADCAST_OPERATOR": "Duty Officer"})
    assert done.stdout.splitlines()[-2:] == ["exit 0", "[]"], done.stdout + done.stderr
    return done.stdout.splitlines()


@pytest.mark.real_clock
def test_a_warning_to_webhooks_from_a_fresh_process_loads_no_list_machinery_babel_or_httpx(workspace_dir, sandbox,
                                                                                            sandbox_env):
    webhooks_only(workspace_dir, sandbox)
    fresh_warn(workspace_dir)
    assert sorted(r.path for r in sandbox.received()) == ["/hooks/hook-0", "/hooks/hook-1"]
    assert "Dydd Llun 23 Tachwedd 2026" in (workspace_dir / "site" / "cy" / "index.html").read_text(encoding="utf-8")


# Every platform a council posts a warning to, on the sandbox (as tests/channels configures each).
SOCIAL = {
    "mastodon-council": 'kind = "mastodon"\n[settings]\ninstance = "{url}/mastodon"\n'
                        '[secrets]\naccess_token = "env:TEST_MASTODON_TOKEN"\n',
    "bluesky-council": 'kind = "bluesky"\n[settings]\nservice = "{url}/bluesky"\nhandle = "alerts.testshire.example"\n'
                       '[secrets]\napp_password = "env:TEST_BLUESKY_PASSWORD"\n',
    "facebook-page": 'kind = "facebook"\n[settings]\npage_id = "100000000000001"\ngraph = "{url}/facebook"\n'
                     '[secrets]\npage_access_token = "env:TEST_FACEBOOK_TOKEN"\n',
    "x-council": 'kind = "x"\n[settings]\napi = "{url}/x"\n[secrets]\nconsumer_key = "env:TEST_X_CONSUMER_KEY"\n'
                 'consumer_secret = "env:TEST_X_CONSUMER_SECRET"\naccess_token = "env:TEST_X_ACCESS_TOKEN"\n'
                 'access_token_secret = "env:TEST_X_ACCESS_SECRET"\n',
    "telegram-alerts": 'kind = "telegram"\n[settings]\nchat_id = "@testshire_alerts"\napi = "{url}/telegram"\n'
                       '[secrets]\nbot_token = "env:TEST_TELEGRAM_TOKEN"\n',
    "slack-duty": 'kind = "slack"\n[secrets]\nwebhook_url = "env:TEST_SLACK_URL"\n',
    "teams-lrf": 'kind = "teams"\n[secrets]\nworkflow_url = "env:TEST_TEAMS_URL"\n',
}


@pytest.mark.real_clock
def test_a_warning_to_every_social_platform_from_a_fresh_process_posts_to_each_without_httpx(workspace_dir, sandbox,
                                                                                             sandbox_env):
    for name, config in SOCIAL.items():
        (workspace_dir / "channels" / f"{name}.toml").write_text(config.format(url=sandbox.url), encoding="utf-8")
    approved(workspace_dir)
    fresh_warn(workspace_dir)
    # What each platform took as a new post: one each, saying what the warning says.
    posted = {r.platform: json.dumps(r.body, ensure_ascii=False) for r in sandbox.received(accepted=True)}
    assert sorted(posted) == ["bluesky", "facebook", "mastodon", "slack", "teams", "telegram", "x"]
    assert len(sandbox.received(accepted=True)) == 7
    assert all(VALUES["school"] in said for said in posted.values()), posted
    store = Store.open(workspace_dir / "broadcast.db")
    rows = store.rows("deliveries")  # the one alert's (its identifier has the year the real clock says)
    store.close()
    assert sorted((r["channel"], r["state"]) for r in rows) == sorted((name, "sent") for name in SOCIAL)
    assert all(r["remote_id"] or r["channel"] == "slack-duty" for r in rows)  # Slack's webhook returns no id


def test_a_learnt_limit_is_cached_used_and_asked_again_once_it_expires(workspace_dir, sandbox, sandbox_env, clock):
    workspace = with_mastodon(workspace_dir, sandbox)

    def planned_limit() -> int:
        plan = plan_warning(workspace, "school-closure", VALUES, learn_limits=True)
        [limit] = [post.limit for channel, post in plan.posts if channel.kind == "mastodon"]
        return limit

    assert planned_limit() == 500 and len(limit_requests(sandbox)) == 1
    cache = workspace_dir / CACHE
    source = f"{sandbox.url}/mastodon/api/v2/instance"
    entry = json.loads(cache.read_text(encoding="utf-8"))[source]
    assert entry["limit"] == 500
    cache.write_text(json.dumps({source: {**entry, "limit": 321}}), encoding="utf-8")  # as if the instance said so
    clock.move_to(clock.now() + timedelta(hours=23))
    assert planned_limit() == 321 and len(limit_requests(sandbox)) == 1  # fresh: used, not asked again
    clock.move_to(clock.now() + timedelta(hours=2))
    assert planned_limit() == 500 and len(limit_requests(sandbox)) == 2  # a day old: asked again, and kept
    assert json.loads(cache.read_text(encoding="utf-8"))[source]["limit"] == 500


def test_a_stale_limit_is_kept_when_the_platform_cannot_be_asked(workspace_dir, sandbox, sandbox_env, clock):
    workspace = with_mastodon(workspace_dir, sandbox)
    cache = workspace_dir / CACHE
    cache.parent.mkdir()
    source = f"{sandbox.url}/mastodon/api/v2/instance"
    cache.write_text(json.dumps({source: {"limit": 321, "learned_at": clock.now().timestamp() - 2 * 86400}}))
    sandbox.fault("mastodon", fail_next=1, status=503, methods=("GET",))
    plan = plan_warning(workspace, "school-closure", VALUES, learn_limits=True)
    assert [post.limit for channel, post in plan.posts if channel.kind == "mastodon"] == [321]
    assert len(limit_requests(sandbox)) == 1


def test_a_dry_run_uses_a_cached_limit_and_asks_nothing(workspace_dir, sandbox, sandbox_env, clock):
    workspace = with_mastodon(workspace_dir, sandbox)
    cache = workspace_dir / CACHE
    cache.parent.mkdir()
    source = f"{sandbox.url}/mastodon/api/v2/instance"
    cache.write_text(json.dumps({source: {"limit": 321, "learned_at": clock.now().timestamp()}}))
    plan = plan_warning(workspace, "school-closure", VALUES, learn_limits=False)
    assert [post.limit for channel, post in plan.posts if channel.kind == "mastodon"] == [321]
    assert limit_requests(sandbox) == []


def test_each_request_leaves_only_once_its_sending_row_is_committed_and_the_log_is_written_in_batches(
        workspace_dir, sandbox, sandbox_env):
    workspace = webhooks_only(workspace_dir, sandbox, count=10)
    store = Store.open(workspace.db_path)
    plan = plan_warning(workspace, "school-closure", VALUES, store=store)
    store.save_alert(plan.alert, sent_by="test")
    queue_posts(store, plan.alert.identifier, [(c.name, p.language) for c, p in plan.posts], actor="test")
    channels = {channel.name: channel for channel, _ in plan.posts}
    jobs = [Job(d, channels[d["channel"]], channels[d["channel"]].prepare(plan.alert, d["language"]))
            for d in store.deliveries(plan.alert.identifier)]
    seen: list[tuple[str, int]] = []

    def answer(request: httpx.Request) -> httpx.Response:  # what another process reading the log sees meanwhile
        reader = sqlite3.connect(workspace.db_path)
        key = request.headers["webhook-id"]
        state, attempts = reader.execute("SELECT state, attempts FROM deliveries WHERE idempotency_key = ?",
                                         [key]).fetchone()
        reader.close()
        seen.append((state, attempts))
        return httpx.Response(200, json={"ok": True})

    commits: list[str] = []
    store.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            return await fan_out(store, jobs, client=client, actor="test", limits=Limits())

    outcomes = asyncio.run(go())
    store.conn.set_trace_callback(None)
    assert [o.state for o in outcomes] == ["sent"] * 10
    assert seen == [("sending", 1)] * 10  # the outbox: in the log as in flight before a byte went out
    assert {d["state"] for d in store.deliveries(plan.alert.identifier)} == {"sent"}
    assert len(commits) < 10  # 20 state changes and their events, in a few transactions rather than 20
    events = [e for e in store.events() if e["type"] in ("delivery_attempt", "delivery_result")]
    assert len(events) == 20 and store.verify().ok
    store.close()


def test_a_retry_waits_in_the_log_as_pending(workspace_dir, sandbox, sandbox_env):
    workspace = webhooks_only(workspace_dir, sandbox, count=1)
    store = Store.open(workspace.db_path)
    plan = plan_warning(workspace, "school-closure", VALUES, store=store)
    store.save_alert(plan.alert, sent_by="test")
    queue_posts(store, plan.alert.identifier, [(c.name, p.language) for c, p in plan.posts], actor="test")
    [(channel, _)] = plan.posts
    [delivery] = store.deliveries(plan.alert.identifier)
    answers = [httpx.Response(429, headers={"retry-after": "1"}), httpx.Response(200, json={"ok": True})]
    during: list[str] = []

    async def sleep(seconds: float) -> None:  # what another process reading the log sees while it waits
        await asyncio.sleep(0)
        reader = sqlite3.connect(workspace.db_path)
        during.append(reader.execute("SELECT state FROM deliveries WHERE id = ?", [delivery["id"]]).fetchone()[0])
        reader.close()

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: answers.pop(0))) as client:
            job = Job(delivery, channel, channel.prepare(plan.alert, delivery["language"]))
            return await fan_out(store, [job], client=client, actor="test", limits=Limits(), sleep=sleep)

    [outcome] = asyncio.run(go())
    assert outcome.state == "sent" and outcome.waits == [1.0]
    assert during == ["pending"]  # not left as `sending`: a kill now would find it known undelivered
    store.close()
