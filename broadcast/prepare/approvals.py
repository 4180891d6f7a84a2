"""Template sign-off: approval binds to the SHA-256 of the template's content."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from broadcast.errors import BroadcastError, ConfigError, PolicyError
from broadcast.prepare.templates import find_template
from broadcast.workspace import read_toml

if TYPE_CHECKING:
    from broadcast.prepare.templates import Template
    from broadcast.store import Store
    from broadcast.workspace import Workspace

APPROVED, MODIFIED, UNAPPROVED = "approved", "modified since approval", "not approved"


@dataclass(frozen=True)
class Approval:
    template: str
    sha256: str
    by: str
    at: str


@dataclass(frozen=True)
class ApprovalState:
    status: str
    approval: Approval | None  # the approval of this content, or else the latest one of any content

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


def read_approvals(workspace: Workspace) -> list[Approval]:
    """Every approval recorded in the workspace, oldest first."""
    path = workspace.approvals_path
    if not path.exists():
        return []
    entries = read_toml(path).get("approval", [])
    approvals = []
    for i, entry in enumerate(entries):
        try:
            approvals.append(Approval(entry["template"], entry["sha256"], entry["by"], str(entry["at"])))
        except (KeyError, TypeError):
            raise ConfigError(path, f"approval[{i}]", "needs template, sha256, by and at",
                              "approvals.toml is written by `broadcast templates approve`; "
                              "restore it from git") from None
    return approvals


def approval_state(template: Template, approvals: list[Approval]) -> ApprovalState:
    """Approved only if an approval names this template with exactly this content."""
    mine = [a for a in approvals if a.template == template.name]
    matching = [a for a in mine if a.sha256 == template.sha256]
    if matching:
        return ApprovalState(APPROVED, matching[-1])
    if mine:
        return ApprovalState(MODIFIED, mine[-1])
    return ApprovalState(UNAPPROVED, None)


@dataclass(frozen=True)
class TemplateApproval:
    name: str
    title: str
    state: ApprovalState | None  # None when the file is broken
    error: BroadcastError | None = None  # what is wrong with the file, and the fix


def approval_states(workspace: Workspace) -> list[TemplateApproval]:
    """Every template of the workspace with its approval state; a broken file is listed with its error."""
    approvals = read_approvals(workspace)
    rows = []
    for name in workspace.template_names():
        try:
            template = find_template(workspace, name)
        except BroadcastError as error:
            rows.append(TemplateApproval(name, "", None, error))
            continue
        rows.append(TemplateApproval(name, template.title, approval_state(template, approvals)))
    return rows


def os_account() -> str:
    """The OS account running broadcast: what the two-person rules rest on. Read from the process's user id, not
    from $USER or $LOGNAME, which anyone can set."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):  # Windows, or a uid with no name
        return getpass.getuser()


def operator() -> str:
    """Who is at the keyboard, as logged: $BROADCAST_OPERATOR (a name for the log on a shared account), else the OS
    account. It never counts as a second person: approval compares OS accounts (see `os_account`)."""
    return os.environ.get("BROADCAST_OPERATOR", "").strip() or os_account()


def named_as() -> str | None:
    """The name $BROADCAST_OPERATOR gives, where it differs from the OS account: logged as such beside it."""
    named = os.environ.get("BROADCAST_OPERATOR", "").strip()
    return named if named and named != os_account() else None


def approve(workspace: Workspace, template: Template, by: str, store: Store, *, forced: str | None = None) -> Approval:
    """Record sign-off of the template's current content in approvals.toml and in the log. `forced`: the reason it
    was approved in spite of lint errors (pinned for the review)."""
    name, _, role = by.partition(",")
    if not name.strip() or not role.strip():
        raise PolicyError(f"--by {by!r} must give a name and a role",
                          hint='example: --by "Alex Morgan, Head of Communications"')
    if forced is not None and not forced.strip():
        raise PolicyError("--force needs --reason", hint='e.g. --reason "Welsh checked by phone with the translator"')
    approval = Approval(template.name, template.sha256, by.strip(),
                        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    # The log first: if writing the file fails, the template stays unapproved, which is the safe side.
    store.append_event(
        "template_approved", phase="prepare", actor=approval.by,
        description=f"Template {template.name} approved by {approval.by}",
        details={"template": template.name, "sha256": template.sha256, "operator": operator(),
                 "os_account": os_account(), **({"forced": forced, "flag": "review"} if forced else {})},
        pinned=bool(forced),
    )
    path = workspace.approvals_path
    header = "" if path.exists() else (
        "# Template sign-off, written by `broadcast templates approve`. Each entry binds an approval to the\n"
        "# SHA-256 of the template file: edit the file and it is unapproved until approved again.\n"
    )
    # json.dumps writes a valid TOML basic string for any text.
    block = (f"\n[[approval]]\ntemplate = {json.dumps(approval.template)}\nsha256 = {json.dumps(approval.sha256)}\n"
             f"by = {json.dumps(approval.by, ensure_ascii=False)}\nat = {approval.at}\n")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(header + block)
    return approval
