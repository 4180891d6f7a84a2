"""Build the whole static site in memory from the store, and write it to a folder without ever leaving it broken."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from broadcast.alert import Alert
    from broadcast.public.pageconfig import PageSettings
    from broadcast.public.summary import Summary
    from broadcast.store import Store
    from broadcast.workspace import Workspace

STALE_STAGING_SECONDS = 3600
# Inside the target folder: the same file system (so a rename is atomic) and writable whenever the folder is,
# which its parent (say /var/www) often is not.
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

    Incremental (the default), it takes from the workspace's .broadcast/page-cache what the last build made and is
    still true: the CAP file of an alert already written (alerts never change) and each incident page whose
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
    """Every alert in the order recorded, and a fingerprint of each one's content (its stored text)."""
    import hashlib

    stored = store.stored_alerts()
    return [alert for alert, _ in stored], {
        alert.identifier: hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() for alert, text in stored}


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


def write_tree(files: dict[str, bytes], directory: Path) -> Written:
    """Write the site into `directory`: every changed file is first written in full to a hidden staging folder,
    then moved into place with an atomic rename, so a reader (or a crash) never sees a half-written file and a failed
    build leaves the previous site as it was. Unchanged files are not touched, so their caches stay valid."""
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(directory)
    staging: Path | None = None  # made only when a file changed: an unchanged site is only read
    made: set[Path] = set()  # folders known to exist: one mkdir each, not one per file

    def folder(path: Path) -> None:
        if path not in made:
            path.mkdir(parents=True, exist_ok=True)
            made.add(path)

    try:
        changed = []
        for path, data in files.items():
            target = directory / path
            if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
                continue
            staging = staging or Path(tempfile.mkdtemp(prefix=STAGING, dir=directory))
            staged = staging / path
            folder(staged.parent)
            staged.write_bytes(data)
            changed.append(path)
        for path in sorted(changed, key=swap_order):
            target = directory / path
            folder(target.parent)
            os.replace(staging / path, target)  # type: ignore[operator]
        removed = [path for path in existing_files(directory) if managed(path) and path not in files]
        for path in removed:
            (directory / path).unlink()
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return Written(changed, removed)


def existing_files(directory: Path) -> list[str]:
    """Files in a published folder, leaving out any staging folder."""
    found = (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return sorted(path for path in found if not path.startswith(STAGING))


def _remove_stale_staging(directory: Path) -> None:
    """A build killed mid-way leaves its staging folder; clear those old enough not to be another publish's."""
    for leftover in directory.glob(STAGING + "*"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            pass
