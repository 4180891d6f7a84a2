"""Who a send to recipient lists reaches: each list channel's people by --to tag and language, and the cost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from broadcast.channels.lists import ListChannel
from broadcast.errors import PolicyError
from broadcast.prepare.recipients import ListReport, RecipientKey, read_opt_outs, select

if TYPE_CHECKING:
    from broadcast.alert import Alert
    from broadcast.channels.base import Channel
    from broadcast.store import Store
    from broadcast.workspace import ChannelConfig, Workspace


# -- the plan: who a send reaches, in which language, at what cost ------------------------------------
@dataclass(frozen=True)
class AudienceLine:
    channel: str
    kind: str
    language: str
    medium: str
    recipients: int
    units: int  # segments per text (1 for an email)
    price: float | None
    currency: str

    def describe(self) -> str:
        from broadcast.channels.sms import cost_line

        if self.medium == "email":
            return f"{self.recipients:,} recipient{'s' if self.recipients != 1 else ''} by email"
        return cost_line(self.recipients, self.units, self.price, self.currency)


@dataclass
class Audience:
    """The recipients a warning reaches on each list channel, counted before anything is sent."""

    to: tuple[str, ...]
    max_segments: int | None
    lines: list[AudienceLine] = field(default_factory=list)
    reports: dict[str, ListReport] = field(default_factory=dict)

    @property
    def recipients(self) -> int:
        return sum(line.recipients for line in self.lines)

    @property
    def segments(self) -> int:
        return sum(line.recipients * line.units for line in self.lines if line.medium == "sms")

    def cost(self) -> float | None:
        prices = [line.recipients * line.units * line.price for line in self.lines if line.price is not None]
        return sum(prices) if prices else None


def target(workspace: Workspace, alert: Alert, usable: list[tuple[ChannelConfig, Channel]], *,
           to: tuple[str, ...] = (), one_segment: bool = False) -> Audience | None:
    """Count each list channel's recipients (streaming its list) and refuse a --to tag nobody has."""
    lists = [channel for _, channel in usable if isinstance(channel, ListChannel)]
    if not lists:
        if to:
            raise PolicyError("--to picks people on recipient lists, but no list channel is in this send",
                              hint="add a govuk-notify, twilio or smtp channel with a list (channels/README.md)")
        return None
    audience = Audience(tuple(to), 1 if one_segment else None)
    key = RecipientKey.for_workspace(workspace.root)
    opt_outs, _ = read_opt_outs(workspace.root, key)
    for channel in lists:
        if one_segment:
            channel.with_max_segments(1)
        report = ListReport(channel.list_file(workspace.root))
        counts: Counter[tuple[str, str]] = Counter()
        language = default_language(workspace, channel)
        for recipient in select(report.path, report, key=key, media=channel.media, to=audience.to,
                                languages=channel.config.languages, default_language=language, opt_outs=opt_outs):
            counts[recipient.language, recipient.medium] += 1
        audience.reports[channel.name] = report
        for language in channel.config.languages:
            post = channel.prepare(alert, language)
            for medium in channel.media:
                audience.lines.append(AudienceLine(channel.name, channel.kind, language, medium,
                                                   counts[language, medium], channel.units(post, medium),
                                                   channel.price if medium == "sms" else None, channel.currency))
    if to:
        _check_tags(workspace, audience)
    return audience


def _check_tags(workspace: Workspace, audience: Audience) -> None:
    import difflib

    matched = set().union(*(r.matched for r in audience.reports.values()))
    for tag in audience.to:
        if tag.lower() not in matched:
            seen = sorted(set().union(*(r.tags for r in audience.reports.values())))
            near = difflib.get_close_matches(tag.lower(), seen, n=1)
            lists = ", ".join(sorted({f"lists/{r.path.name}" for r in audience.reports.values()}))
            raise PolicyError(f"--to {tag}: no one on {lists} has this group or area tag",
                              hint=f"did you mean '{near[0]}'?" if near else "see the groups and areas columns")


def default_language(workspace: Workspace, channel: Channel) -> str:
    """The workspace's first language if the channel has it, else the channel's first."""
    languages = channel.config.languages or tuple(workspace.languages[:1])
    return workspace.languages[0] if workspace.languages[0] in languages else languages[0]


def record(store: Store, alert: str, audience: Audience | None, channels: list[Channel], *, actor: str,
           workspace: Workspace) -> None:
    """Log who each list channel is to reach (list, --to, segments), so a resend after a kill can finish it."""
    if audience is None:
        return
    fingerprint = RecipientKey.for_workspace(workspace.root).fingerprint()
    for channel in channels:
        if isinstance(channel, ListChannel) and channel.name in audience.reports:
            report = audience.reports[channel.name]
            store.append_event("recipients_selected", phase="warn", actor=actor, alert=alert, channel=channel.name,
                               incident=store.incident_of(alert),
                               description=f"{channel.name}: lists/{channel.list_name}.csv, {report.summary()}",
                               details={"list": channel.list_name, "to": list(audience.to),
                                        "max_segments": channel.max_segments, "key": fingerprint,
                                        "planned": report.selected})
