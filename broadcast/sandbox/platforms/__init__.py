"""One module per emulated platform; each has `register(sandbox, app)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from broadcast.sandbox.platforms import (
    bluesky,
    facebook,
    mastodon,
    notify,
    slack,
    teams,
    telegram,
    twilio,
    webhook,
    x,
)

if TYPE_CHECKING:
    from aiohttp import web

    from broadcast.sandbox.server import Sandbox

REGISTER: list[Callable[[Sandbox, web.Application], None]] = [
    mastodon.register,
    webhook.register,
    slack.register,
    teams.register,
    facebook.register,
    bluesky.register,
    telegram.register,
    x.register,
    notify.register,
    twilio.register,
]
