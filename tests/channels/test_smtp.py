"""SMTP end to end: a real SMTP server (aiosmtpd) on 127.0.0.1, with STARTTLS or implicit TLS and a test CA."""

import email
import email.policy
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import VALUES
from listkit import approved, list_workspace

from broadcast.channels.checks import check_channels
from broadcast.send.sending import plan_warning, send_warning
from broadcast.store import Store
from broadcast.workspace import Workspace

USER, PASSWORD = "alerts", "relay-password-123"


class Relay:
    """Keeps what it is sent; answers RCPT with the codes queued in `refuse` first."""

    def __init__(self):
        self.messages = []
        self.refuse = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.refuse:
            return self.refuse.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode())


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["starttls", "tls"])
def relay(request, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler, port = Relay(), free_port()
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls: with implicit TLS the whole session is TLS.
    options = {"ssl_context": context, "auth_require_tls": False} if request.param == "tls" else {
        "tls_context": context, "require_starttls": True, "auth_require_tls": True}
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticate, **options)
    controller.start()
    yield handler, port, request.param, ca_file
    controller.stop()


@pytest.fixture
def workspace(tmp_path, relay, monkeypatch):
    _, port, security, ca_file = relay
    monkeypatch.setenv("TEST_SMTP_USER", USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    channel = (f'kind = "smtp"\nlanguages = ["en-GB", "cy-GB"]\n[settings]\nlist = "residents"\nhost = "127.0.0.1"\n'
               f'port = {port}\nsecurity = "{security}"\nfrom = "alerts@testshire.example"\n'
               f'from_name = "Testshire Council"\nca_file = "{ca_file}"\n'
               '[secrets]\nusername = "env:TEST_SMTP_USER"\npassword = "env:TEST_SMTP_PASSWORD"\n')
    root = list_workspace(tmp_path / "ws", [("email-residents", channel)])
    approved(root)
    return Workspace(root)


def send(workspace, values=VALUES):
    store = Store.open(workspace.db_path)
    plan = plan_warning(workspace, "school-closure", values, store=store)
    return send_warning(workspace, store, plan, actor="test"), store


def test_email_arrives_with_both_parts_and_the_right_headers(workspace, relay):
    handler = relay[0]
    [check] = check_channels(workspace, ("email-residents",))
    assert check.ok and f"({relay[2]}) as alerts, from alerts@testshire.example" in check.detail
    report, store = send(workspace, {**VALUES, "school": "St Mary & St John's <Infants>"})
    assert {o.state for o in report.outcomes} == {"sent"}
    assert sorted(to for _, [to], _ in handler.messages) == ["ann@example.org", "carys@example.org",
                                                             "dai@example.org", "gwen@example.org"]
    rows = {row["recipient_masked"]: row for row in store.deliveries("A-2026-0001", recipients=True)}
    sender, [to], content = next(m for m in handler.messages if m[1] == ["carys@example.org"])
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert sender == "alerts@testshire.example"
    assert message["From"] == "Testshire Council <alerts@testshire.example>" and message["To"] == "carys@example.org"
    # Folded after "Subject:" (RFC 5322); the parser keeps the fold's space. Carys asked for Cymraeg.
    assert message["Subject"].strip() == "Mae St Mary & St John's <Infants> ar gau ar Dydd Llun 23 Tachwedd 2026"
    assert message["Message-ID"] == f"<{rows['c***@example.org']['idempotency_key']}@testshire.example>"
    assert message["Content-Language"] == "cy-GB" and message["Auto-Submitted"] == "auto-generated"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    markup = message.get_body(("html",)).get_content()
    assert "St Mary & St John's <Infants>" in plain and "Cadwch blant gartref." in plain
    assert "St Mary &amp; St John&#x27;s &lt;Infants&gt;" in markup and "<Infants>" not in markup
    assert '<html lang="cy-GB">' in markup


def test_4xx_is_retried_and_5xx_is_not(workspace, relay):
    handler = relay[0]
    handler.refuse = ["451 4.3.0 Try again later", "550 5.1.1 No such user here"]
    report, store = send(workspace)
    failed = [o for o in report.outcomes if o.state != "sent"]
    assert len(failed) == 1 and "550 5.1.1 No such user here" in failed[0].error
    assert "a retry will not help" in failed[0].hint
    assert len(handler.messages) == 3  # one of four refused for good, one after a retry
    results = {row["recipient_masked"]: (row["state"], row["attempts"])
               for row in store.deliveries("A-2026-0001", recipients=True)}
    assert sorted(results.values()) == [("failed", 1), ("sent", 1), ("sent", 1), ("sent", 2)]
    assert "@example.org" not in failed[0].error.replace("***@example.org", "")
