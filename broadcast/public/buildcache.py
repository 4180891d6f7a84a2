"""What the last site build made, kept in the workspace's git-ignored .broadcast/ folder so the next build renders
only what changed: an incident page whose incident, words and code are as they were, or the CAP file of an alert
already written, is read back rather than built again."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
from functools import cache
from pathlib import Path

# One SQLite file: a build reads every entry in one query (a file per entry took 600 opens, 24 ms, for a site with
# 500 alerts), and each entry comes with its SHA-256, so a publish need not hash again what it sends.
FILE = ".broadcast/page-cache.sqlite3"
OLD_FOLDER = ".broadcast/page-cache"  # a file per entry, as earlier versions kept them: removed at the next save
SOURCES = ("cap.py", "page.py", "pagetext.py", "summary.py")  # The code, templates and libraries a cached file was
LIBRARIES = ("jinja2", "markupsafe", "babel", "lxml")  # made with: a change to any of them makes every key new.
WAIT = 2.0  # seconds to wait for another process's save before going on without the cache
# What this process last read from or wrote to the cache it last used, by key, with each entry's digest: the build
# after a send (the page after) reads none of it again.
_IN_MEMORY: dict[Path, dict[str, bytes]] = {}
_LOADED: set[Path] = set()  # caches whose every entry is in _IN_MEMORY
_PRUNED: dict[Path, set[str]] = {}  # the cache this process last saved, and the keys it left in it
_SHA256: dict[int, tuple[bytes, str]] = {}  # id of a cached entry's bytes -> the bytes and their SHA-256


class BuildCache:
    """Built files by a key of everything they are made from. A cache that cannot be read or written is only a
    slower build: it never stops the page."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.used: set[str] = set()
        self.made: dict[str, bytes] = {}
        if path is not None and path not in _IN_MEMORY:
            _IN_MEMORY.clear()  # one workspace's at a time
            _LOADED.clear()
            _SHA256.clear()
        self.memory = _IN_MEMORY.setdefault(path, {}) if path is not None else {}

    @classmethod
    def of(cls, root: Path) -> BuildCache:
        return cls(root / FILE)

    def key(self, *parts: object) -> str:
        """A name for these inputs; their repr is their content (frozen dataclasses, strings, datetimes). A cache
        with no file (a full build) keeps nothing, and needs no key."""
        if self.path is None:
            return ""
        return hashlib.sha256(repr((code_version(), parts)).encode("utf-8", "surrogatepass")).hexdigest()[:40]

    def get(self, key: str) -> bytes | None:
        if self.path is None:
            return None
        self.used.add(key)
        if self.path not in _LOADED:
            self._load()
        return self.memory.get(key)

    def put(self, key: str, data: bytes) -> bytes:
        if self.path is not None:
            self.used.add(key)
            self.made[key] = data
        return data

    def _load(self) -> None:
        """Every entry of the file, in one query; an unreadable file is no cache, and is made again at the save."""
        assert self.path is not None
        _LOADED.add(self.path)
        if not self.path.exists():
            return
        try:
            with contextlib.closing(_connect(self.path)) as db:
                for key, data, digest in db.execute("SELECT key, data, sha256 FROM built"):
                    self.memory.setdefault(key, data)
                    _SHA256[id(self.memory[key])] = (self.memory[key], digest)
        except sqlite3.Error:  # locked past WAIT, or damaged: the next save writes what this build makes
            return

    def save(self) -> None:
        """Keep what this build made and drop what it did not use, in one transaction."""
        if self.path is None:
            return
        for key in set(self.memory) - self.used:
            _SHA256.pop(id(self.memory.pop(key)), None)
        if not self.made and _PRUNED.get(self.path) == self.used:
            return  # as this process left it: nothing to write, nothing to drop (the page after a send)
        made = {key: (data, hashlib.sha256(data).hexdigest()) for key, data in self.made.items()}
        self.made.clear()
        for attempt in (1, 2):
            try:
                self._write(made)
                break
            except (OSError, sqlite3.OperationalError):  # a read-only or full disk, or another save past WAIT
                return
            except sqlite3.DatabaseError:  # damaged (not a database, malformed): begun again, empty
                if attempt == 2:
                    return
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        self.path.with_name(self.path.name + suffix).unlink()
        for key, (data, digest) in made.items():
            old = self.memory.get(key)
            if old is not None and old is not data:
                _SHA256.pop(id(old), None)
            self.memory[key] = data
            _SHA256[id(data)] = (data, digest)
        _PRUNED.clear()
        _PRUNED[self.path] = set(self.used)
        shutil.rmtree(self.path.parent.parent / OLD_FOLDER, ignore_errors=True)

    def _write(self, made: dict[str, tuple[bytes, str]]) -> None:
        """The new entries in, and every entry this build did not use out, in one transaction."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(_connect(self.path)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO built (key, data, sha256) VALUES (?, ?, ?)",
                           [(key, data, digest) for key, (data, digest) in made.items()])
            unused = [(key,) for (key,) in db.execute("SELECT key FROM built") if key not in self.used]
            db.executemany("DELETE FROM built WHERE key = ?", unused)
            db.execute("COMMIT")


def forget() -> None:
    """Forget what this process holds of any cache, as a new process starts (for tests and benchmarks)."""
    _IN_MEMORY.clear()
    _LOADED.clear()
    _PRUNED.clear()
    _SHA256.clear()


def known_sha256(data: bytes) -> str | None:
    """The SHA-256 of bytes the cache holds (computed when they were made), or None for any others."""
    known = _SHA256.get(id(data))
    return known[1] if known is not None and known[0] is data else None


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=WAIT, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")  # a cache: a power cut can only cost a slower build
        db.execute("CREATE TABLE IF NOT EXISTS built (key TEXT PRIMARY KEY, data BLOB NOT NULL, sha256 TEXT NOT NULL)")
    except BaseException:
        db.close()
        raise
    return db


@cache
def code_version() -> str:
    """A digest of the page code, its templates, the date names and the libraries that shape its bytes."""
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
    for template in sorted((here.parent / "data" / "page").iterdir(), key=lambda t: t.name):
        digest.update(template.name.encode() + template.read_bytes())
    return digest.hexdigest()
