"""Evidence that survives a rewrite: the stored records are checked against the chain, and the chain against the
head the public page published."""

from __future__ import annotations

import json
import sqlite3

from conftest import SETS, invoke

from broadcast.store import event_hash


def published_head(live) -> str:
    data = json.loads((live / "site" / "status.json").read_text(encoding="utf-8"))["log"]
    assert data["verify"] == f"broadcast review verify --head {data['events']}:{data['head']}"
    return f"{data['events']}:{data['head']}"


def test_the_page_and_status_json_carry_the_head_and_publishing_again_changes_nothing(live, sandbox):
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    head = published_head(live)
    count, digest = head.split(":")
    index = (live / "site" / "index.html").read_text(encoding="utf-8")
    assert f"Our record of these messages: entry {int(count):,}, fingerprint {digest}." in index
    welsh = (live / "site" / "cy" / "index.html").read_text(encoding="utf-8")
    assert "fingerprint" not in welsh and "ôl bys" in welsh and digest in welsh
    from lxml import etree

    feed = etree.parse(str(live / "site" / "feed.atom"))
    [anchor] = feed.getroot().findall("{urn:broadcast:log}head")
    assert f"{anchor.get('events')}:{anchor.get('hash')}" == head
    again = invoke(live, "page", "publish")
    assert again.exit_code == 0 and " 0 of " in again.output  # the same head: no file changes
    assert published_head(live) == head
    checked = invoke(live, "review", "verify", "--head", head)
    assert checked.exit_code == 0 and f"passes through the published head (event {count})" in checked.output


def test_an_edited_alert_or_delivery_row_fails_verify(live, sandbox):
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    database = live / "broadcast.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alerts SET alert = replace(alert, 'snow and ice', 'a burst pipe')")
    edited = invoke(live, "review", "verify")
    assert edited.exit_code == 1
    assert "alert A-2026-0001 as stored is not what was issued" in edited.stderr
    assert "its text was changed afterwards" in edited.stderr
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alerts SET alert = replace(alert, 'a burst pipe', 'snow and ice')")
        conn.commit()
        assert invoke(live, "review", "verify").exit_code == 0  # put back: it verifies again
        conn.execute("UPDATE deliveries SET state = 'failed' WHERE channel = 'hook-a' AND language = 'en-GB'")
    changed = invoke(live, "review", "verify")
    assert changed.exit_code == 1 and "(A-2026-0001, hook-a) is stored as failed, but its last logged change" \
        in changed.stderr


def test_a_rewritten_chain_passes_alone_but_not_against_the_published_head(live, sandbox):
    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0
    head = published_head(live)
    database = live / "broadcast.db"
    with sqlite3.connect(database) as conn:  # an attacker with the file: drop the guards, edit, rehash it all
        conn.row_factory = sqlite3.Row
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET description = 'Template school-closure approved by Nobody' "
                     "WHERE type = 'template_approved'")
        prev = "0" * 64
        for row in [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY id")]:
            row["prev_hash"] = prev
            row["hash"] = event_hash(row)
            conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", [row["prev_hash"], row["hash"],
                                                                                   row["id"]])
            prev = row["hash"]
    alone = invoke(live, "review", "verify")
    assert alone.exit_code == 0  # internally consistent: nothing inside the file can tell
    against = invoke(live, "review", "verify", "--head", head)
    assert against.exit_code == 1 and "the log was rewritten since it was published" in against.stderr
    bad = invoke(live, "review", "verify", "--head", "12:abc")
    assert bad.exit_code == 2 and "is not COUNT:HASH" in bad.stderr
