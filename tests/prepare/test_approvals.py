from broadcast.prepare.approvals import APPROVED, MODIFIED, UNAPPROVED, approval_state, approve, read_approvals
from broadcast.prepare.templates import find_template
from broadcast.store import Store
from broadcast.workspace import Workspace


def test_approval_is_bound_to_content(workspace_dir):
    workspace = Workspace(workspace_dir)
    template = find_template(workspace, "school-closure")
    assert approval_state(template, read_approvals(workspace)).status == UNAPPROVED

    store = Store.open(workspace.db_path)
    approve(workspace, template, "Alex Morgan, Head of Communications", store)
    assert approval_state(template, read_approvals(workspace)).status == APPROVED

    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Keep children", "Keep all children"), encoding="utf-8")
    edited = find_template(Workspace(workspace_dir), "school-closure")
    state = approval_state(edited, read_approvals(workspace))
    assert state.status == MODIFIED and state.approval.by == "Alex Morgan, Head of Communications"

    approve(workspace, edited, "Sam Rees, Emergency Planning Manager", store)
    assert approval_state(edited, read_approvals(workspace)).status == APPROVED
    assert len(read_approvals(workspace)) == 2

    events = [e for e in store.events() if e["type"] == "template_approved"]
    assert [e["actor"] for e in events] == ["Alex Morgan, Head of Communications",
                                            "Sam Rees, Emergency Planning Manager"]
    assert edited.sha256 in events[1]["details"]
    assert store.verify().ok


def test_crlf_checkout_keeps_the_approval(workspace_dir):
    workspace = Workspace(workspace_dir)
    template = find_template(workspace, "school-closure")
    approve(workspace, template, "Alex Morgan, Head of Communications", Store.open(workspace.db_path))
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    again = find_template(Workspace(workspace_dir), "school-closure")
    assert approval_state(again, read_approvals(workspace)).approved


def test_unusual_names_round_trip_through_approvals_toml(workspace_dir):
    workspace = Workspace(workspace_dir)
    by = 'Siân "Sian" O\'Brien-Ţepeş, Pennaeth Cyfathrebu \\ Comms'
    approve(workspace, find_template(workspace, "school-closure"), by, Store.open(workspace.db_path))
    assert read_approvals(workspace)[0].by == by
