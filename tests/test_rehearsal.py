"""A planner rehearses with their own workspace: `broadcast sandbox --rehearse DIR` as a process, the documented
commands in another shell, and a warning that reaches every channel, email included."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BROADCAST = [sys.executable, "-m", "broadcast"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as probe:  # the next one too: the mail server takes port + 1
        try:
            probe.bind(("127.0.0.1", port + 1))
        except OSError:
            return free_port()
    return port


def exports(path: Path) -> dict[str, str]:
    """What `. ./sandbox.env` would set in a shell."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


@pytest.mark.real_clock  # the sandbox and broadcast run in their own processes
def test_rehearse_an_init_workspace_against_a_running_sandbox(tmp_path):
    workspace, copy = tmp_path / "council", tmp_path / "rehearsal"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    assert subprocess.run([*BROADCAST, "init", str(workspace)], env=env, capture_output=True).returncode == 0
    port = free_port()
    server = subprocess.Popen([*BROADCAST, "-w", str(workspace), "sandbox", "--rehearse", str(copy), "--port",
                               str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = [server.stdout.readline() for _ in range(3)]
        assert said[0].startswith(f"Rehearsal copy: {copy}"), said
        assert f"In another terminal: cd {copy} && . ./sandbox.env && broadcast warn" in said[1]
        assert f"SMTP on 127.0.0.1:{port + 1}" in said[2]
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/received", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        again = subprocess.run([*BROADCAST, "-w", str(workspace), "sandbox", "--port", str(port)], env=env,
                               capture_output=True, text=True, timeout=30)
        assert again.returncode == 2 and f"--port {port}: the port is already in use" in again.stderr
        assert "Traceback" not in again.stderr

        shell = {**env, **exports(copy / "sandbox.env"), "BROADCAST_OPERATOR": "planner"}
        printed = subprocess.run([*BROADCAST, "-w", str(copy), "sandbox", "--env"], env=env, capture_output=True,
                                 text=True, timeout=30)
        assert printed.returncode == 0 and printed.stdout == (copy / "sandbox.env").read_text(encoding="utf-8")
        sent = subprocess.run([*BROADCAST, "-w", str(copy), "warn", "school-closure", "--set=school=Hillside",
                               "--set=date=today", "--set=reason=snow", "--set=next_update=15:00", "--yes"],
                              env=shell, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        received = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/received").read())
        platforms = {r["platform"] for r in received if r["accepted"]}
        assert {"mastodon", "bluesky", "facebook", "x", "telegram", "slack", "teams", "webhook", "notify",
                "smtp"} <= platforms, platforms  # (the Twilio backup is off in the example, as in real life)
        assert "SKIP  sms-twilio-backup" in sent.stdout
        mastodon = next(r for r in received if r["platform"] == "mastodon" and r["accepted"])
        assert "Hillside" in mastodon["body"]["status"]
        assert "https://" not in (copy / "broadcast.toml").read_text(encoding="utf-8").split("[[page.targets]]")[-1]
    finally:
        server.terminate()
        server.wait(10)
    # Later, from the copy itself (as from a `drill --keep` folder): pointed at the new sandbox, wherever it runs.
    port = free_port()
    again = subprocess.Popen([*BROADCAST, "-w", str(copy), "sandbox", "--port", str(port)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert again.stdout.readline().startswith(f"Rehearsal copy: {copy}")
        assert f"127.0.0.1:{port}/mastodon" in (copy / "channels" / "mastodon-council.toml").read_text(encoding="utf-8")
    finally:
        again.terminate()
        again.wait(10)
    # The planner's own workspace is untouched: its channels still point at the real platforms.
    assert "127.0.0.1" not in "".join(p.read_text(encoding="utf-8") for p in (workspace / "channels").glob("*.toml"))
    assert (workspace / "examples" / "lists").is_dir() and not (workspace / "broadcast.db").exists()
