"""Create a new workspace from the example content shipped with the package."""

from __future__ import annotations

import shutil
from pathlib import Path

from broadcast.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "example"
FOLDERS = ("templates", "channels", "runbooks", "areas")
GITIGNORE = """\
# The log is the record: back it up, but do not commit it.
broadcast.db
broadcast.db-*
# Generated: the fallback page, feeds and CAP files.
site/
# Recipient lists hold personal data; .broadcast/ holds the key that hashes their numbers and addresses.
lists/
.broadcast/
# Fictional people (drama-range numbers, example.org) for `broadcast drill` and rehearsals.
examples/lists/
# Secrets never live in the workspace.
*.secrets
.env
"""


def create_workspace(root: Path) -> Path:
    """Copy the example workspace into `root` (new or empty) and add a .gitignore."""
    if (root / "broadcast.toml").exists():
        raise ConfigError(root / "broadcast.toml", None, "a workspace is already here",
                          "choose a new folder, or edit this workspace in place")
    if root.exists() and any(root.iterdir()):
        raise ConfigError(root, None, "the folder is not empty", "give a new or empty folder")
    if not (EXAMPLE / "broadcast.toml").is_file():
        raise ConfigError(EXAMPLE, None, "the example content is missing from this installation",
                          "reinstall broadcast: pip install --force-reinstall broadcast")
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(EXAMPLE / "broadcast.toml", root / "broadcast.toml")
    if (EXAMPLE / "people.toml").is_file():  # who may approve: every entry commented out until the planner edits it
        shutil.copyfile(EXAMPLE / "people.toml", root / "people.toml")
    for folder in FOLDERS:
        source = EXAMPLE / folder
        if source.is_dir():
            shutil.copytree(source, root / folder, dirs_exist_ok=True)
    if (EXAMPLE / "lists").is_dir():  # for drills and rehearsals: fictional, never the workspace's own lists/
        shutil.copytree(EXAMPLE / "lists", root / "examples" / "lists")
    (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    return root.resolve()
