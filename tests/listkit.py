"""Helpers for recipient-list tests: a workspace with lists/ and list channels pointed at the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import approved, make_workspace  # noqa: F401  approved: the lists' tests import it from here

from broadcast.sandbox.platforms import notify, twilio

ENV = {"TEST_NOTIFY_KEY": notify.API_KEY, "TEST_TWILIO_SID": twilio.ACCOUNT_SID,
       "TEST_TWILIO_TOKEN": twilio.AUTH_TOKEN}

RESIDENTS = """\
phone,email,name,groups,areas,language
07700 900001,ann@example.org,Ann,parents:hillside-primary,town,en
+44 7700 900002,,Bryn,parents:ysgol-bro-lliw,town,cy
07700900003,carys@example.org,Carys,staff:hillside-primary,valley,Cymraeg
,dai@example.org,Dai,parents:hillside-primary,valley,
not a number,,Eve,parents:hillside-primary,town,en
07700 900001,,Ann again,parents:hillside-primary,town,en
,not-an-address,Fred,parents:hillside-primary,town,en
01632 960001,gwen@example.org,Gwen,parents:hillside-primary,town,en
"""
CLEAR = ("07700 900001", "07700900001", "+447700900001", "447700900001", "7700900001", "+447700900002",
         "7700900002", "7700900003", "ann@example.org", "carys@example.org", "dai@example.org", "gwen@example.org")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's Notify and Twilio credentials, a fresh recipient key, and a duty officer at the keyboard."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BROADCAST_RECIPIENT_KEY", raising=False)
    monkeypatch.setenv("BROADCAST_OPERATOR", "duty-officer")


def notify_channel(url: str, *, rate: float = 0, email: bool = False, name: str = "sms-residents",
                   extra: str = "") -> tuple[str, str]:
    template = f'email_template_id = "{notify.EMAIL_TEMPLATE}"\n' if email else ""
    return name, (f'kind = "govuk-notify"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nlist = "residents"\n'
                  f'sms_template_id = "{notify.SMS_TEMPLATE}"\n{template}api = "{url}/notify"\nrate = {rate}\n'
                  f'price_per_segment = 0.0197\n{extra}[secrets]\napi_key = "env:TEST_NOTIFY_KEY"\n')


def twilio_channel(url: str, *, rate: float = 0, name: str = "sms-twilio", extra: str = "") -> tuple[str, str]:
    return name, (f'kind = "twilio"\n[settings]\nlist = "residents"\nmessaging_service_sid = '
                  f'"{twilio.MESSAGING_SERVICE_SID}"\napi = "{url}/twilio"\nrate = {rate}\n{extra}'
                  '[secrets]\naccount_sid = "env:TEST_TWILIO_SID"\nauth_token = "env:TEST_TWILIO_TOKEN"\n')


def list_workspace(root: Path, channels: list[tuple[str, str]], residents: str = RESIDENTS,
                   opt_out: str | None = None, fast: bool = True) -> Path:
    """The fixture workspace without Mastodon, with lists/residents.csv and the given list channels."""
    make_workspace(root)
    (root / "channels" / "mastodon-council.toml").unlink()
    (root / "lists").mkdir()
    (root / "lists" / "residents.csv").write_text(residents, encoding="utf-8")
    if opt_out is not None:
        (root / "lists" / "opt-out.csv").write_text(opt_out, encoding="utf-8")
    for name, text in channels:
        (root / "channels" / f"{name}.toml").write_text(text, encoding="utf-8")
    if fast:
        config = root / "broadcast.toml"
        config.write_text(config.read_text(encoding="utf-8") + "\n[fanout]\nfirst_backoff = 0.01\n"
                          "max_backoff = 0.02\n", encoding="utf-8")
    return root


def many(count: int) -> str:
    """A list of `count` people with valid UK mobile numbers (they only ever reach the sandbox)."""
    return "phone,groups,language\n" + "".join(f"07400 {100000 + n:06d},residents,{'cy' if n % 3 == 0 else 'en'}\n"
                                               for n in range(count))
