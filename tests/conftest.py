"""Shared fixtures: an isolated workspace in tmp_path and a CliRunner bound to it."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# The shared helper modules get pytest's assertion rewriting like the tests that import them.
pytest.register_assert_rewrite("sitekit", "reviewkit", "listkit", "faultkit")

import time_machine  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from broadcast.prepare.templates import find_template  # noqa: E402
from broadcast.store import Store  # noqa: E402
from broadcast.workspace import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# The suite's clock: every test starts at this instant (30 minutes after sitekit's T0, when its alerts are current)
# and the clock ticks on from there, so no test depends on the day it runs. Subprocesses keep the real clock.
SUITE_NOW = datetime(2026, 11, 23, 7, 12, tzinfo=UTC)
# A day well past any fixed date in the suite, taken from the real clock: what a run next year would see.
FAR_FUTURE = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=400)


class Clock:
    """The clock a test runs on: `start` is where it began (the real clock for a `real_clock` test)."""

    def __init__(self, start: datetime, traveller: time_machine.Coordinates | None = None):
        self.start, self._traveller = start, traveller

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def move_to(self, moment: datetime) -> None:
        """Jump to `moment`; the clock keeps ticking from there."""
        assert self._traveller is not None, "a real_clock test cannot move the clock"
        self._traveller.move_to(moment)


def only_identifier(database: Path) -> str:
    """The identifier of the one alert a subprocess recorded: its year is the real clock's, so never spelled out."""

    store = Store.open(database)
    try:
        [alert] = store.alerts()
        return alert.identifier
    finally:
        store.close()


@pytest.fixture(autouse=True, scope="session")
def own_cache(tmp_path_factory: pytest.TempPathFactory):
    """Jinja's compiled templates (broadcast.jinjacache) go to a folder of this run's own, for the subprocesses it
    starts too, never to the machine's ~/.cache."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(autouse=True)
def clock(request: pytest.FixtureRequest):
    """Run the test on a ticking clock from SUITE_NOW, or from the instant it is parametrised with (indirect).

    A test marked `real_clock` keeps the real one: it runs broadcast in a subprocess, which no travel reaches, against
    this process's sandbox, and the two must agree on the time (signatures and tokens carry timestamps)."""
    if request.node.get_closest_marker("real_clock"):
        yield Clock(datetime.now(UTC))
        return
    start = getattr(request, "param", SUITE_NOW)
    with time_machine.travel(start, tick=True) as traveller:
        yield Clock(start, traveller)

CONFIG = """\
languages = ["en-GB", "cy-GB"]
timezone = "Europe/London"

[organisation]
name = { en = "Testshire Council", cy = "Cyngor Testshire" }
sender = "alerts@testshire.example"
phone = "01632 960001"
web = "https://alerts.testshire.example"
"""

TEMPLATE = """\
+++
title = "School closed"
summary = "One school closed for the day"

[cap]
event = "School closure"
category = ["Safety"]
urgency = "Expected"
severity = "Minor"
certainty = "Observed"
response_type = ["Prepare"]
expires = "18h"

[variables.school]
type = "text"
label = "School name"
example = "Hillside Primary School"
max_length = 60

[variables.date]
type = "date"
label = "Day of the closure"
example = "2026-11-23"

[variables.reason]
type = "choice"
label = "Why it is closed"
example = "snow"
[variables.reason.choices]
snow = { en = "snow and ice", cy = "eira a rhew" }
heating = { en = "a heating failure", cy = "methiant gwres" }

[variables.next_update]
type = "time"
label = "Time of the next update"
example = "10:00"

[variables.area]
type = "area"
label = "Area"
example = "town"

[checklist]
who = "body"
what = "headline"
where = "body"
when = "headline"
what_to_do = "instruction"
why = "body"
more_info = "body"
next_update = "instruction"
+++

## headline
{{ school }} is closed on {{ date }}

## headline.cy
Mae {{ school }} ar gau ar {{ date }}

## short
{{ school }} is closed on {{ date }} because of {{ reason }}. ((Pupils should not travel.)) {{ org.web }}

## short.cy
Mae {{ school }} ar gau ar {{ date }} oherwydd {{ reason }}. ((Ni ddylai disgyblion deithio.)) {{ org.web }}

## body
{{ org.name }}: {{ school }} in {{ area }} is closed on {{ date }} because of {{ reason }}. More: {{ org.web }}

## body.cy
{{ org.name }}: mae {{ school }} yn {{ area }} ar gau ar {{ date }} oherwydd {{ reason }}. Mwy: {{ org.web }}

## instruction
Keep children at home. Next update at {{ next_update }}.

## instruction.cy
Cadwch blant gartref. Y diweddariad nesaf am {{ next_update }}.
"""

AREA = {
    "type": "Feature",
    "properties": {"name": {"en": "Testshire town", "cy": "Tref Testshire"}, "geocode": {"GSS": "W99000002"}},
    "geometry": {"type": "Polygon", "coordinates": [[[-3.4, 52.0], [-3.3, 52.0], [-3.3, 52.1], [-3.4, 52.0]]]},
}

VALUES = {"school": "Hillside Primary School", "date": "2026-11-23", "reason": "snow", "next_update": "10:00",
          "area": "town"}


def make_workspace(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "channels").mkdir()
    (root / "areas").mkdir()
    (root / "broadcast.toml").write_text(CONFIG, encoding="utf-8")
    (root / "templates" / "school-closure.md").write_text(TEMPLATE, encoding="utf-8")
    (root / "areas" / "town.geojson").write_text(json.dumps(AREA), encoding="utf-8")
    (root / "channels" / "mastodon-council.toml").write_text(
        'kind = "mastodon"\n[settings]\ninstance = "http://127.0.0.1:9"\n'
        '[secrets]\naccess_token = "env:TEST_MASTODON_TOKEN"\n', encoding="utf-8")
    return root


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def workspace(workspace_dir: Path) -> Workspace:
    return Workspace(workspace_dir)


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """A copy of the repository's own example workspace."""
    root = tmp_path / "example"
    root.mkdir()
    shutil.copyfile(REPO / "broadcast.toml", root / "broadcast.toml")
    for folder in ("templates", "channels", "runbooks", "areas"):
        shutil.copytree(REPO / folder, root / folder)
    if (REPO / "approvals.toml").exists():
        shutil.copyfile(REPO / "approvals.toml", root / "approvals.toml")
    return root


@pytest.fixture
def run(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke the CLI in the fixture workspace; returns the click Result."""
    from broadcast.cli import cli

    monkeypatch.delenv("BROADCAST_WORKSPACE", raising=False)
    monkeypatch.delenv("BROADCAST_DEBUG", raising=False)
    monkeypatch.setenv("BROADCAST_OPERATOR", "test-operator")
    runner = CliRunner()

    def invoke(*args: str, workspace: Path | None = None):
        return runner.invoke(cli, ["--workspace", str(workspace or workspace_dir), *args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def sandbox_server():
    from broadcast.sandbox.server import Sandbox

    sandbox = Sandbox(seed=7)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The running sandbox, emptied of posts and faults for each test."""
    sandbox_server.clear()
    yield sandbox_server
    sandbox_server.clear()


@pytest.fixture
def sandbox_env(sandbox, monkeypatch):
    """Environment variables holding the sandbox's credentials, as a drill sets them."""
    from broadcast.sandbox.server import CREDENTIALS

    values = {
        "TEST_MASTODON_TOKEN": CREDENTIALS["mastodon"],
        "TEST_WEBHOOK_SECRET": CREDENTIALS["webhook"],
        "TEST_BLUESKY_PASSWORD": CREDENTIALS["bluesky"],
        "TEST_TELEGRAM_TOKEN": CREDENTIALS["telegram"],
        "TEST_FACEBOOK_TOKEN": CREDENTIALS["facebook"],
        "TEST_X_SECRET": CREDENTIALS["x"],
        "TEST_X_CONSUMER_KEY": CREDENTIALS["x_consumer_key"],
        "TEST_X_CONSUMER_SECRET": CREDENTIALS["x_consumer_secret"],
        "TEST_X_ACCESS_TOKEN": CREDENTIALS["x_access_token"],
        "TEST_X_ACCESS_SECRET": CREDENTIALS["x_access_secret"],
        "TEST_SLACK_URL": f"{sandbox.url}/slack/services/T0001/B0001/sandboxslack",
        "TEST_TEAMS_URL": f"{sandbox.url}/teams/workflows/sandbox/triggers/manual/paths/invoke?sig=sandboxsig",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def channel_config(tmp_path: Path, name: str, text: str):
    """Write channels/NAME.toml into a fresh copy of the fixture workspace and return (workspace, config)."""
    root = make_workspace(tmp_path / f"ws-{name}")
    (root / "channels" / f"{name}.toml").write_text(text, encoding="utf-8")
    workspace = Workspace(root)
    return workspace, workspace.channels[name]


def make_alert(workspace: Workspace, identifier: str = "A-2026-0001", values: dict | None = None):
    from datetime import UTC, datetime

    from broadcast.prepare.templates import render
    from broadcast.send.compose import build_alert

    rendering = render(find_template(workspace, "school-closure"), workspace, {**VALUES, **(values or {})})
    return build_alert(workspace, rendering, identifier=identifier, sent=datetime(2026, 11, 23, 6, 5, tzinfo=UTC))


def send_one(channel, alert, language: str = "en-GB", *, store=None, limits=None, sleep=None):
    """Prepare and fan out one post through the real engine; return (outcome, store)."""
    import asyncio

    from broadcast.send.client import http_client
    from broadcast.send.fanout import Job, Limits, delivery_key, fan_out

    store = store or Store.open(channel.config.path.parent.parent / "broadcast.db")
    if not store.db.table("alerts").count_where("identifier = ?", [alert.identifier]):
        store.save_alert(alert, sent_by="test")
    post = channel.prepare(alert, language)
    key = delivery_key(alert.identifier, channel.name, language)
    store.add_deliveries(alert.identifier, [{"channel": channel.name, "language": language,
                                             "idempotency_key": key}], actor="test")
    delivery = store.deliveries(alert.identifier)[-1]

    async def no_sleep(seconds: float) -> None:
        return None

    async def go():
        async with http_client(8, timeout=5) as client:  # the engine's own client, as a warning sends
            return await fan_out(store, [Job(delivery, channel, post)], client=client, actor="test",
                                 limits=limits or Limits(), sleep=sleep or no_sleep)

    return asyncio.run(go())[0], store


SETS = [f"--set={k}={v}" for k, v in VALUES.items()]


def approved(root: Path) -> Workspace:
    """The workspace at `root` with its school-closure template signed off (in its log, whichever store)."""
    from broadcast.prepare.approvals import approve
    from broadcast.store import open_store

    workspace = Workspace(root)
    store = open_store(workspace)
    approve(workspace, find_template(workspace, "school-closure"), "Alex Morgan, Head of Communications", store)
    store.close()
    return workspace


def live_channels(root: Path, url: str) -> None:
    """Mastodon and two webhooks (hook-a, hook-b), on the sandbox at `url`."""
    channels = root / "channels"
    (channels / "mastodon-council.toml").write_text(
        f'kind = "mastodon"\n[settings]\ninstance = "{url}/mastodon"\n'
        '[secrets]\naccess_token = "env:TEST_MASTODON_TOKEN"\n', encoding="utf-8")
    for name in ("hook-a", "hook-b"):
        (channels / f"{name}.toml").write_text(
            f'kind = "webhook"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nurl = "{url}/hooks/{name}"\n'
            '[secrets]\nsigning_secret = "env:TEST_WEBHOOK_SECRET"\n', encoding="utf-8")


@pytest.fixture
def live(workspace_dir, sandbox, sandbox_env, monkeypatch):
    """The fixture workspace with Mastodon and two webhooks on the sandbox, and its template approved."""
    live_channels(workspace_dir, sandbox.url)
    config = workspace_dir / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[fanout]\nfirst_backoff = 0.01\nmax_backoff = 0.02\n",
                      encoding="utf-8")
    approved(workspace_dir)
    monkeypatch.setenv("BROADCAST_OPERATOR", "duty-officer")
    return workspace_dir


def invoke(workspace_dir, *args):
    from broadcast.cli import cli

    return CliRunner().invoke(cli, ["--workspace", str(workspace_dir), *args], catch_exceptions=False)


def with_client(coroutine_function):
    """Run `await coroutine_function(client)` with a fresh httpx client, for calling an adapter directly."""
    import asyncio

    import httpx

    async def go():
        async with httpx.AsyncClient(timeout=5) as client:
            return await coroutine_function(client)

    return asyncio.run(go())


def everything_stored(store) -> str:
    """Every row of every table, as one string to search for what must never be stored."""
    return json.dumps({t: list(store.db[t].rows) for t in store.db.table_names()}, default=str, ensure_ascii=False)


def as_account(monkeypatch: pytest.MonkeyPatch, account: str) -> None:
    """Run what follows as another OS account, as a second person logged in as themselves would (in process)."""
    from broadcast.prepare import approvals

    monkeypatch.delenv("BROADCAST_OPERATOR", raising=False)
    monkeypatch.setattr(approvals, "os_account", lambda: account)


def sqlite_steps(conn, every: int = 10) -> list[int]:
    """Count SQLite's own steps on `conn` from now on (its progress handler, every `every` virtual-machine
    instructions): the work a look-up does, the same on any machine. The count is the list's one item."""
    counted = [0]

    def step() -> int:
        counted[0] += 1
        return 0  # go on

    conn.set_progress_handler(step, every)
    return counted
