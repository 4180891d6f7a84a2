"""Build the whole static site in memory from the store, and write it to a folder without ever leaving it broken."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from broadcast.public.buildcache import known_sha256

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from broadcast.alert import Alert
    from broadcast.public.pageconfig import PageSettings
    from broadcast.public.summary import Summary
    from broadcast.store import Store
    from broadcast.workspace import Workspace

STALE_STAGING_SECONDS = 3600
# A file's new copy is written beside it: the same file system (so a rename is atomic), and writable whenever the
# folder is, which its parent (say /var/www) often is not; hidden, and skipped by every listing of the site.
STAGING = ".broadcast-staging-"


@dataclass(frozen=True)
class Site:
    """Every file of the site by path (relative, '/'-separated), and the summary it was built from."""

    files: dict[str, bytes]
    summary: Summary

    @property
    def size(self) -> int:
        return sum(map(len, self.files.values()))


@dataclass(frozen=True)
class Written:
    written: list[str]
    removed: list[str]


def build_site(
    workspace: Workspace, store: Store, *, settings: PageSettings | None = None, now: datetime | None = None,
    incremental: bool = True,
) -> Site:
    """Render every CAP file, page and feed. Raises CapError (and writes nothing) if any CAP file is invalid.

    Incremental (the default), it takes from the workspace's .broadcast/page-cache.sqlite3 what the last build made
    and is still true: the CAP file of an alert already written (alerts never change) and each incident page whose
    incident, settings and code are unchanged. The result is byte for byte what a full build makes."""
    from broadcast.public.buildcache import BuildCache
    from broadcast.public.cap import cap_document
    from broadcast.public.feeds import atom, language_prefix, rss, status_json
    from broadcast.public.page import render_pages
    from broadcast.public.pageconfig import page_settings
    from broadcast.public.summary import summarise

    settings = settings or page_settings(workspace)
    alerts, fingerprints = _alerts(store)
    known = {alert.identifier: alert for alert in alerts}
    summary = summarise(workspace, store, settings, now or datetime.now(UTC), alerts=alerts)
    cache = BuildCache.of(workspace.root) if incremental else BuildCache(None)
    files = {}
    for update in summary.updates:  # a CAP file is the alert and the sender, identifier and sent of each it references
        alert = update.alert
        referenced = [fingerprints.get(identifier) for identifier in alert.referenced]
        key = cache.key("cap", fingerprints[alert.identifier], referenced)
        files[update.cap_path] = cache.get(key) or cache.put(key, cap_document(alert, known))
    files.update(render_pages(summary, cache, fingerprints))
    for language in workspace.languages:
        prefix = language_prefix(summary, language)
        files[f"{prefix}feed.atom"] = atom(summary, language)
        files[f"{prefix}feed.rss"] = rss(summary, language)
    files["status.json"] = status_json(summary)
    cache.save()
    return Site(files, summary)


def _alerts(store: Store) -> tuple[list[Alert], dict[str, str]]:
    """Every alert in the order recorded, and a fingerprint of each one's content (its stored text). What the last
    build in this process read is kept: the build after a send (the page after) reads no alert again when the log
    says none has changed, and parses only the new ones when it cannot say (PostgreSQL)."""
    from broadcast.alert import Alert

    version = store.alerts_version()
    if not _LAST_READ.unchanged(store, version):
        read = {}
        for text in store.alert_texts():
            known = _LAST_READ.texts.get(text)
            if known is None:
                known = (Alert.from_dict(json.loads(text)),
                         hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())
            read[text] = known
        _LAST_READ.remember(store, version, read)
    return list(_LAST_READ.alerts), dict(_LAST_READ.fingerprints)


class _Read:
    """What the last build in this process read of the alerts: each stored text with the Alert it holds and its
    fingerprint, and the store and alerts_version it was read at."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.texts: dict[str, tuple[Alert, str]] = {}
        self.store: weakref.ref[Store] | None = None
        self.version: tuple[int, int] | None = None
        self.alerts: list[Alert] = []
        self.fingerprints: dict[str, str] = {}

    def unchanged(self, store: Store, version: tuple[int, int] | None) -> bool:
        """Whether this store's alerts are still what was read: only when it can say (a version) and says so."""
        return version is not None and self.store is not None and self.store() is store and self.version == version

    def remember(self, store: Store, version: tuple[int, int] | None, read: dict[str, tuple[Alert, str]]) -> None:
        self.texts, self.version, self.store = read, version, weakref.ref(store)
        self.alerts = [alert for alert, _ in read.values()]
        self.fingerprints = {alert.identifier: digest for alert, digest in read.values()}


_LAST_READ = _Read()


@dataclass(frozen=True)
class Built:
    site: Site
    directory: Path
    written: Written


def build_into(
    workspace: Workspace, store: Store, directory: Path | None = None, *, now: datetime | None = None
) -> Built:
    """Build the site and write it to a local folder (default: the first directory target, else site/)."""
    from broadcast.public.pageconfig import page_settings

    settings = page_settings(workspace)
    site = build_site(workspace, store, settings=settings, now=now)
    directory = directory or settings.output_dir(workspace.root)
    return Built(site, directory, write_tree(site.files, directory))


def preview_server(directory: Path, port: int = 8000) -> ThreadingHTTPServer:
    """A local preview of a built site on 127.0.0.1 (never on a public interface); call serve_forever()."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".atom": "application/atom+xml",
                          ".rss": "application/rss+xml", ".xml": "application/cap+xml",
                          ".html": "text/html; charset=utf-8", ".json": "application/json"}

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        return ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=str(directory)))
    except OSError as exc:
        from broadcast.errors import BroadcastError

        raise BroadcastError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                             hint="another program is using the port: choose another with --port 8001") from None


def swap_order(path: str) -> tuple[int, str]:
    """Files a page links to go live before the page: CAP files, then incident pages, then feeds, then indexes."""
    if path.startswith("cap/"):
        return 0, path
    if "incidents/" in path:
        return 1, path
    return (3 if path.endswith("index.html") else 2), path


def managed(path: str) -> bool:
    """Files a publish may remove when they are no longer built; anything else in a target is left alone."""
    parts = path.split("/")
    return (parts[0] == "cap" and path.endswith(".xml")) or ("incidents" in parts[:-1] and path.endswith(".html"))


def write_tree(files: dict[str, bytes], directory: Path, manifest: Manifest | None = None) -> Written:
    """Write the site into `directory`: every changed file is first written in full to a hidden copy beside it, and
    only when all of them are written is each moved into place with an atomic rename, so a reader (or a crash) never
    sees a half-written file and a failed build leaves the previous site as it was. Unchanged files are not touched,
    so their caches stay valid; with a `manifest` of the folder, a file it vouches for is known unchanged without
    being read, and one read here is not read again to verify it."""
    staged: dict[str, Path] = {}  # path -> its copy beside it, until renamed into place
    token = secrets.token_hex(6)  # another publish's copies have another name
    try:
        for path, data in files.items():
            if manifest is not None and manifest.holds(path, data):
                continue
            target = directory / path
            with contextlib.suppress(OSError):
                before = os.stat(target)
                if S_ISREG(before.st_mode) and before.st_size == len(data) and target.read_bytes() == data:
                    if manifest is not None:
                        manifest.confirm(path, before)
                    continue
            copy = target.with_name(f"{STAGING}{token}-{target.name}")
            staged[path] = copy
            write_file(copy, data)
        changed = sorted(staged, key=swap_order)
        for path in changed:
            os.replace(staged[path], directory / path)
            del staged[path]
        present, leftovers = _walk(directory)
        removed = [path for path in present if managed(path) and path not in files]
        for path in removed:
            (directory / path).unlink()
        for leftover in leftovers:  # copies a killed publish left, an hour old and more
            with contextlib.suppress(OSError):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
    finally:
        for copy in staged.values():  # not moved into place: the build failed part-way
            with contextlib.suppress(OSError):
                copy.unlink()
    return Written(changed, removed)


class Manifest:
    """What each file of a published folder held when it was last written or read back here: its digest, and the
    size, inode, modification and change times it had then. A file whose stat is as recorded still holds it, as
    make, rsync and git assume (nothing can set a file's change time back), so it is not read again. As in git, a
    file changed less than RACY seconds before the record was written is read again next time, in case a coarse
    file-system clock hid a second write in the same tick: the record's own modification time is the file system's
    clock, so the check holds whatever the process's clock says. Kept in the workspace, never in the published
    folder; a record that cannot be read vouches for nothing, and one that cannot be written only means the next
    publish reads everything."""

    RACY = 2.0

    def __init__(self, directory: Path, record: Path | None) -> None:
        self.directory = directory
        self.record = record
        self.entries: dict[str, list[Any]] = {}
        self.settled = 0  # file times before this (ns, the file system's clock) are older than the record by RACY
        self.seen: dict[str, list[int]] = {}  # stats found as recorded, or before a read, during this publish
        self.confirmed: set[str] = set()  # read during this publish and found to hold what is published
        if directory not in _DIGESTS:
            _DIGESTS.clear()  # one folder's at a time
        self.digests = _DIGESTS.setdefault(directory, {})
        if record is not None:
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
                with open(record, "rb") as handle:
                    loaded = json.loads(handle.read())
                    written = os.fstat(handle.fileno()).st_mtime_ns
                if loaded.get("directory") == str(directory):
                    self.entries = {path: entry for path, entry in dict(loaded["files"]).items() if _entry(entry)}
                    self.settled = written - int(self.RACY * 1e9)

    def _stat(self, path: str) -> list[int] | None:
        try:
            return _recorded(os.stat(os.path.join(self.directory, path)))
        except OSError:
            return None

    def _digest(self, path: str, data: bytes) -> str:
        """The SHA-256 of `data`, hashed once per bytes object: the build cache hands a build the very objects it
        keeps, with the digest each had when it was made, so a publish hashes only what was built anew."""
        known = self.digests.get(path)
        if known is None or known[0] is not data:
            known = self.digests[path] = (data, known_sha256(data) or hashlib.sha256(data).hexdigest())
        return known[1]

    def holds(self, path: str, data: bytes) -> bool:
        """Whether `path` surely holds `data`, as recorded and unchanged since, without reading it."""
        entry = self.entries.get(path)
        if not entry or max(entry[3], entry[4]) >= self.settled or entry[0] != self._digest(path, data):
            return False
        if path in self.seen:  # found as recorded a moment ago, in this publish
            return True
        stat = self._stat(path)
        if stat != entry[1:]:
            return False
        self.seen[path] = stat
        return True

    def confirm(self, path: str, found: os.stat_result) -> None:
        """`path` was read just now, after this stat, and holds what is published: verify need not read it again."""
        self.seen[path] = _recorded(found)
        self.confirmed.add(path)

    def remember(self, files: dict[str, bytes]) -> None:
        """Record `files` as the folder holds them now (call after reading them back), and keep the record."""
        entries = {}
        for path, data in files.items():
            stat = self.seen.get(path) or self._stat(path)
            if stat is not None:
                entries[path] = [self._digest(path, data), *stat]
        self.entries, self.seen, self.confirmed, self.settled = entries, {}, set(), 0
        if self.record is None:
            return
        with contextlib.suppress(OSError):
            staged = self.record.with_name(f"{self.record.name}.{os.getpid()}.new")
            write_file(staged, json.dumps({"directory": str(self.directory), "files": entries}).encode("utf-8"))
            staged.replace(self.record)

    def forget(self) -> None:
        """After a read-back that found a difference: vouch for nothing until the folder is read again."""
        self.entries = {}
        if self.record is not None:
            with contextlib.suppress(OSError):
                self.record.unlink()


def _recorded(found: os.stat_result) -> list[int]:
    """What a manifest keeps of a file's stat: size, inode, modification and change times."""
    return [found.st_size, found.st_ino, found.st_mtime_ns, found.st_ctime_ns]


def _entry(entry: Any) -> bool:
    """A manifest entry as remember() writes it: [digest, size, inode, mtime_ns, ctime_ns]."""
    return (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)
            and all(isinstance(value, int) for value in entry[1:]))


_DIGESTS: dict[Path, dict[str, tuple[bytes, str]]] = {}  # folder -> path -> (the bytes last hashed, their digest)


def write_file(path: Path, data: bytes) -> None:
    """Write `path`, making its folder only when the write finds it missing (the first publish, a new language):
    a publish is spared a mkdir for every folder it writes to."""
    try:
        path.write_bytes(data)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def existing_files(directory: Path) -> list[str]:
    """Files in a published folder, leaving out any copy a publish is writing (or a killed one left)."""
    return _walk(directory)[0]


def _walk(directory: Path) -> tuple[list[str], list[Path]]:
    """The published folder's files, and the copies (or, from older versions, staging folders) that publishes killed
    part-way left in it more than STALE_STAGING_SECONDS ago: a copy younger than that may be another publish's."""
    found: list[str] = []
    stale: list[Path] = []
    old = time.time() - STALE_STAGING_SECONDS
    for folder, subfolders, names in os.walk(directory):
        relative = os.path.relpath(folder, directory).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        for name in [*subfolders, *names]:
            if name.startswith(STAGING):
                with contextlib.suppress(OSError):
                    if os.lstat(os.path.join(folder, name)).st_mtime < old:
                        stale.append(Path(folder, name))
        subfolders[:] = [name for name in subfolders if not name.startswith(STAGING)]
        found.extend(prefix + name for name in names if not name.startswith(STAGING))
    return sorted(found), stale

