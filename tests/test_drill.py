"""broadcast drill, end to end: the README's main job on the example workspace."""

import json

from click.testing import CliRunner

from broadcast.cli import cli
from broadcast.store import Store


def test_drill_runs_the_whole_exercise_against_the_sandbox(example_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("BROADCAST_WORKSPACE", raising=False)
    secrets_before = {k: v for k, v in __import__("os").environ.items() if k.startswith("BRYNGWYN_")}
    into = tmp_path / "drill"
    result = CliRunner().invoke(cli, ["--workspace", str(example_dir), "drill", "--keep", str(into)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    for step in ("prepare", "warn", "update", "correct", "recover", "close", "review"):
        assert f"\n{step:9} " in "\n" + out
    assert "faults injected: facebook 429 x1 Retry-After 1" in out
    assert "A-2026-0001 Alert Exercise:" in out and "A-2026-0004 Update Exercise:" in out
    assert "FAIL" not in out
    assert "OK: the log verifies" in out
    store = Store.open(into / "broadcast.db")
    alerts = store.alerts()
    assert [a.msg_type for a in alerts] == ["Alert", "Update", "Update", "Update"]
    assert all(a.status == "Exercise" for a in alerts)
    assert alerts[-1].infos[0].response_type == ("AllClear",)
    assert alerts[2].note.startswith("Exercise: not a real warning. Correction of A-2026-0002: the schools are "
                                     "Ysgol Gynradd Hillside, Ysgol Bro Lliw a")
    assert store.incidents()[0]["status"] == "closed"
    retried = [json.loads(e["details"]) for e in store.events() if e["type"] == "retry_scheduled"]
    assert any(r["http_status"] == 429 and r["wait_s"] == 1 for r in retried)
    assert store.verify().ok
    people = store.conn.execute("SELECT channel, state, count(*) FROM deliveries WHERE recipient != '' "
                                "GROUP BY channel, state").fetchall()
    assert {(channel, state) for channel, state, _ in people} == {("sms-residents", "sent"),
                                                                  ("email-residents", "sent")}
    # What came back: the texts' receipts and the resident's question, in the metrics a reviewer reads.
    assert "collect   posts: " in out and "1 reply from the public" in out
    metrics = CliRunner().invoke(cli, ["--workspace", str(into), "review", "metrics", store.incidents()[0]["slug"],
                                       "--json"], catch_exceptions=False)
    data = json.loads(metrics.stdout)
    assert {r["channel"] for r in data["receipts"]} == {"sms-residents"}  # SMTP reports no receipts
    assert sum(r["delivered"] for r in data["receipts"]) > 0 and sum(r["failed"] for r in data["receipts"]) > 0
    said = [reply["text"] for post in data["engagement"] for reply in post["said"]]
    assert said == ["Is the school bus running tomorrow?"]
    assert data["reached"] + data["failed"] + data["unknown"] == data["attempted"]
    index = (into / "site" / "index.html").read_text(encoding="utf-8")
    assert "EXERCISE" in index
    # The drill's sandbox credentials never outlive it, and the original workspace is untouched.
    assert {k: v for k, v in __import__("os").environ.items() if k.startswith("BRYNGWYN_")} == secrets_before
    assert not (example_dir / "broadcast.db").exists()


def test_a_drill_without_keep_leaves_nothing_behind(example_dir, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delenv("BROADCAST_WORKSPACE", raising=False)
    result = CliRunner().invoke(cli, ["--workspace", str(example_dir), "drill", "--no-faults"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "OK: the log verifies" in result.output and "the copy is removed; --keep DIR keeps it" in result.output
    assert list(scratch.iterdir()) == []
