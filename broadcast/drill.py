"""The drill: a whole exercise (prepare, warn, update, correct, recover, close, review) against the sandbox.

It runs in a temporary copy of the workspace, with every channel pointed at the sandbox on 127.0.0.1 and the
sandbox's credentials in this process's environment, so nothing reaches a real account.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcast.errors import BroadcastError
from broadcast.words import counted

if TYPE_CHECKING:
    from broadcast.prepare.lint import Finding
    from broadcast.sandbox.server import Sandbox
    from broadcast.send.sending import Report
    from broadcast.store import Store
    from broadcast.workspace import ChannelConfig, Workspace

ACTOR = "drill (exercise)"
EXAMPLE_LISTS = Path(__file__).parent / "example" / "lists"
COPIED = ("broadcast.toml", "approvals.toml", "people.toml", "templates", "channels", "runbooks", "areas")
# Faults a duty officer should see handled: a rate limit honoured, a server error retried, a slow platform.
FAULTS: dict[str, dict[str, Any]] = {"facebook": {"fail_next": 1, "status": 429, "retry_after": 1},
          "slack": {"fail_next": 1, "status": 503},
          "x": {"fail_next": 2, "status": 500},
          "telegram": {"latency": 0.3}}
# A scenario the example templates support: snow, schools, then the all-clear.
WARN = ("severe-weather", {"area": "county-wide", "level": "amber", "date": "today", "from_time": "18:00",
                           "until_time": "11:00", "next_update": "21:00"})
UPDATE = ("school-closures", {"schools": "Ysgol Gynradd Hillside; Ysgol Bro Lliw", "date": "tomorrow",
                              "reason": "snow", "next_update": "15:00"})
CORRECTION = {"schools": "Ysgol Gynradd Hillside; Ysgol Bro Lliw; Ysgol y Bont"}
ALL_CLEAR = ("all-clear", {"area": "county-wide", "incident": "snow", "ended": "10:00", "advice": "roads"})


@dataclass
class DrillReport:
    root: Path
    sandbox_url: str
    steps: list[tuple[str, str]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    incident: str | None = None
    head: str = ""
    events: int = 0
    verified: bool = False
    seconds: float = 0.0
    posts: int = 0

    @property
    def ok(self) -> bool:
        return self.verified and all(not line.startswith("FAIL") for _, line in self.steps)


def run_drill(source: Workspace, *, into: Path | None = None, faults: bool = True,
              echo: Callable[[str], None] = print) -> DrillReport:
    """Copy the workspace, start the sandbox, run the whole exercise, and say where the page and log are."""
    from broadcast.sandbox.mail import start_mail
    from broadcast.sandbox.server import Sandbox
    from broadcast.workspace import Workspace

    started = time.monotonic()
    root = copy_workspace(source.root, into)
    sandbox = Sandbox(seed=1)
    url = sandbox.start()
    mail, mail_port = start_mail(sandbox)
    report = DrillReport(root, url)
    saved = dict(os.environ)
    try:
        os.environ.update(point_at_sandbox(Workspace(root), url, mail_port))
        workspace = Workspace(root)
        echo(f"Drill in {root} (a copy of {source.root}); every channel goes to the sandbox at {url}/")
        _exercise(workspace, sandbox, report, faults, echo)
    finally:
        report.posts = len(sandbox.received(accepted=True))
        mail.stop()
        sandbox.stop()
        os.environ.clear()
        os.environ.update(saved)
    report.seconds = time.monotonic() - started
    return report


def copy_workspace(source: Path, into: Path | None) -> Path:
    root = Path(tempfile.mkdtemp(prefix="broadcast-drill-")) if into is None else into
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise BroadcastError(f"{root} is not empty", hint="give a new folder to --keep, or leave it out")
    for name in COPIED:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, root / name)
        elif path.is_file():
            shutil.copyfile(path, root / name)
    # Only the fictional example lists (drama-range numbers, example.org), never the workspace's own lists/:
    # a drill has no business copying real people's numbers into a temporary folder.
    lists = next((p for p in (source / "examples" / "lists", EXAMPLE_LISTS) if p.is_dir()), None)
    if lists is not None:
        shutil.copytree(lists, root / "lists")
    config = (root / "broadcast.toml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^show_exercises\s*=.*$", "show_exercises = true", config)
    if "show_exercises" not in config:
        config = config.replace("[page]\n", "[page]\nshow_exercises = true\n") if "[page]" in config else (
            config + "\n[page]\nshow_exercises = true\n")
    config = local_page(config)
    if "[fanout]" not in config:
        config += "\n[fanout]\nfirst_backoff = 0.2\nmax_backoff = 1.0\nchannel_deadline = 20\noverall_deadline = 40\n"
    (root / "broadcast.toml").write_text(config, encoding="utf-8")
    return root


def local_page(config: str) -> str:
    """broadcast.toml with its page published to the copy's own site/ only, and its log a SQLite file of its own: a
    rehearsal must never reach the real bucket or server, nor write to a shared PostgreSQL log (every
    [[page.targets]] block and the [store] section are dropped, one directory target added)."""
    kept, skipping = [], False
    for line in config.splitlines():
        header = line.strip()
        if header.startswith("["):
            skipping = header in ("[[page.targets]]", "[store]")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + '\n\n[[page.targets]]\nname = "site"\nkind = "directory"\npath = "site"\n'


def sandbox_settings(config: ChannelConfig, url: str, mail_port: int = 0) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings and secret values that point one channel at the sandbox."""
    from broadcast.sandbox.server import CREDENTIALS

    kind, name = config.kind, config.name
    settings: dict[str, Any] = dict(config.settings)
    values: dict[str, str] = {}
    if kind == "mastodon":
        settings["instance"] = f"{url}/mastodon"
        values["access_token"] = CREDENTIALS["mastodon"]
    elif kind == "bluesky":
        settings["service"] = f"{url}/bluesky"
        values["app_password"] = CREDENTIALS["bluesky"]
    elif kind == "telegram":
        settings["api"] = f"{url}/telegram"
        values["bot_token"] = CREDENTIALS["telegram"]
    elif kind == "facebook":
        settings["graph"] = f"{url}/facebook"
        values["page_access_token"] = CREDENTIALS["facebook"]
    elif kind == "x":
        settings["api"] = f"{url}/x"
        values.update(consumer_key=CREDENTIALS["x_consumer_key"], consumer_secret=CREDENTIALS["x_consumer_secret"],
                      access_token=CREDENTIALS["x_access_token"], access_token_secret=CREDENTIALS["x_access_secret"])
    elif kind == "webhook":
        settings["url"] = f"{url}/hooks/{name}"
        values["signing_secret"] = CREDENTIALS["webhook"]
    elif kind == "slack":
        values["webhook_url"] = f"{url}/slack/services/T0001/B0001/{CREDENTIALS['slack']}"
    elif kind == "govuk-notify":
        from broadcast.sandbox.platforms import notify

        settings.update(api=f"{url}/notify", sms_template_id=notify.SMS_TEMPLATE)
        if "email_template_id" in settings:
            settings["email_template_id"] = notify.EMAIL_TEMPLATE
        values["api_key"] = notify.API_KEY
    elif kind == "twilio":
        from broadcast.sandbox.platforms import twilio

        settings.update(api=f"{url}/twilio", messaging_service_sid=twilio.MESSAGING_SERVICE_SID)
        settings.pop("from", None)
        values.update(account_sid=twilio.ACCOUNT_SID, auth_token=twilio.AUTH_TOKEN)
    elif kind == "smtp":
        settings.update(host="127.0.0.1", port=mail_port, security="none")  # the sandbox's own mail server
    elif kind == "teams":
        values["workflow_url"] = (f"{url}/teams/workflows/sandbox/triggers/manual/paths/invoke"
                                  f"?sig={CREDENTIALS['teams']}")
    return settings, values


REHEARSAL = ".broadcast/rehearsal"  # marks a copy whose channels point at a sandbox: only such a copy is re-pointed
ENV_FILE = "sandbox.env"  # in a rehearsal copy: the sandbox's credentials, as the exports a shell sources


def point_at_sandbox(workspace: Workspace, url: str, mail_port: int) -> dict[str, str]:
    """Rewrite each channel file of the copy: sandbox addresses, exercise allowed; return the environment its
    secrets need (the sandbox's credentials, never a real one), and mark the copy as a rehearsal."""
    from broadcast.channels import KINDS

    environment: dict[str, str] = {}
    for config in workspace.channels.values():
        if config.kind not in KINDS:
            continue  # the page is published to the copy's site/; kinds without an adapter stay as they are
        settings, values = sandbox_settings(config, url, mail_port)
        for key, value in values.items():
            ref = config.secrets.get(key)
            if ref:
                environment[ref.removeprefix("env:")] = value
        secrets = {} if config.kind == "smtp" else config.secrets  # the sandbox's mail server takes no login
        config.path.write_text(channel_toml(config, settings, secrets), encoding="utf-8")
    marker = workspace.root / REHEARSAL
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(f"{url}\n", encoding="utf-8")
    (workspace.root / ENV_FILE).write_text(
        "# The sandbox's credentials for this rehearsal copy (not secrets: they work only on the sandbox).\n"
        "# Load them in the shell that sends: . ./sandbox.env\n"
        + "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(environment.items())),
        encoding="utf-8")
    return environment


def is_rehearsal(root: Path) -> bool:
    return (root / REHEARSAL).is_file()


def channel_toml(config: ChannelConfig, settings: dict[str, Any], secrets: dict[str, str]) -> str:
    lines = [f"# Drill copy: points at the sandbox.\nkind = {json.dumps(config.kind)}",
             f"description = {json.dumps(config.description, ensure_ascii=False)}",
             f"languages = {json.dumps(list(config.languages))}", "exercise = true",
             f"enabled = {'true' if config.enabled else 'false'}", "", "[settings]"]
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in settings.items()]
    lines += ["", "[secrets]"] + [f"{key} = {json.dumps(ref)}" for key, ref in secrets.items()]
    return "\n".join(lines) + "\n"


def _exercise(workspace: Workspace, sandbox: Sandbox, report: DrillReport, faults: bool,
              echo: Callable[[str], None]) -> None:
    from broadcast.channels.checks import check_channels
    from broadcast.prepare.templates import find_template
    from broadcast.send.lifecycle import close_incident, plan_correction, plan_update, retract
    from broadcast.send.sending import Issue, plan_warning, send_warning
    from broadcast.store import Store

    store = Store.open(workspace.db_path)

    def step(name: str, line: str) -> None:
        report.steps.append((name, line))
        echo(f"{name:9} {line}")

    try:
        errors = sign_off_copy(workspace, store, "Drill, automatic sign-off (exercise copy only)")
        checks = check_channels(workspace)
        step("prepare", f"{'FAIL ' if errors else ''}{counted(len(workspace.template_names()), 'template')} linted "
             f"({counted(len(errors), 'error')}); "
             f"{sum(c.ok for c in checks)} of {len(checks)} channel accounts checked OK")
        if faults:
            for target, fault in FAULTS.items():
                sandbox.fault(target, **fault)
            echo(f"{'':9} faults injected: {', '.join(f'{k} {describe(v)}' for k, v in FAULTS.items())}")

        template, values = WARN
        plan = plan_warning(workspace, template, values, store=store, learn_limits=True,
                            issue=Issue(status="Exercise"))
        sent = send_warning(workspace, store, plan, actor=ACTOR)
        report.incident = sent.alert.incidents
        assert report.incident is not None
        summary("warn", sent, report, step)
        resident_asks(sandbox, store, sent.alert.identifier, RESIDENT_ASKS)

        template, values = UPDATE
        plan = plan_update(workspace, store, report.incident, template, values)
        summary("update", send_warning(workspace, store, plan, actor=ACTOR), report, step)

        superseded, plan = plan_correction(workspace, store, report.alerts[-1], CORRECTION)
        gone = retract(workspace, store, superseded, actor=ACTOR)
        step("correct", f"{sum(r.done for r in gone)} posts of {superseded[0].identifier} deleted where the platform "
             f"allows; {sum(not r.done for r in gone)} kept (the correction follows them)")
        summary("correct", send_warning(workspace, store, plan, actor=ACTOR), report, step)

        template, wanted = ALL_CLEAR
        known = find_template(workspace, template).variables
        values = {k: v for k, v in wanted.items() if k in known}
        values.update({k: v.example for k, v in known.items() if k not in values})
        plan = plan_update(workspace, store, report.incident, template, values, all_clear=True)
        summary("recover", send_warning(workspace, store, plan, actor=ACTOR), report, step)
        from broadcast.review.receipts import collect, collect_reach

        found = collect(workspace, store, report.incident, actor=ACTOR)
        step("collect", f"texts and emails: {sum(r.delivered for r in found):,} delivered, "
             f"{sum(r.failed for r in found):,} failed, {sum(r.pending for r in found):,} on their way, "
             f"{sum(r.unknown for r in found):,} without receipts (SMTP)")
        reach = collect_reach(workspace, store, report.incident, actor=ACTOR)
        step("collect", f"posts: {counted(len(reach), 'post')} asked, "
             f"{counted(sum(r.replies or 0 for r in reach), 'reply')} from the public, "
             f"{sum(r.replies is None for r in reach)} without counts (Telegram, Slack, Teams and webhooks give none)")
        close_incident(store, report.incident, actor=ACTOR, state="recovering")
        close_incident(store, report.incident, actor=ACTOR)
        step("close", f"incident {report.incident} closed")

        result = store.verify()
        report.verified, report.events, report.head = result.ok, result.count, result.head
        step("review", f"{'OK' if result.ok else 'FAIL'}: the log verifies, {counted(result.count, 'event')}, head "
             f"{result.head[:16]}...")
    finally:
        store.close()


RESIDENT_ASKS = "Is the school bus running tomorrow?"


def resident_asks(sandbox: Sandbox, store: Store, alert: str, text: str) -> None:
    """A member of the public replies to the council's Mastodon post, as one would, so the review has a question to
    bring back (the sandbox's resident account; nothing leaves 127.0.0.1)."""
    import httpx

    from broadcast.sandbox.platforms.mastodon import PUBLIC_TOKEN

    for (remote_id,) in store.conn.execute(
            "SELECT remote_id FROM deliveries WHERE alert = ? AND state = 'sent' AND recipient = '' AND "
            "remote_url LIKE ? ORDER BY id LIMIT 1", [alert, f"{sandbox.url}/@council/%"]):
        httpx.post(f"{sandbox.url}/mastodon/api/v1/statuses", headers={"Authorization": f"Bearer {PUBLIC_TOKEN}"},
                   json={"status": text, "in_reply_to_id": remote_id}, timeout=5).raise_for_status()


def sign_off_copy(workspace: Workspace, store: Store, by: str) -> list[Finding]:
    """Approve, in a copy that only reaches the sandbox, every template that lints without errors; return the
    errors (those templates stay unapproved, as they would in the real workspace)."""
    from broadcast.prepare.approvals import approval_state, approve, read_approvals
    from broadcast.prepare.lint import lint_workspace
    from broadcast.prepare.templates import find_template

    errors = [f for f in lint_workspace(workspace) if f.level == "error"]
    approvals = read_approvals(workspace)
    for name in workspace.template_names():
        loaded = find_template(workspace, name)
        if not approval_state(loaded, approvals).approved and not any(f.template == name for f in errors):
            approve(workspace, loaded, by, store)
    return errors


def summary(name: str, sent: Report, report: DrillReport, step: Callable[[str, str], None]) -> None:
    report.alerts.append(sent.alert.identifier)
    accepted = sum(o.state == "sent" for o in sent.outcomes)
    retried = sum(bool(o.waits) for o in sent.outcomes)
    failed = [f"{o.channel} ({o.error})" for o in sent.outcomes if o.state != "sent"]
    line = (f"{sent.alert.identifier} {sent.alert.msg_type} {sent.alert.status}: {accepted} of {len(sent.outcomes)} "
            f"channels and languages accepted it, {retried} after a retry")
    if failed:
        line = "FAIL " + line + "; not accepted: " + "; ".join(failed)
    step(name, line)
    for page in sent.page:
        if page.startswith("FAIL"):
            step(name, page)


def describe(fault: dict[str, Any]) -> str:
    if "latency" in fault:
        return f"slow ({fault['latency']} s)"
    text = f"{fault['status']} x{fault['fail_next']}"
    return text + (f" Retry-After {fault['retry_after']}" if "retry_after" in fault else "")
