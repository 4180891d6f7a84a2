"""Warn and resend: from an approved template to every channel, with the outbox and the page around it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from broadcast.alert import Alert
from broadcast.channels.base import ChannelError
from broadcast.errors import INTERRUPTED, NOTHING_DELIVERED, OK, SOME_FAILED, BroadcastError, PolicyError
from broadcast.prepare.approvals import ApprovalState, approval_state, read_approvals
from broadcast.prepare.templates import Rendering, find_template, render
from broadcast.send.compose import build_alert
from broadcast.send.fanout import Job, Limits, Outcome, delivery_key, fan_out
from broadcast.send.interrupt import Stop
from broadcast.send.policy import Policy, channel_refusal, stamp
from broadcast.store import isoformat, utcnow

if TYPE_CHECKING:
    import httpx

    from broadcast.channels.base import Channel, Post
    from broadcast.send.audience import Audience
    from broadcast.send.bulk import Progress
    from broadcast.store import Store
    from broadcast.workspace import BrokenChannel, ChannelConfig, Workspace

PUBLISHED_SEPARATELY = {"page"}  # the fallback page is built and published around every fan-out


@dataclass(frozen=True)
class Issue:
    """How a message is issued: its CAP message type and status, what it refers to, its incident."""

    msg_type: str = "Alert"
    status: str = "Actual"
    references: tuple[str, ...] = ()
    note: str | None = None
    incident: str | None = None


@dataclass(frozen=True)
class Release:
    """Who let a message go that its template's approval alone does not cover."""

    approved_by: str
    override_reason: str | None = None
    draft: int | None = None


@dataclass
class Plan:
    """What a message will send, prepared and fitted, before anything goes out."""

    rendering: Rendering
    alert: Alert
    approval: ApprovalState
    posts: list[tuple[Channel, Post]]
    skipped: list[tuple[str, str]]
    issue: Issue = Issue()
    audience: Audience | None = None  # who the list channels reach (recipients, segments, cost)
    broken: list[BrokenChannel] = field(default_factory=list)  # channel files that cannot be used: each fails alone
    zone: str = ""  # the workspace's time zone, for showing times


@dataclass
class Report:
    alert: Alert
    outcomes: list[Outcome]
    skipped: list[tuple[str, str]]
    page: list[str] = field(default_factory=list)  # one line per page target, or why it failed
    stopped_by: str | None = None  # "Ctrl-C" or "SIGTERM" when a signal stopped the send before it finished
    storage_error: str | None = None  # why the log could not be written, when that stopped the send

    @property
    def exit_code(self) -> int:
        sent = [o for o in self.outcomes if o.state == "sent"]
        if len(sent) == len(self.outcomes):
            return OK
        if self.stopped_by and not self.storage_error:
            return INTERRUPTED
        return SOME_FAILED if sent else NOTHING_DELIVERED


def switched_off(store: Store) -> dict[str, str]:
    """Channels switched off by `channels disable` (the kill switch), with why, by whom and when."""
    state: dict[str, str] = {}
    for event in store.conn.execute(
        "SELECT type, channel, actor, occurred_at, description FROM events "
        "WHERE type IN ('channel_disabled', 'channel_enabled') ORDER BY id"
    ):
        kind, channel, actor, at, why = event
        if kind == "channel_disabled":
            state[channel] = f"switched off by {actor} at {at[:16].replace('T', ' ')} UTC: {why}"
        else:
            state.pop(channel, None)
    return state


def switch(store: Store, channel: str, *, on: bool, actor: str, reason: str | None = None) -> None:
    """The kill switch: every command skips a channel that is switched off until it is switched on again."""
    if not on and not (reason or "").strip():
        raise PolicyError("switching a channel off needs a reason", hint='e.g. --reason "account compromised"')
    store.append_event("channel_enabled" if on else "channel_disabled", phase="prepare", actor=actor, channel=channel,
                       description=reason or "switched on again")


def usable_channels(workspace: Workspace, store: Store | None, only: tuple[str, ...], status: str = "Actual"
                    ) -> tuple[list[tuple[ChannelConfig, Channel]], list[tuple[str, str]]]:
    """Adapters for the channels this send may use, and the ones skipped with the reason."""
    from broadcast.channels import load, select_channels

    killed = switched_off(store) if store else {}
    usable, skipped = [], []
    for config in select_channels(workspace, only):
        refusal = channel_refusal(config, status)
        if config.kind in PUBLISHED_SEPARATELY:
            continue
        if refusal:
            skipped.append((config.name, refusal))
        elif not config.enabled:
            skipped.append((config.name, "off in its file (enabled = false)"))
        elif config.name in killed:
            skipped.append((config.name, killed[config.name]))
        else:
            try:
                usable.append((config, load(config, workspace.organisation.web)))
            except ChannelError as exc:
                skipped.append((config.name, exc.message))
    return usable, skipped


def plan_warning(workspace: Workspace, template_name: str, values: dict[str, str], *, store: Store | None = None,
                 only: tuple[str, ...] = (), now: datetime | None = None, learn_limits: bool = False,
                 issue: Issue = Issue(), to: tuple[str, ...] = (), one_segment: bool = False) -> Plan:
    """Render, build the Alert and fit each channel's post; refuse before sending if any post cannot fit."""
    template = find_template(workspace, template_name)
    rendering = render(template, workspace, values)
    return plan_rendering(workspace, rendering, approval_state(template, read_approvals(workspace)), store=store,
                          only=only, now=now, learn_limits=learn_limits, issue=issue, to=to, one_segment=one_segment)


def plan_rendering(workspace: Workspace, rendering: Rendering, approval: ApprovalState, *, store: Store | None,
                   only: tuple[str, ...] = (), now: datetime | None = None, learn_limits: bool = False,
                   issue: Issue = Issue(), to: tuple[str, ...] = (), one_segment: bool = False) -> Plan:
    """Plan an already rendered message (a template's, or a correction's or a cancellation's)."""
    if issue.status == "Exercise":
        rendering = stamp(rendering, Policy.from_workspace(workspace).exercise_words)
    alert = build_alert(workspace, rendering, identifier="PREVIEW", sent=now or datetime.now(UTC),
                        status=issue.status, msg_type=issue.msg_type, references=issue.references, note=issue.note,
                        incident=issue.incident)
    usable, skipped = usable_channels(workspace, store, only, issue.status)
    from broadcast.send.limits import learn_limits as learn

    learn(workspace, [channel for _, channel in usable], ask=learn_limits)
    audience = None
    if to or any(channel.per_person for _, channel in usable):  # else the list machinery is not even imported
        from broadcast.send.audience import target

        audience = target(workspace, alert, usable, to=to, one_segment=one_segment)  # streams each list once
    posts = [(channel, channel.prepare(alert, language)) for config, channel in usable
             for language in config.languages]
    broken = [b for name, b in workspace.broken_channels.items() if not only or name in only]
    return Plan(rendering, alert, approval, posts, skipped, issue, audience, broken, workspace.timezone)


def send_warning(workspace: Workspace, store: Store, plan: Plan, *, actor: str, incident: str | None = None,
                 limits: Limits | None = None, on_outcome: Callable[[Outcome], None] | None = None,
                 release: Release | None = None, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Issue the planned Alert: record it, write the outbox, publish the page, fan out, publish again."""
    check_reach(plan)
    issue = plan.issue
    incident = incident or issue.incident
    if release is None and not plan.approval.approved:
        raise PolicyError(
            f"template {plan.alert.template} is {plan.approval.status}: it cannot go out without a second person",
            hint=f"ask a planner to approve the template (broadcast templates approve {plan.alert.template} --by "
            "\"Name, Role\"), or send it as a draft for a second person to approve (broadcast warn ... --draft)",
        )
    approved_by = release.approved_by if release else plan.approval.approval.by if plan.approval.approval else None
    sent = datetime.now(UTC)
    with store.transaction():
        identifier = store.next_identifier(sent.year)
        if incident is None:
            incident = f"{plan.alert.template}-{sent:%Y%m%d}-{identifier.rsplit('-', 1)[-1]}".lower()
            store.open_incident(incident, plan.alert.infos[0].headline, actor=actor,
                                exercise=issue.status != "Actual")
        elif not store.conn.execute("SELECT 1 FROM incidents WHERE slug = ?", [incident]).fetchone():
            raise PolicyError(f"no incident '{incident}'", hint="leave out --incident to open a new one")
        alert = build_alert(workspace, plan.rendering, identifier=identifier, sent=sent, incident=incident,
                            status=issue.status, msg_type=issue.msg_type, references=issue.references,
                            note=issue.note)
        if release and release.override_reason:
            store.append_event("policy_override", phase="warn", actor=actor, incident=incident, alert=identifier,
                               description=f"Sent without a second approver: {release.override_reason}",
                               details={"reason": release.override_reason, "flag": "review"}, pinned=True)
        store.save_alert(alert, sent_by=actor, approved_by=approved_by)
        if release and release.draft is not None:
            store.conn.execute("UPDATE drafts SET state = 'sent', alert = ? WHERE id = ?", [identifier, release.draft])
        queue_posts(store, identifier, [(channel.name, post.language) for channel, post in plan.posts
                                        if not channel.per_person], actor=actor)  # lists: a row per person
        if plan.audience is not None:
            from broadcast.send.audience import record

            record(store, identifier, plan.audience, [channel for channel, _ in plan.posts], actor=actor,
                   workspace=workspace)
    failed = _record_broken(store, identifier, plan.broken, actor=actor)
    channels = {channel.name: channel for channel, _ in plan.posts}
    report = _run(workspace, store, alert, channels, states=("pending",), actor=actor, limits=limits,
                  on_outcome=on_outcome, skipped=plan.skipped, on_progress=on_progress)
    report.outcomes += failed
    return report


def queue_posts(store: Store, identifier: str, posts: list[tuple[str, str]], *, actor: str) -> None:
    """Write a pending delivery for each (channel, language) post, keyed in the alert's own key space."""
    space = store.key_space(identifier)
    store.add_deliveries(identifier, [{"channel": channel, "language": language,
                                       "idempotency_key": delivery_key(identifier, channel, language, space=space)}
                                      for channel, language in posts], actor=actor)


def _record_broken(store: Store, identifier: str, broken: list[BrokenChannel], *, actor: str) -> list[Outcome]:
    """A channel whose file is broken fails alone, in the log as in the report: fixed, a resend sends it."""
    outcomes = []
    for channel in broken:
        queue_posts(store, identifier, [(channel.name, language) for language in channel.languages], actor=actor)
        error = channel.error
        for delivery in store.deliveries(identifier, ("pending",), recipients=False):
            if delivery["channel"] == channel.name:
                store.transition(delivery, "failed", "delivery_result", actor=actor, description=error.message,
                                 details={"outcome": "failed", "error": error.message, "transient": False},
                                 last_error=error.message)
                outcomes.append(Outcome(channel.name, delivery["language"], "failed", error=error.message,
                                        hint=f"{error.hint or 'fix the file'}; then: broadcast resend {identifier} "
                                        f"--only {channel.name}"))
    return outcomes


def check_reach(plan: Plan) -> None:
    """Refuse a message that would reach no channel: issuing it would put it on the page and in CAP alone.

    A cancellation is the exception: withdrawing a message from the page and the CAP feed is worth doing alone."""
    if plan.posts or plan.issue.msg_type == "Cancel":
        return
    reasons = plan.skipped + [(b.name, b.error.message) for b in plan.broken]
    why = "; ".join(f"{name}: {reason}" for name, reason in reasons) or "no channel is configured"
    raise PolicyError(f"nothing was issued: this message would reach no channel ({why})",
                      hint="switch a channel back on (broadcast channels enable NAME), or choose others with --only",
                      exit_code=NOTHING_DELIVERED)


@dataclass
class Resend:
    """What a resend would send: each channel and language with deliveries left, and how many (people for a list)."""

    alert: Alert
    channels: dict[str, Channel]
    skipped: list[tuple[str, str]]
    waiting: list[tuple[str, str, str, int]]  # channel, language, state, count
    uncertain: list[tuple[str, str, int]]  # left alone unless --include-uncertain: channel, language, count
    states: tuple[str, ...]
    new: list[tuple[str, str]] = field(default_factory=list)  # channels named with --only it never went to
    owed: list[Outcome] = field(default_factory=list)  # still to deliver on channels this run skips

    @property
    def empty(self) -> bool:
        return not self.waiting


def plan_resend(workspace: Workspace, store: Store, identifier: str, *, only: tuple[str, ...] = (),
                include_uncertain: bool = False) -> Resend:
    """Find what is left of an alert's deliveries; nothing is written."""
    import json


    row = store.conn.execute("SELECT alert FROM alerts WHERE identifier = ?", [identifier]).fetchone()
    if row is None:
        raise BroadcastError(f"no alert {identifier} in the log", hint="see the identifiers in: broadcast status")
    alert = Alert.from_dict(json.loads(row[0]))
    usable, skipped = usable_channels(workspace, store, only, alert.status)
    channels = {channel.name: channel for _, channel in usable}
    states = ("pending", "failed", "sending") + (("uncertain",) if include_uncertain else ())
    waiting, uncertain = [], []
    for name, language, state, number in store.conn.execute(
            "SELECT channel, language, state, count(*) FROM deliveries WHERE alert = ? AND state IN ('pending', "
            "'failed', 'sending', 'uncertain') GROUP BY channel, language, state ORDER BY min(id)", [identifier]):
        channel = channels.get(name)
        if channel is None:
            continue
        if state == "uncertain" or (state == "sending" and not channel.resend_is_safe):  # as settle_interrupted has it
            (waiting.append((name, language, "uncertain", number)) if include_uncertain
             else uncertain.append((name, language, number)))
        else:
            waiting.append((name, language, state, number))
    # A channel named with --only that the alert never went to (it was left out by --only, off, or broken then):
    # the resend sends it there, so every channel can be brought up to the incident's latest message.
    known = {r[0] for r in store.conn.execute("SELECT DISTINCT channel FROM deliveries WHERE alert = ?", [identifier])}
    new = [(config.name, language) for config, channel in usable if only and config.name not in known
           and not channel.per_person for language in config.languages]
    waiting += [(name, language, "not sent to it before", 1) for name, language in new]
    return Resend(alert, channels, skipped, waiting, uncertain, states, new,
                  left_on_skipped(store, identifier, skipped))


def resend(workspace: Workspace, store: Store, identifier: str, *, actor: str, only: tuple[str, ...] = (),
           include_uncertain: bool = False, limits: Limits | None = None,
           on_outcome: Callable[[Outcome], None] | None = None,
           on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Complete an alert's deliveries: pending and failed ones, and ones a killed run left mid-flight."""
    planned = plan_resend(workspace, store, identifier, only=only, include_uncertain=include_uncertain)
    alert, channels = planned.alert, planned.channels
    settle_interrupted(store, identifier, channels, actor=actor)
    queue_posts(store, identifier, planned.new, actor=actor)
    report = _run(workspace, store, alert, channels, states=planned.states, actor=actor, limits=limits,
                  on_outcome=on_outcome, skipped=planned.skipped, on_progress=on_progress)
    report.outcomes += [Outcome(d["channel"], d["language"], "uncertain", d["attempts"],
                                error="an interrupted run may have posted it",
                                hint=f"check {d['channel']} by hand; if nothing was posted, run: broadcast resend "
                                f"{identifier} --only {d['channel']} --include-uncertain")
                        for d in store.deliveries(identifier, ("uncertain",), recipients=False) if not include_uncertain
                        and d["channel"] in channels]
    report.outcomes += planned.owed
    return report


def left_on_skipped(store: Store, identifier: str, skipped: list[tuple[str, str]]) -> list[Outcome]:
    """Deliveries still to make on channels this run skips (switched off, off in the file, broken): not done, so
    the exit code says so."""
    reasons = dict(skipped)
    outcomes = []
    for name, language, number in store.conn.execute(
            "SELECT channel, language, count(*) FROM deliveries WHERE alert = ? AND state IN ('pending', 'failed', "
            "'sending') GROUP BY channel, language ORDER BY min(id)", [identifier]):
        if name in reasons:
            count = f" ({number:,} people)" if number > 1 else ""
            outcomes.append(Outcome(name, language, "failed", error=f"not sent{count}: {reasons[name]}",
                                    hint=f"when {name} can be used again: broadcast resend {identifier} --only {name}"))
    return outcomes


def _run(workspace: Workspace, store: Store, alert: Alert, channels: dict[str, Channel], *, states: tuple[str, ...],
         actor: str, limits: Limits | None, on_outcome: Callable[[Outcome], None] | None,
         skipped: list[tuple[str, str]], on_progress: Callable[[Progress], None] | None = None) -> Report:
    jobs = [Job(d, channels[d["channel"]], channels[d["channel"]].prepare(alert, d["language"]))
            for d in store.deliveries(alert.identifier, states, recipients=False) if d["channel"] in channels]
    lists = {name: channel for name, channel in channels.items() if channel.per_person}
    report = Report(alert, [], skipped)
    limits = limits or Limits.from_workspace(workspace)
    # Ctrl-C or SIGTERM: start nothing new, settle, republish, say how to go on
    with Stop(limits.stop_grace) as stop, _steady_heap():
        publish_page(workspace, store)

        async def both() -> list[Outcome]:  # the lists go out at their own pace, beside the social fan-out
            social = _fan_out(store, jobs, actor=actor, limits=limits, on_outcome=on_outcome, stop=stop)
            if not lists:  # nor is the list machinery imported
                return await social
            from broadcast.send.bulk import deliver_lists

            people = deliver_lists(workspace, store, alert, lists, states=states, actor=actor, limits=limits,
                                   on_outcome=on_outcome, on_progress=on_progress, stop=stop, sleep=stop.sleep)
            first, second = await asyncio.gather(social, people)
            return first + second

        outcomes = asyncio.run(stop.run(both()))
        if stop.requested:
            report.stopped_by, report.storage_error = stop.by, stop.failure
            with contextlib.suppress(sqlite3.Error):  # the log may still not be writable: resend settles them
                settle_interrupted(store, alert.identifier, channels, actor=actor)
            with contextlib.suppress(sqlite3.Error):
                outcomes = merge(outcomes or [], outcomes_in_log(store, alert.identifier, channels))
        report.outcomes = outcomes or []
        report.page = publish_page(workspace, store)
    return report


@contextlib.contextmanager
def _steady_heap() -> Iterator[None]:
    """While a send runs, leave what was on the heap before it (every imported module, the workspace) out of the
    cyclic garbage collector's full passes: at 200 requests those passes re-scan it several times and cost more
    than the requests' own work. Refcounting frees as before; only a reference cycle among those older objects
    waits for the send to end before it is collected."""
    import gc

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def merge(known: list[Outcome], logged: list[Outcome]) -> list[Outcome]:
    """After a stop, each channel's line from the log, except where the run itself knew more (a post that went
    out but could not be recorded)."""
    mine = {(o.channel, o.language): o for o in known if o.state in ("sent", "failed", "uncertain", "unrecorded")}
    return [mine.get((o.channel, o.language), o) for o in logged]


def settle_interrupted(store: Store, identifier: str, channels: dict[str, Channel], *, actor: str) -> None:
    """Deliveries an interrupted or killed run left mid-request, on a platform that cannot tell us whether they
    landed, become `uncertain`: a resend skips them unless told otherwise, so nobody is sent it twice."""

    for delivery in store.deliveries(identifier, ("sending",), recipients=False):
        channel = channels.get(delivery["channel"])
        if channel is not None and not channel.resend_is_safe:
            store.transition(delivery, "uncertain", "delivery_result", actor=actor,
                             description=f"{delivery['channel']}: outcome unknown after an interrupted run",
                             details={"outcome": "uncertain"})
    for name, channel in channels.items():  # a list's people: one update and one event for each channel
        if not channel.per_person or channel.resend_is_safe:
            continue
        ids = [row[0] for row in store.conn.execute(
            "SELECT id FROM deliveries WHERE alert = ? AND channel = ? AND recipient != '' AND state = 'sending'",
            [identifier, name])]
        if not ids:
            continue
        rows = len(ids)
        with store.transaction() as conn:
            conn.execute("UPDATE deliveries SET state = 'uncertain', updated_at = ? WHERE alert = ? AND channel = ? "
                         "AND recipient != '' AND state = 'sending'", [isoformat(utcnow()), identifier, name])
            store.append_event("delivery_result", phase="warn", actor=actor, alert=identifier, channel=name,
                               incident=store.incident_of(identifier),
                               description=f"{name}: {rows:,} outcome{'s' if rows != 1 else ''} unknown after an "
                               "interrupted run", details={"outcome": "uncertain", "state": "uncertain",
                                                            "deliveries": rows, "deliveries_settled": ids})


def outcomes_in_log(store: Store, identifier: str, channels: dict[str, Channel]) -> list[Outcome]:
    """Where each channel stands, from the log: what an interrupted run reports (one line per channel and language;
    a list channel's line holds its counts)."""
    from collections import Counter

    counts: dict[tuple[str, str], Counter[str]] = {}
    for name, language, state, number in store.conn.execute(
            "SELECT channel, language, state, count(*) FROM deliveries WHERE alert = ? GROUP BY channel, language, "
            "state ORDER BY min(id)", [identifier]):
        if name in channels:
            counts.setdefault((name, language), Counter())[state] = number
    outcomes = []
    for (name, language), count in counts.items():
        if count["sending"] and not channels[name].resend_is_safe:  # in flight when it stopped, on a platform
            count["uncertain"] += count.pop("sending")  # that cannot tell us: it may have gone out
        left = count["pending"] + count["failed"] + count["sending"]
        state = "stopped" if left else "uncertain" if count["uncertain"] else "sent"
        total = sum(count.values())
        note = None
        if total > 1:
            note = ", ".join(f"{count[s]:,} {s}" for s in ("sent", "pending", "failed", "uncertain", "skipped")
                             if count[s]) + f" of {total:,}"
        error = {"stopped": "not sent: stopped before it went", "uncertain": "may have gone out just as it stopped"}
        outcomes.append(Outcome(name, language, state, error=note or error.get(state)))
    return outcomes


async def _fan_out(store: Store, jobs: list[Job], *, actor: str, limits: Limits,
                   on_outcome: Callable[[Outcome], None] | None, stop: Stop | None = None) -> list[Outcome]:
    async with _client(limits) as client:
        return await fan_out(store, jobs, client=client, actor=actor, limits=limits, on_outcome=on_outcome,
                             stop=stop, sleep=stop.sleep if stop else asyncio.sleep)


def _client(limits: Limits) -> httpx.AsyncClient:
    from broadcast.send.client import http_client

    return http_client(limits.concurrency, timeout=limits.read_timeout, connect=limits.connect_timeout)


def publish_page(workspace: Workspace, store: Store) -> list[str]:
    """Rebuild and publish the fallback page; a failure is reported, never raised: channels still go out."""
    try:
        from broadcast.public.publish import publish_site
    except ImportError:
        return []
    try:
        result: Any = publish_site(workspace, store)
    except BroadcastError as exc:
        return [f"FAIL page: {exc.message}"] + ([f"      hint: {exc.hint}"] if exc.hint else [])
    except sqlite3.Error as exc:
        return [f"FAIL page: not published: the log could not be written ({exc})",
                "      hint: it is published again by the resend, or: broadcast page publish"]
    except Exception as exc:  # noqa: BLE001  whatever breaks the page must not stop the warning
        return [f"FAIL page: could not be built ({type(exc).__name__}: {exc})",
                "      hint: the channels still went out; run broadcast --debug page publish to see why"]
    lines = getattr(result, "lines", None)
    return list(lines()) if callable(lines) else [str(result)]
