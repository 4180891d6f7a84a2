"""Helpers for the reliability suite: a workspace with every channel kind on the sandbox, and the CLI in a process.

The workspace has the seven platforms the sandbox emulates, webhooks to make it up to `channels`, and optionally a
GOV.UK Notify channel with a list of SMS recipients. Each warn gets a unique school name, so what a platform
received can be matched to the alert it belongs to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import VALUES, make_workspace

from broadcast.prepare.templates import find_template
from broadcast.sandbox.server import CREDENTIALS
from broadcast.store import Store

PLATFORMS = {
    "mastodon-council": ('kind = "mastodon"\n[settings]\ninstance = "{url}/mastodon"\n'
                         '[secrets]\naccess_token = "env:TEST_MASTODON_TOKEN"\n'),
    "bluesky-council": ('kind = "bluesky"\n[settings]\nservice = "{url}/bluesky"\nhandle = "alerts.testshire.example"\n'
                        '[secrets]\napp_password = "env:TEST_BLUESKY_PASSWORD"\n'),
    "telegram-alerts": ('kind = "telegram"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nchat_id = "@TestshireAlerts"\n'
                        'api = "{url}/telegram"\n[secrets]\nbot_token = "env:TEST_TELEGRAM_TOKEN"\n'),
    "slack-duty": 'kind = "slack"\n[secrets]\nwebhook_url = "env:TEST_SLACK_URL"\n',
    "teams-lrf": 'kind = "teams"\n[secrets]\nworkflow_url = "env:TEST_TEAMS_URL"\n',
    "facebook-page": ('kind = "facebook"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\npage_id = "100000000000001"\n'
                      'graph = "{url}/facebook"\n[secrets]\npage_access_token = "env:TEST_FACEBOOK_TOKEN"\n'),
    "x-council": ('kind = "x"\n[settings]\napi = "{url}/x"\n[secrets]\nconsumer_key = "env:TEST_X_CONSUMER_KEY"\n'
                  'consumer_secret = "env:TEST_X_CONSUMER_SECRET"\naccess_token = "env:TEST_X_ACCESS_TOKEN"\n'
                  'access_token_secret = "env:TEST_X_ACCESS_SECRET"\n'),
}
WEBHOOK = ('kind = "webhook"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nurl = "{url}/hooks/{name}"\n'
           '[secrets]\nsigning_secret = "env:TEST_WEBHOOK_SECRET"\n')
NOTIFY = ('kind = "govuk-notify"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nlist = "residents"\n'
          'sms_template_id = "{template}"\napi = "{url}/notify"\nrate = 0\n'
          '[secrets]\napi_key = "env:TEST_NOTIFY_KEY"\n')
TWILIO = ('kind = "twilio"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nlist = "residents"\n'
          'messaging_service_sid = "{service}"\napi = "{url}/twilio"\nrate = 0\n[secrets]\n'
          'account_sid = "env:TEST_TWILIO_SID"\nauth_token = "env:TEST_TWILIO_TOKEN"\n')
# Small backoffs and deadlines, so a run with injected faults takes a second, not a minute.
FANOUT = ("\n[fanout]\nfirst_backoff = 0.02\nmax_backoff = 0.1\nchannel_deadline = 20\noverall_deadline = 30\n"
          "connect_timeout = 2\nread_timeout = 5\n")
IDEMPOTENT = ("mastodon", "bluesky", "webhook")
SMS = "sms-residents"


def full_workspace(root: Path, url: str, *, channels: int = 12, recipients: int = 0, twilio: bool = False) -> Path:
    """A workspace on the sandbox: the seven platforms, webhooks up to `channels`, Notify (and Twilio) to a list of
    `recipients`."""
    from broadcast.prepare.approvals import approve
    from broadcast.sandbox.platforms.notify import SMS_TEMPLATE
    from broadcast.workspace import Workspace

    make_workspace(root)
    folder = root / "channels"
    (folder / "mastodon-council.toml").unlink()
    for name, text in PLATFORMS.items():
        (folder / f"{name}.toml").write_text(text.format(url=url), encoding="utf-8")
    for n in range(channels - len(PLATFORMS)):
        name = f"hook-{n:02d}"
        (folder / f"{name}.toml").write_text(WEBHOOK.format(url=url, name=name), encoding="utf-8")
    if recipients:
        (root / "lists").mkdir()
        with (root / "lists" / "residents.csv").open("w", encoding="utf-8") as handle:
            handle.write("phone,name,language\n")
            for n in range(recipients):  # valid UK mobile numbers that only ever reach the sandbox
                handle.write(f"07400 {100000 + n:06d},Resident {n},{'cy' if n % 4 == 0 else 'en'}\n")
        (folder / f"{SMS}.toml").write_text(NOTIFY.format(url=url, template=SMS_TEMPLATE), encoding="utf-8")
    if recipients and twilio:
        from broadcast.sandbox.platforms.twilio import MESSAGING_SERVICE_SID

        (folder / "sms-twilio.toml").write_text(TWILIO.format(url=url, service=MESSAGING_SERVICE_SID),
                                                encoding="utf-8")
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + FANOUT, encoding="utf-8")
    workspace = Workspace(root)
    store = Store.open(workspace.db_path)
    approve(workspace, find_template(workspace, "school-closure"), "Alex Morgan, Head of Communications", store)
    store.close()
    return root


def environment(url: str, **extra: str) -> dict[str, str]:
    """This process's environment plus the sandbox's credentials, as a duty officer's shell would have them."""
    from broadcast.sandbox.platforms import twilio
    from broadcast.sandbox.platforms.notify import API_KEY

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROADCAST_", "TEST_"))}
    env.update({
        "BROADCAST_OPERATOR": "duty-officer",
        "TEST_MASTODON_TOKEN": CREDENTIALS["mastodon"],
        "TEST_WEBHOOK_SECRET": CREDENTIALS["webhook"],
        "TEST_BLUESKY_PASSWORD": CREDENTIALS["bluesky"],
        "TEST_TELEGRAM_TOKEN": CREDENTIALS["telegram"],
        "TEST_FACEBOOK_TOKEN": CREDENTIALS["facebook"],
        "TEST_X_CONSUMER_KEY": CREDENTIALS["x_consumer_key"],
        "TEST_X_CONSUMER_SECRET": CREDENTIALS["x_consumer_secret"],
        "TEST_X_ACCESS_TOKEN": CREDENTIALS["x_access_token"],
        "TEST_X_ACCESS_SECRET": CREDENTIALS["x_access_secret"],
        "TEST_SLACK_URL": f"{url}/slack/services/T0001/B0001/{CREDENTIALS['slack']}",
        "TEST_TEAMS_URL": f"{url}/teams/workflows/sandbox/triggers/manual/paths/invoke?sig={CREDENTIALS['teams']}",
        "TEST_NOTIFY_KEY": API_KEY,
        "TEST_TWILIO_SID": twilio.ACCOUNT_SID,
        "TEST_TWILIO_TOKEN": twilio.AUTH_TOKEN,
    })
    env.update(extra)
    return env


def command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "broadcast", "--workspace", str(root), *args]


def warn_args(school: str = VALUES["school"], *extra: str) -> list[str]:
    values = {**VALUES, "school": school}
    return ["warn", "school-closure", *[f"--set={k}={v}" for k, v in values.items()], "--yes", *extra]


def run(root: Path, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One CLI command in its own process, as a duty officer runs it."""
    return subprocess.run(command(root, *args), env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def accepted_by_target(sandbox: Any, marker: str) -> Counter[str]:
    """New posts each target accepted whose body mentions `marker` (a per-alert school name)."""
    import json

    return Counter(r.target for r in sandbox.received(accepted=True)
                   if r.platform != "notify" and marker in json.dumps(r.body, ensure_ascii=False))


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
