"""The site folder read-only, or its disk full, while a warning is published: the channels still go out, the error
says what to check, and the site already published stays as it was until a publish can complete."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import VALUES, invoke

from broadcast.public.site import STAGING
from broadcast.store import Store

HINT = "hint: check the folder exists, is writable and the disk is not full"


def sets(**values: str) -> list[str]:
    return [f"--set={k}={v}" for k, v in {**VALUES, **values}.items()]


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "512k") -> Iterator[None]:
    """A tiny file system of its own at `path` (needs root); skips the test where it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                             capture_output=True, check=False) if os.geteuid() == 0 else None
    if mounted is None or mounted.returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated disk-full test still runs")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Write into `path` until the disk is full."""
    with contextlib.suppress(OSError), (path / "filler.bin").open("wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * 4096)


def snapshot(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*")
            if p.is_file() and p.name != "filler.bin"}


def second_warning_with_the_page_failing(live: Path, sandbox, message: str) -> dict[str, bytes]:
    """Warn again with the site unwritable: every channel delivered, the page's error and hint, the log intact."""
    site = live / "site"
    result = invoke(live, "warn", "school-closure", *sets(school="Ysgol Newydd"), "--yes")
    assert result.exit_code == 0, result.output  # the page is not a channel: the warning itself went out
    assert "3 of 3 channels delivered. Alert A-2026-0002, incident " in result.output
    assert f"FAIL  page:site  directory  site: cannot write {site}: {message}" in result.output
    assert HINT in result.output
    posts = [r for r in sandbox.received(accepted=True) if "Ysgol Newydd" in str(r.body)]
    assert len(posts) == 5  # Mastodon, and two webhooks in two languages
    store = Store.open(live / "broadcast.db")
    failed = [e for e in store.events() if e["type"] == "fallback_failed"]
    assert len(failed) == 2 and message in failed[-1]["description"]  # before and after the fan-out
    assert store.verify().ok
    store.close()
    return snapshot(site)


@pytest.mark.parametrize("fault", ["read-only", "disk-full"])
def test_an_unwritable_site_fails_the_page_only_and_keeps_the_published_site(live, sandbox, fault):
    site = live / "site"
    with tmpfs(site):
        assert invoke(live, "warn", "school-closure", *sets(), "--yes").exit_code == 0
        before = snapshot(site)
        assert "index.html" in before and "cap/A-2026-0001.xml" in before
        if fault == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(site)], check=True)
            message = "Read-only file system"
        else:
            fill(site)
            message = "No space left on device"

        assert second_warning_with_the_page_failing(live, sandbox, message) == before
        assert not list(site.rglob(STAGING + "*"))  # nothing half-written left behind

        if fault == "read-only":
            subprocess.run(["mount", "-o", "remount,rw", str(site)], check=True)
        else:
            (site / "filler.bin").unlink()
        again = invoke(live, "page", "publish")
        assert again.exit_code == 0, again.output
        assert "cap/A-2026-0002.xml" in snapshot(site) and b"Ysgol Newydd" in (site / "index.html").read_bytes()


def test_a_write_failing_mid_publish_keeps_the_published_site(live, sandbox, monkeypatch):
    """The same without a real disk: the fifth file written fails with ENOSPC, as a disk filling up would."""
    site = live / "site"
    assert invoke(live, "warn", "school-closure", *sets(), "--yes").exit_code == 0
    before = snapshot(site)
    written = Path.write_bytes
    calls = {"n": 0}

    def full_after_four(self: Path, data: bytes) -> int:
        if STAGING in str(self):
            calls["n"] += 1
            if calls["n"] % 5 == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return written(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_after_four)
    assert second_warning_with_the_page_failing(live, sandbox, "No space left on device") == before
    assert not list(site.rglob(STAGING + "*"))
