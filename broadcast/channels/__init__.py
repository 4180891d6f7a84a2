"""Channel adapters, one module per platform, found through a registry of lazy imports.

Third-party adapters register under the entry-point group `broadcast.channels` as `kind = "module:Class"`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broadcast.channels.base import Channel
    from broadcast.workspace import ChannelConfig, Workspace

KINDS = {
    "webhook": "broadcast.channels.webhook:Webhook",
    "mastodon": "broadcast.channels.mastodon:Mastodon",
    "bluesky": "broadcast.channels.bluesky:Bluesky",
    "telegram": "broadcast.channels.telegram:Telegram",
    "slack": "broadcast.channels.slack:Slack",
    "teams": "broadcast.channels.teams:Teams",
    "facebook": "broadcast.channels.facebook:Facebook",
    "x": "broadcast.channels.x:X",
    "twilio": "broadcast.channels.twilio:Twilio",
    "govuk-notify": "broadcast.channels.notify:Notify",
    "smtp": "broadcast.channels.smtp:Smtp",
}

def adapter_class(kind: str) -> type[Channel]:
    """Import the adapter for `kind`. A missing or broken module fails this kind only."""
    from broadcast.channels.base import ChannelError

    target = KINDS.get(kind) or _entry_points().get(kind)
    if target is None:
        raise ChannelError(f"no adapter for channel kind '{kind}' in this version", transient=False,
                           hint="the channel stays configured; this kind is not sent yet")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls: type[Channel] = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ChannelError(f"the {kind} adapter cannot be loaded: {exc}", transient=False,
                           hint="reinstall broadcast (pip install --force-reinstall broadcast); other channels "
                           "are not affected") from None
    return cls


def load(config: ChannelConfig, page_url: str) -> Channel:
    return adapter_class(config.kind)(config, page_url)


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="broadcast.channels")}


def select_channels(workspace: Workspace, only: tuple[str, ...]) -> list[ChannelConfig]:
    """All valid channels, or those named by --only; an unknown name is refused (a broken file's is not: the send
    reports it failed)."""
    from broadcast.errors import ConfigError

    channels = workspace.channels
    for name in only:
        if name not in channels and name not in workspace.broken_channels:
            from difflib import get_close_matches  # only for a mistake

            near = get_close_matches(name, channels, n=1)
            raise ConfigError(workspace.channels_dir, None, f"no channel named '{name}'",
                              f"did you mean '{near[0]}'?" if near else "see: broadcast channels list")
    return [c for name, c in channels.items() if not only or name in only]
