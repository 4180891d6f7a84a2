"""Messages to the council's own staff (the watch's reminders): the duty team's Slack or Teams channels, and a text
to the duty officer's phone. Not public alerts: no CAP file, no page, no delivery rows; each is logged by its caller.

Who is told is the [watch] section of broadcast.toml:

    [watch]
    staff = ["slack-duty", "teams-lrf"]     # Slack and Teams channels
    duty_phone = "env:BROADCAST_DUTY_PHONE" # the number, only ever from the environment
    sms_channel = "sms-residents"           # the govuk-notify or twilio channel that texts it (never its list)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from broadcast.channels.base import ChannelError, Post, Receipt
from broadcast.errors import BroadcastError, ConfigError

if TYPE_CHECKING:
    import httpx

    from broadcast.channels.base import Channel
    from broadcast.channels.lists import ListChannel
    from broadcast.send.fanout import Limits
    from broadcast.store import Store
    from broadcast.workspace import ChannelConfig, Workspace

STAFF_KINDS = ("slack", "teams")
SMS_KINDS = ("govuk-notify", "twilio")
KEYS = {"staff", "duty_phone", "sms_channel"}
LANGUAGE = "en-GB"  # staff messages are internal, in one language


@dataclass(frozen=True)
class Staff:
    """Who is told: the [watch] section of broadcast.toml."""

    channels: tuple[str, ...]
    duty_phone: str | None = None  # a secret reference (env:NAME), never the number
    sms_channel: str | None = None
    configured: bool = True  # False: no `staff` key, so every enabled Slack and Teams channel

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> Staff:
        from broadcast.workspace import SECRET_REF_RE, check_keys, expect

        path = workspace.config_path
        section = expect(path, "watch", workspace.config.get("watch", {}), dict, "a [watch] table")
        check_keys(path, section, KEYS, "watch.")
        if "staff" in section:
            names = expect(path, "watch.staff", section["staff"], list, 'a list of channels, e.g. ["slack-duty"]')
            for name in names:
                _channel(workspace, "watch.staff", expect(path, "watch.staff", name, str, "a channel name"),
                         STAFF_KINDS, "Slack and Teams channels; to text the duty officer, set duty_phone")
        else:
            names = [n for n, c in workspace.channels.items() if c.kind in STAFF_KINDS and c.enabled]
        phone, sms = section.get("duty_phone"), section.get("sms_channel")
        if phone is not None and not (isinstance(phone, str) and SECRET_REF_RE.match(phone)):
            # Never echo the value: it may be the number itself.
            raise ConfigError(path, "watch.duty_phone", "must be a reference such as env:NAME, not a number",
                              "put the number in an environment variable and write env:THAT_NAME here")
        if (phone is None) != (sms is None):
            raise ConfigError(path, "watch.sms_channel" if phone else "watch.duty_phone", "missing",
                              "duty_phone and sms_channel go together: the number, and the SMS channel that texts "
                              "it (only that number, never the channel's list)")
        if sms is not None:
            _channel(workspace, "watch.sms_channel", expect(path, "watch.sms_channel", sms, str, "a channel name"),
                     SMS_KINDS, "a govuk-notify or twilio channel")
        return cls(tuple(names), phone, sms, "staff" in section)

    def number(self) -> str | None:
        """The duty phone in E.164, from the environment; refused now rather than at the first reminder."""
        if self.duty_phone is None:
            return None
        import os

        from broadcast.prepare.recipients import normalise_phone
        from broadcast.secrets import remember

        name = self.duty_phone.removeprefix("env:")
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigError("broadcast.toml", "watch.duty_phone", f"the environment variable {name} is not set",
                              f"export {name}=07... (the duty officer's mobile), or remove duty_phone from [watch]")
        try:
            number = normalise_phone(value)
        except ValueError as exc:
            raise ConfigError("broadcast.toml", "watch.duty_phone", f"{name}: {exc}",
                              f"set {name} to a UK mobile number, or +CC... for another country") from None
        remember(number)
        return number


def _channel(workspace: Workspace, key: str, name: str, kinds: tuple[str, ...], what: str) -> None:
    config = workspace.channels.get(name)
    if config is None and name not in workspace.broken_channels:
        from difflib import get_close_matches  # only for a mistake

        near = get_close_matches(name, workspace.channels, n=1)
        raise ConfigError(workspace.config_path, key, f"no channel named '{name}' in channels/",
                          f"did you mean '{near[0]}'?" if near else "see: broadcast channels list")
    if config is not None and config.kind not in kinds:
        raise ConfigError(workspace.config_path, key, f"{name} is a {config.kind} channel", f"{key} takes {what}")


@dataclass(frozen=True)
class Target:
    name: str
    config: ChannelConfig | None
    why: str | None = None  # not told: off, or a broken file
    phone: str | None = None


@dataclass
class Ping:
    """One staff message to one channel, and what became of it."""

    at: datetime
    channel: str
    outcome: str  # sent, failed, uncertain (it may have arrived), skipped (the channel is off)
    attempts: int = 0
    error: str | None = None
    to: str | None = None  # the duty phone, masked
    retry: bool = False  # failed in a way a later try may mend


def targets(workspace: Workspace, store: Store, staff: Staff, number: str | None) -> list[Target]:
    """Every channel to tell, each with why it will not be told (switched off, off in its file, a broken file)."""
    from broadcast.send.sending import switched_off

    killed = switched_off(store)
    names = [*staff.channels, *([staff.sms_channel] if number and staff.sms_channel else [])]
    found = []
    for name in names:
        config = workspace.channels.get(name)
        broken = workspace.broken_channels.get(name)
        why = (f"broken file: {broken.error.message}" if broken else "off in its file (enabled = false)"
               if config is not None and not config.enabled else killed.get(name))
        found.append(Target(name, config, why, number if name == staff.sms_channel else None))
    return found


async def tell(workspace: Workspace, to: list[Target], headline: str, text: str, key: str, limits: Limits,
               now: Callable[[], datetime]) -> list[Ping]:
    """Send `text` to every target at once, each through its channel's own send path and the retry rule of every
    send; `key` makes a text to the duty phone the same message again if it is retried."""
    from broadcast.send.client import http_client

    async with http_client(len(to), timeout=limits.read_timeout, connect=limits.connect_timeout) as client:
        return list(await asyncio.gather(*(
            _tell_one(workspace, target, headline, text, key, limits, now, client) for target in to)))


async def _tell_one(workspace: Workspace, target: Target, headline: str, text: str, key: str, limits: Limits,
                    now: Callable[[], datetime], client: httpx.AsyncClient) -> Ping:
    from broadcast.channels import load
    from broadcast.prepare.recipients import mask_phone
    from broadcast.send.retry import Retry

    ping = Ping(now(), target.name, "skipped", error=target.why,
                to=mask_phone(target.phone) if target.phone else None)
    if target.why or target.config is None:
        return ping
    error: ChannelError | None = None
    try:
        channel = load(target.config, workspace.organisation.web)
        if target.phone:
            call = _text_call(cast("ListChannel", channel), target.phone, text, key, limits)
        else:
            call = _post_call(channel, staff_post(channel.kind, target.name, headline, text, channel.limit,
                                                  workspace.organisation.web), client)
        retry = Retry(limits, idempotent=channel.idempotent)
        try:
            async with asyncio.timeout(limits.channel_deadline):
                await retry.run(call)
        except ChannelError as exc:
            error = exc
        except TimeoutError:
            error = ChannelError(f"{target.name}: no answer before the deadline", transient=True,
                                 unknown_outcome=True)
        ping.attempts = retry.attempts
    except BroadcastError as exc:  # the adapter could not be made, or a secret is not set
        error = ChannelError(exc.message, transient=False, hint=exc.hint)
    ping.at = now()
    if error is None:
        ping.outcome, ping.error = "sent", None
        return ping
    ping.outcome = "uncertain" if error.unknown_outcome else "failed"
    ping.retry = error.transient and not error.unknown_outcome
    ping.error = _scrub(error.message + (f" (hint: {error.hint})" if error.hint and not ping.retry else ""),
                        target.phone)
    return ping


def _post_call(channel: Channel, post: Post, client: httpx.AsyncClient) -> Callable[[], Awaitable[Receipt]]:
    from broadcast.send.retry import guarded

    return lambda: guarded(channel.name, channel.send(post, client, ""))


def _text_call(channel: ListChannel, number: str, text: str, key: str,
               limits: Limits) -> Callable[[], Awaitable[Receipt]]:
    """One text to the duty phone through the list channel's own delivery, never to its list."""
    from broadcast.channels.sms import count_segments
    from broadcast.prepare.recipients import Recipient, mask_phone
    from broadcast.send.fanout import delivery_key
    from broadcast.send.retry import guarded

    person = Recipient("sms", number, "duty-phone", mask_phone(number), LANGUAGE, 0)
    post = Post(channel.name, LANGUAGE, text, count_segments(text), channel.max_segments, "SMS segments", False, {})

    async def call() -> Receipt:
        from broadcast.send.client import list_client

        async with list_client(1, connect=limits.connect_timeout, read=limits.read_timeout) as client:
            await channel.open(client)
            try:
                return await guarded(channel.name, channel.deliver(post, person, client,
                                                                   delivery_key(f"watch:{key}", channel.name,
                                                                                LANGUAGE)))
            finally:
                await channel.close()

    return call


def staff_post(kind: str, channel: str, headline: str, text: str, limit: int, link: str) -> Post:
    """A plain staff message in the shape the channel's adapter sends (Slack blocks, a Teams card)."""
    extra: dict[str, Any] = {"headline": headline, "link": link}
    if kind == "teams":
        from broadcast.channels.teams import card

        extra = {"payload": card(headline, text, "", link, LANGUAGE)}
    return Post(channel, LANGUAGE, text, len(text), limit, "characters", False, extra)


def _scrub(text: str, phone: str | None) -> str:
    from broadcast.secrets import mask

    if phone:
        from broadcast.prepare.recipients import Recipient, mask_phone, scrub

        text = scrub(text, Recipient("sms", phone, "", mask_phone(phone), LANGUAGE, 0))
    return mask(text)
