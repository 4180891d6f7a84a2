"""Safety rules checked before anything is sent: approval, two people, exercise and test, the kill switch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from broadcast.errors import ConfigError, PolicyError
from broadcast.workspace import Localized, check_keys, expect, read_toml

if TYPE_CHECKING:
    from broadcast.prepare.templates import Rendering
    from broadcast.workspace import ChannelConfig, Workspace

POLICY_KEYS = {"unapproved", "exercise_words", "second_approver"}
DEFAULT_EXERCISE_WORDS = {"en": "EXERCISE", "cy": "YMARFER"}
# Statuses that never reach a channel the public follows, whatever the flags (CAP 1.2: Test is discarded,
# Draft is never disseminated; an Exercise goes only where the planner marked a channel for exercises).
NOT_PUBLIC = ("Exercise", "Test", "Draft", "System")


@dataclass(frozen=True)
class Policy:
    unapproved: str  # "draft": a modified or unapproved template needs a second person; "refuse": it cannot go
    exercise_words: Localized
    second_approver: bool  # free text and unapproved templates need someone other than the drafter

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> Policy:
        path = workspace.config_path
        section = expect(path, "policy", workspace.config.get("policy", {}), dict, "a [policy] table")
        check_keys(path, section, POLICY_KEYS, "policy.")
        unapproved = section.get("unapproved", "draft")
        if unapproved not in ("draft", "refuse"):
            raise ConfigError(path, "policy.unapproved", f"{unapproved!r} is not draft or refuse")
        words = section.get("exercise_words", DEFAULT_EXERCISE_WORDS)
        return cls(
            unapproved=unapproved,
            exercise_words=Localized.parse(path, "policy.exercise_words", words, workspace.languages)
            if isinstance(words, dict) else Localized({"*": str(words)}),
            second_approver=expect(path, "policy.second_approver", section.get("second_approver", True), bool,
                                   "true or false"),
        )


def channel_refusal(config: ChannelConfig, status: str) -> str | None:
    """Why a channel may not carry a message of this CAP status, or None if it may."""
    if status in ("Test", "Draft", "System"):
        return f"{status} messages never go to a channel" if not config.exercise else None
    if status == "Exercise" and not config.exercise:
        return "not marked for exercises (exercise = true in its file)"
    return None


def stamp(rendering: Rendering, words: Localized) -> Rendering:
    """Mark every text of every language once, at its start, so an exercise message cannot be taken for a real
    one (a text already marked, as a correction of an exercise is, is left as it is)."""
    from broadcast.prepare.templates import Text

    texts = {}
    for language, variants in rendering.texts.items():
        mark = f"{words.get(language)}: "
        texts[language] = {variant: text if text.full().startswith(mark) else Text(((mark, False), *text.parts))
                           for variant, text in variants.items()}
    return replace(rendering, texts=texts)


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    users: tuple[str, ...]
    can_approve: bool

    def __str__(self) -> str:
        return f"{self.name}, {self.role}"


def people(workspace: Workspace) -> list[Person]:
    """The people list (people.toml): who may draft and who may approve, by their OS or operator names."""
    path = workspace.root / "people.toml"
    if not path.exists():
        return []
    found = []
    for i, entry in enumerate(read_toml(path).get("person", [])):
        key = f"person[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, key, "expected a [[person]] table")
        check_keys(path, entry, {"name", "role", "users", "can_approve"}, f"{key}.")
        users = expect(path, f"{key}.users", entry.get("users", []), list, "a list of user names")
        found.append(Person(expect(path, f"{key}.name", entry.get("name"), str, "text"),
                            expect(path, f"{key}.role", entry.get("role"), str, "text"),
                            tuple(str(u) for u in users),
                            expect(path, f"{key}.can_approve", entry.get("can_approve", False), bool,
                                   "true or false")))
    return found


def identify(workspace: Workspace, user: str) -> str:
    """'Name, Role (user)' for a listed person, else the user name as it is."""
    for person in people(workspace):
        if user in person.users:
            return f"{person} ({user})"
    return user


SECOND_PERSON_HINT = ("the second person approves from their own OS account (logged in as themselves, or: sudo -u "
                      "THEIR_ACCOUNT broadcast approve DRAFT); if nobody can be reached, send with --override "
                      "--reason \"...\" (it is logged and flagged in the review)")


def check_second_approver(workspace: Workspace, draft: dict[str, Any], account: str, named: str | None = None) -> str:
    """The approver must be another OS account than the drafter's, and allowed to approve (people.toml lists OS
    accounts); returns how they are recorded. `named`: a different name $BROADCAST_OPERATOR gave, which is logged
    beside the account and never makes a second person."""
    drafter = draft.get("drafted_account") or draft["drafted_by"].split(" (")[-1].rstrip(")")
    if account == drafter:
        who = f"{named} (BROADCAST_OPERATOR) is on the same OS account as the drafter ({account})" if named else \
            f"{account} drafted this message"
        raise PolicyError(f"{who} and cannot also approve it", hint=SECOND_PERSON_HINT)
    listed = people(workspace)
    if listed:
        person = next((p for p in listed if account in p.users), None)
        if person is None or not person.can_approve:
            raise PolicyError(f"OS account {account} is not listed as an approver in people.toml",
                              hint="an approver needs can_approve = true in people.toml, with their OS account "
                              "in users")
    recorded = identify(workspace, account)
    return f"{recorded} (typing as {named})" if named else recorded


def override_details(reason: str | None) -> dict[str, Any]:
    if not (reason or "").strip():
        raise PolicyError("--override needs --reason", hint='e.g. --override --reason "no second officer reachable '
                          'at 03:10; police asked us to warn now"')
    return {"override": True, "reason": reason}
