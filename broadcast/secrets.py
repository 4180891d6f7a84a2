"""Secrets: resolved from the environment at the last moment, and masked in everything we print or store."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from broadcast.errors import ConfigError

if TYPE_CHECKING:
    from broadcast.workspace import ChannelConfig

MASK = "***"
_known: set[str] = set()


def resolve(channel: ChannelConfig, key: str) -> str:
    """The value of one of a channel's secrets; a missing one is an error that names the variable."""
    ref = channel.secrets.get(key)
    if ref is None:
        raise ConfigError(channel.path, f"secrets.{key}", "missing",
                          f'add {key} = "env:SOME_NAME" under [secrets] and set SOME_NAME in the environment')
    name = ref.removeprefix("env:")
    value = os.environ.get(name)
    if not value:
        raise ConfigError(channel.path, f"secrets.{key}", f"the environment variable {name} is not set",
                          f"export {name}=... (from your password manager) and run the command again")
    remember(value)
    return value


def remember(value: str) -> None:
    """Mask this value from now on (also its URL-encoded form, as it appears in request URLs)."""
    from urllib.parse import quote

    if len(value) >= 4 and value not in _known:  # a channel's secret is resolved again for every request
        _known.add(value)
        _known.add(quote(value, safe=""))


def mask(text: str) -> str:
    """Replace every known secret in `text` with ***."""
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    # Credentials in URLs we did not resolve ourselves (user:password@host).
    return re.sub(r"(?<=://)[^/\s:@]+:[^/\s@]+@", f"{MASK}@", text)
