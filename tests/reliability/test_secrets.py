"""Distinctive secrets for every channel kind, the page's S3 target and the recipient key, through warn, resend,
cancel, the review exports and the page: not one of them, in any encoding, in any byte the commands wrote."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from urllib.parse import quote, quote_plus

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import only_identifier
from faultkit import command, environment, full_workspace, no_traceback

from broadcast.sandbox.platforms import notify, twilio
from broadcast.sandbox.server import CREDENTIALS

WEBHOOK_KEY = b"webhook-signing-key-9d2f41c7be03"
NOTIFY_SECRET = str(uuid.UUID("5ec2e75e-0000-4000-8000-9f3c1d2b7a64"))
SANDBOX = {  # what the sandbox will accept, set to values nobody else uses
    "mastodon": "mastodon-tok-7Hq2XvP9sLmW4rTz",
    "bluesky": "blsk-pw-3kd9-xq7v-m2pa",
    "telegram": "7400123456:AAH-telegram-tok-q8Zr2Lm5Vx9Ka3Wd7Yc1",
    "facebook": "EAAfacebook-page-tok-R4nD0mZ8q2Lk",
    "slack": "slackhooksecretW9xV3qL7",
    "teams": "teams-sig-Jp4Kq8Rz2Xw6",
    "x_consumer_key": "xconsumerkeyL2m9Q4r7T1v8",
    "x_consumer_secret": "x-consumer-secret-Zt5Yh8Nq3Wm6Pk1Rd4",
    "x_access_token": "1700000000000000099-xaccesstokenHj6Fs9Lq2",
    "x_access_secret": "x-access-secret-Bv7Nc2Xm5Qz8Lw3Kp6",
    "webhook": "whsec_" + base64.b64encode(WEBHOOK_KEY).decode(),
}
TWILIO = ("AC" + "7e1d9c3b5a" * 3 + "7e", "twilio-auth-tok-Gq3Wz8Lm5Rx1")
SMTP = ("relay-user-Tn6Yq2", "relay-pass-Vw9Kd4Lz7Hs1")
S3_SECRET = "s3-secret-key-Mf8Qx2Zr5Lp9Wn3Bv6Tc1"
RECIPIENT_KEY = "recipient-hmac-key-" + "Qz7Xw3Lm9Kp2Vr6Tn1Yd5Hs8Jf4Bc0Ga"


def forms(secret: str) -> set[bytes]:
    """A secret as it could be written: as is, URL-encoded, JSON-escaped, and base64 at any alignment."""
    raw = secret.encode("utf-8")
    found = {raw, quote(secret, safe="").encode(), quote_plus(secret).encode(), quote(secret).encode(),
             json.dumps(secret)[1:-1].encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for pad in range(3):
            encoded = encode(b"\0" * pad + raw)
            found.add(encoded[4 if pad else 0: -4].rstrip(b"="))  # the part that depends on the secret alone
    return {form for form in found if len(form) >= 8}


def every_form() -> dict[bytes, str]:
    secrets = {**{f"sandbox {k}": v for k, v in SANDBOX.items() if k != "x_consumer_key"},
               "webhook key": WEBHOOK_KEY.decode(), "webhook key (base64)": SANDBOX["webhook"][len("whsec_"):],
               "notify secret": NOTIFY_SECRET, "twilio token": TWILIO[1], "smtp password": SMTP[1],
               "s3 secret": S3_SECRET, "recipient key": RECIPIENT_KEY}
    table = {form: name for name, value in secrets.items() for form in forms(value)}
    for name, user, password in (("twilio basic auth", *TWILIO), ("smtp login", *SMTP)):
        for pair in (f"{user}:{password}", f"\0{user}\0{password}"):
            table[base64.b64encode(pair.encode())] = name
    table[WEBHOOK_KEY.hex().encode()] = "webhook key (hex)"
    return table


class Relay:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture
def relay():
    import socket

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (SMTP[0].encode(), SMTP[1].encode()))

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def s3_bucket(tmp_path, monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-2", aws_access_key_id="AKIATESTSECRETS",
                          aws_secret_access_key=S3_SECRET)
    client.create_bucket(Bucket="alerts", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    yield client, endpoint
    server.stop()


@pytest.mark.real_clock  # broadcast runs in subprocesses, against this process's sandbox
def test_no_secret_in_any_byte_written(tmp_path, sandbox, monkeypatch, relay, s3_bucket):
    for key, value in SANDBOX.items():
        monkeypatch.setitem(CREDENTIALS, key, value)
    monkeypatch.setattr(notify, "SECRET", NOTIFY_SECRET)
    monkeypatch.setattr(twilio, "ACCOUNT_SID", TWILIO[0])
    monkeypatch.setattr(twilio, "AUTH_TOKEN", TWILIO[1])
    handler, smtp_port = relay
    client, endpoint = s3_bucket
    root = full_workspace(tmp_path / "ws", sandbox.url, channels=9, recipients=4, twilio=True)
    # The fixture's list is phone numbers only; the email channel has a list of its own.
    (root / "lists" / "people.csv").write_text("email,name\nann@example.org,Ann\nbryn@example.org,Bryn\n", "utf-8")
    (root / "channels" / "email-residents.toml").write_text(
        f'kind = "smtp"\n[settings]\nlist = "people"\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        'from = "alerts@testshire.example"\n[secrets]\nusername = "env:TEST_SMTP_USER"\n'
        'password = "env:TEST_SMTP_PASSWORD"\n', encoding="utf-8")
    config = root / "broadcast.toml"
    config.write_text(config.read_text(encoding="utf-8") + (
        '\n[page]\n[[page.targets]]\nname = "site"\nkind = "directory"\npath = "site"\n'
        f'[[page.targets]]\nname = "bucket"\nkind = "s3"\nbucket = "alerts"\nprefix = ""\nendpoint_url = "{endpoint}"\n'
        'region = "eu-west-2"\naccess_key_id = "env:TEST_S3_KEY"\nsecret_access_key = "env:TEST_S3_SECRET"\n'),
        encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = environment(sandbox.url, TMPDIR=str(scratch), HOME=str(tmp_path / "home"),
                      BROADCAST_RECIPIENT_KEY=RECIPIENT_KEY, TEST_SMTP_USER=SMTP[0], TEST_SMTP_PASSWORD=SMTP[1],
                      TEST_S3_KEY="AKIATESTSECRETS", TEST_S3_SECRET=S3_SECRET,
                      TEST_NOTIFY_KEY=f"secrets_test-{notify.SERVICE_ID}-{NOTIFY_SECRET}",
                      TEST_TWILIO_SID=TWILIO[0], TEST_TWILIO_TOKEN=TWILIO[1], AWS_EC2_METADATA_DISABLED="true",
                      AWS_CONFIG_FILE=str(tmp_path / "no-aws"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws"),
                      TEST_TELEGRAM_TOKEN=SANDBOX["telegram"], TEST_MASTODON_TOKEN=SANDBOX["mastodon"],
                      TEST_BLUESKY_PASSWORD=SANDBOX["bluesky"], TEST_FACEBOOK_TOKEN=SANDBOX["facebook"],
                      TEST_X_CONSUMER_KEY=SANDBOX["x_consumer_key"],
                      TEST_X_CONSUMER_SECRET=SANDBOX["x_consumer_secret"],
                      TEST_X_ACCESS_TOKEN=SANDBOX["x_access_token"], TEST_X_ACCESS_SECRET=SANDBOX["x_access_secret"],
                      TEST_WEBHOOK_SECRET=SANDBOX["webhook"],
                      TEST_SLACK_URL=f"{sandbox.url}/slack/services/T0001/B0001/{SANDBOX['slack']}",
                      TEST_TEAMS_URL=f"{sandbox.url}/teams/workflows/sandbox/triggers/manual/paths/invoke"
                                     f"?sig={SANDBOX['teams']}")
    written: list[tuple[str, bytes]] = []

    def run(*args: str, codes: tuple[int, ...] = (0,)) -> str:
        done = subprocess.run(command(root, *args), env=env, capture_output=True, timeout=60, check=False)
        out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        written.extend([(f"stdout of {' '.join(args[:2])}", done.stdout), (f"stderr of {' '.join(args[:2])}",
                                                                          done.stderr)])
        no_traceback(subprocess.CompletedProcess(args, done.returncode, out, ""))
        assert done.returncode in codes, out
        return out

    run("channels", "check")
    # Errors are where secrets leak: a 500 whose message carries the Telegram URL (the token is in its path),
    # a Mastodon 401 and a Notify 403, each failing its channel so resend has work to do.
    sandbox.fault("telegram", fail_next=9, status=500)
    sandbox.fault("mastodon", fail_next=9, status=401)
    sandbox.fault("notify", fail_next=1, status=403)
    out = run("warn", "school-closure", *[f"--set={k}={v}" for k, v in {
        "school": "Hillside Primary School", "date": "2026-11-23", "reason": "snow", "next_update": "10:00",
        "area": "town"}.items()], "--yes", codes=(1,))
    assert "FAIL  telegram-alerts" in out and "FAIL  mastodon-council" in out
    sandbox.clear()
    identifier = only_identifier(root / "broadcast.db")
    run("resend", identifier, "--yes")
    run("cancel", identifier, "--reason", "sent for the wrong school", "--yes")
    run("page", "build")
    run("page", "publish")
    incident = json.loads(run("review", "list", "--json"))["incidents"][0]["slug"]
    exports = root / "exports"
    exports.mkdir()
    for fmt in ("csv", "jsonl", "md", "html"):
        run("review", "export", incident, "--format", fmt, "-o", str(exports / f"timeline.{fmt}"))
    run("review", "metrics", incident, "--json")
    run("review", "aar", incident, "-o", str(exports / "aar.md"))
    run("review", "verify", incident)
    run("status")
    assert len(handler.messages) == 4  # the emails went out: two people, warning and cancellation

    written += [(str(p.relative_to(tmp_path)), p.read_bytes()) for folder in (root, scratch) for p in folder.rglob("*")
                if p.is_file()]
    written += [(f"s3://alerts/{o['Key']}", client.get_object(Bucket="alerts", Key=o["Key"])["Body"].read())
                for o in client.list_objects_v2(Bucket="alerts").get("Contents", [])]
    written += [(f"email {n}", message) for n, message in enumerate(handler.messages)]
    assert any(name.endswith("broadcast.db") for name, _ in written) and any("exports" in n for n, _ in written)
    assert any(name.startswith("s3://alerts/cap/") for name, _ in written)
    leaks = [(where, secret) for form, secret in every_form().items() for where, data in written if form in data]
    assert leaks == []
