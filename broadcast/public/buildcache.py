"""What the last site build made, kept in the workspace's git-ignored .broadcast/ folder so the next build renders
only what changed: an incident page whose incident, words and code are as they were, or the CAP file of an alert
already written, is read back rather than built again."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path

FOLDER = ".broadcast/page-cache"
NEW = ".new-"
# The code and templates a cached file was made with: a change to any of them makes every key new.
SOURCES = ("cap.py", "page.py", "pagetext.py", "summary.py")
LIBRARIES = ("jinja2", "markupsafe", "babel", "lxml")
# What this process last read from or wrote to the cache folder it last used, by key: the build after a send (the
# page after) reads none of it from disk again.
_IN_MEMORY: dict[Path, dict[str, bytes]] = {}
_PRUNED: dict[Path, set[str]] = {}  # the cache folder this process last saved, and the keys it left in it


class BuildCache:
    """Built files by a key of everything they are made from. A cache that cannot be read or written is only a
    slower build: it never stops the page."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.used: set[str] = set()
        self.made: dict[str, bytes] = {}
        if folder is not None and folder not in _IN_MEMORY:
            _IN_MEMORY.clear()  # one workspace's at a time
        self.memory = _IN_MEMORY.setdefault(folder, {}) if folder is not None else {}

    @classmethod
    def of(cls, root: Path) -> BuildCache:
        return cls(root / FOLDER)

    def key(self, *parts: object) -> str:
        """A file name for these inputs; their repr is their content (frozen dataclasses, strings, datetimes). A
        cache with no folder (a full build) keeps nothing, and needs no key."""
        if self.folder is None:
            return ""
        return hashlib.sha256(repr((code_version(), parts)).encode("utf-8", "surrogatepass")).hexdigest()[:40]

    def get(self, key: str) -> bytes | None:
        if self.folder is None:
            return None
        self.used.add(key)
        data = self.memory.get(key)
        if data is not None:
            return data
        try:
            with open(os.path.join(self.folder, key), "rb") as cached:
                data = cached.read()
        except OSError:  # not built before, or pruned by another build meanwhile
            return None
        self.memory[key] = data
        return data

    def put(self, key: str, data: bytes) -> bytes:
        if self.folder is not None:
            self.used.add(key)
            self.made[key] = data
        return data

    def save(self) -> None:
        """Keep what this build made, each file written whole then renamed into place; drop what it did not use."""
        if self.folder is None:
            return
        for key in set(self.memory) - self.used:
            del self.memory[key]
        if not self.made and _PRUNED.get(self.folder) == self.used:
            return  # as this process left it: nothing to write, nothing to drop (the page after a send)
        temporary = None
        try:
            for key, data in self.made.items():
                try:
                    handle, temporary = tempfile.mkstemp(prefix=NEW, dir=self.folder)
                except FileNotFoundError:  # the first build in this workspace
                    self.folder.mkdir(parents=True, exist_ok=True)
                    handle, temporary = tempfile.mkstemp(prefix=NEW, dir=self.folder)
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, self.folder / key)
                temporary = None
                self.memory[key] = data
            for entry in os.scandir(self.folder):  # another build's half-written file is its own to finish
                if entry.name not in self.used and not entry.name.startswith(NEW):
                    os.unlink(entry.path)
            _PRUNED.clear()
            _PRUNED[self.folder] = set(self.used)
        except OSError:  # a read-only or full disk: the next build renders what it lacks
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
        self.made.clear()


@cache
def code_version() -> str:
    """A digest of the page code, its templates, the date names and the libraries that shape its bytes."""
    from importlib.resources import files
    from importlib.util import find_spec

    from broadcast.words import DATE_NAMES

    digest = hashlib.sha256()
    for name in LIBRARIES:  # where each is installed and when: an upgrade changes both (metadata is slow to read)
        spec = find_spec(name)  # found, not imported: a build that needs no babel does not load it
        location = Path(spec.origin if spec and spec.origin else name)
        digest.update(f"{location}:{location.stat().st_mtime_ns}".encode())
    here = Path(__file__).parent
    for name in SOURCES:
        digest.update((here / name).read_bytes())
    digest.update(DATE_NAMES.read_bytes())
    for template in sorted(files("broadcast").joinpath("data", "page").iterdir(), key=lambda t: t.name):
        digest.update(template.name.encode() + template.read_bytes())
    return digest.hexdigest()
