"""What a warning would send, everywhere, without sending it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from broadcast.alert import Alert, build_alert
from broadcast.approvals import ApprovalState, approval_state, read_approvals
from broadcast.channels import VARIANT_BY_KIND
from broadcast.templates import Rendering, render

if TYPE_CHECKING:
    from broadcast.workspace import ChannelConfig, Workspace


@dataclass(frozen=True)
class ChannelPlan:
    channel: ChannelConfig
    language: str
    variant: str
    text: str


@dataclass(frozen=True)
class WarningPreview:
    rendering: Rendering
    alert: Alert
    approval: ApprovalState
    plans: list[ChannelPlan]
    skipped: list[tuple[ChannelConfig, str]]


def preview_warning(
    workspace: Workspace,
    template_name: str,
    values: dict[str, str],
    *,
    only: tuple[str, ...] = (),
    now: datetime | None = None,
) -> WarningPreview:
    """Render a template into an Alert and show the text each channel would post."""
    template = workspace.template(template_name)
    rendering = render(template, workspace, values)
    alert = build_alert(workspace, rendering, identifier="PREVIEW", sent=now or datetime.now(UTC))
    state = approval_state(template, read_approvals(workspace))
    plans, skipped = [], []
    for channel in select_channels(workspace, only):
        if not channel.enabled:
            skipped.append((channel, "disabled in its file (enabled = false)"))
            continue
        variant = VARIANT_BY_KIND[channel.kind]
        for language in channel.languages:
            text = rendering.texts[language][variant].full()
            plans.append(ChannelPlan(channel, language, variant, text))
    return WarningPreview(rendering, alert, state, plans, skipped)


def select_channels(workspace: Workspace, only: tuple[str, ...]) -> list[ChannelConfig]:
    """All channels, or those named by --only; an unknown name is refused."""
    import difflib

    from broadcast.errors import ConfigError

    channels = workspace.channels
    for name in only:
        if name not in channels:
            near = difflib.get_close_matches(name, channels, n=1)
            raise ConfigError(workspace.channels_dir, None, f"no channel named '{name}'",
                              f"did you mean '{near[0]}'?" if near else "see: broadcast channels list")
    return [c for name, c in channels.items() if not only or name in only]
