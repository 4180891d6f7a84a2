"""Check channel accounts without posting: credentials, and what each would post as."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broadcast.channels.base import ChannelError
from broadcast.errors import BroadcastError

if TYPE_CHECKING:
    from broadcast.workspace import Workspace


@dataclass(frozen=True)
class CheckResult:
    channel: str
    ok: bool
    detail: str
    hint: str | None = None


def check_channels(workspace: Workspace, names: tuple[str, ...] = ()) -> list[CheckResult]:
    """Check each channel's credentials concurrently; one failure never hides another's result."""
    from broadcast.channels import load, select_channels

    results = [CheckResult(name, False, broken.error.message, broken.error.hint)
               for name, broken in workspace.broken_channels.items() if not names or name in names]
    adapters = []
    for config in select_channels(workspace, names):
        if config.kind == "page":
            continue
        try:
            adapters.append(load(config, workspace.organisation.web))
        except BroadcastError as exc:
            results.append(CheckResult(config.name, False, exc.message, exc.hint))

    async def run() -> list[CheckResult]:
        import httpx

        async with httpx.AsyncClient(timeout=10) as client:
            async def one(adapter: object) -> CheckResult:
                from broadcast.channels.base import Channel

                assert isinstance(adapter, Channel)
                try:
                    return CheckResult(adapter.name, True, await adapter.check(client))
                except BroadcastError as exc:
                    return CheckResult(adapter.name, False, exc.message, exc.hint)
                except httpx.HTTPError as exc:
                    error = ChannelError(f"{adapter.name}: cannot reach the platform ({type(exc).__name__})",
                                         transient=True)
                    return CheckResult(adapter.name, False, error.message, "check the address and the network")
                except (httpx.InvalidURL, OverflowError, ExceptionGroup) as exc:  # a malformed address or port
                    cause = exc.exceptions[0] if isinstance(exc, ExceptionGroup) else exc  # anyio's, for a port
                    error = ChannelError(f"{adapter.name}: its address is not a valid URL ({cause})", transient=False)
                    return CheckResult(adapter.name, False, error.message,
                                       f"fix the address in channels/{adapter.name}.toml, or the environment "
                                       "variable it names")

            return list(await asyncio.gather(*(one(a) for a in adapters)))

    return results + asyncio.run(run())
