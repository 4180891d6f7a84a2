"""The sandbox's mail server: a real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import socket
import time
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

    from broadcast.sandbox.server import Sandbox


class MailSink:
    """An aiosmtpd handler that records each message as a post to the 'smtp' platform."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from broadcast.sandbox.server import Received

        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        body = {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "subject": str(message["subject"]),
                "text": text.get_content() if text else "", "parts": [p.get_content_type() for p in message.walk()]}
        headers = {k.lower(): str(v) for k, v in message.items()}
        record = Received("smtp", "smtp", "DATA", "/", time.monotonic(), headers, body, 250, True)
        with self.sandbox._lock:
            self.sandbox.log.append(record)
        return "250 Message accepted for delivery"


def start_mail(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> tuple[Controller, int]:
    """Start the mail server; port 0 picks a free one. Stop it with controller.stop()."""
    from aiosmtpd.controller import Controller

    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    controller = Controller(MailSink(sandbox), hostname=host, port=port)
    controller.start()
    return controller, port
