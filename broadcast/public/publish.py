"""Build the fallback site and publish it to every target, reading each one back; every step is an event."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from broadcast.errors import BroadcastError

if TYPE_CHECKING:
    from broadcast.public.pageconfig import Target
    from broadcast.public.site import Site
    from broadcast.store import Store
    from broadcast.workspace import Workspace

PHASE = "warn"
CHANNEL = "page"


@dataclass(frozen=True)
class TargetResult:
    name: str
    kind: str
    location: str
    ok: bool
    written: int = 0
    removed: int = 0
    verified: int = 0
    seconds: float = 0.0
    error: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class PublishReport:
    site: Site
    results: tuple[TargetResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if not r.ok]

    def lines(self) -> list[str]:
        """One line per target (and its hint when it failed), as the warn report and `page publish` print them."""
        width = max(len(r.name) for r in self.results) + len(CHANNEL) + 1
        out = []
        for r in self.results:
            name = f"{CHANNEL}:{r.name}"
            if r.ok:
                out.append(f"OK    {name:{width}}  {r.kind:9}  {r.location}  {r.written} of {len(self.site.files)} "
                           f"files sent, {r.verified} checked and match")
            else:
                out.append(f"FAIL  {name:{width}}  {r.kind:9}  {r.error}")
                out += [f"      hint: {r.hint}"] if r.hint else []
        return out


def publish_site(
    workspace: Workspace, store: Store, *, actor: str | None = None, now: datetime | None = None
) -> PublishReport:
    """Build the site and publish it to every [page] target, each read back and compared byte for byte.

    A CAP file that fails validation raises CapError before anything is published. A target that fails is
    reported (and logged as `fallback_failed`) and does not stop the others; check `report.ok`.
    """
    from broadcast.prepare.approvals import operator
    from broadcast.public.pageconfig import page_settings
    from broadcast.public.site import build_site

    settings = page_settings(workspace)
    site = build_site(workspace, store, settings=settings, now=now)
    who = actor or operator()
    return PublishReport(site, tuple(_publish(workspace, store, target, site, who) for target in settings.targets))


def _publish(workspace: Workspace, store: Store, target: Target, site: Site, actor: str) -> TargetResult:
    from broadcast.public.targets import make_target

    adapter = make_target(target, workspace)
    base = {"target": target.name, "kind": target.kind, "location": adapter.location}
    started, stage = time.monotonic(), "publish"
    try:
        written = adapter.publish(site)
        index = site.files.get("index.html", b"")
        store.append_event("fallback_published", phase=PHASE, actor=actor, channel=CHANNEL,
                           description=f"Fallback page published to {target.name} ({adapter.location})",
                           details={**base, "files": len(site.files), "written": len(written.written),
                                    "removed": len(written.removed), "bytes": site.size,
                                    "index_sha256": hashlib.sha256(index).hexdigest()})
        stage = "verify"
        verified = adapter.verify(site, written)
    except Exception as exc:  # one target's failure, whatever its cause, must not stop the others
        error, hint = (exc.message, exc.hint) if isinstance(exc, BroadcastError) else (
            f"{target.name}: {type(exc).__name__}: {exc}", "run with --debug for the traceback, and report it")
        store.append_event("fallback_failed", phase=PHASE, actor=actor, channel=CHANNEL,
                           description=f"Fallback page {stage} failed on {target.name}: {error}",
                           details={**base, "stage": stage, "error": error})
        return TargetResult(target.name, target.kind, adapter.location, False,
                            seconds=time.monotonic() - started, error=error, hint=hint)
    seconds = time.monotonic() - started
    store.append_event("fallback_verified", phase=PHASE, actor=actor, channel=CHANNEL,
                       description=f"Fallback page on {target.name} checked: {verified} files match",
                       details={**base, "verified": verified, "seconds": round(seconds, 3)})
    return TargetResult(target.name, target.kind, adapter.location, True, len(written.written),
                        len(written.removed), verified, seconds)
