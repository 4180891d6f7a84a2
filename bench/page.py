"""Benchmark: build the fallback site for 50 incidents of 10 updates each (500 CAP alerts, both languages).

Run: python bench/page.py
Prints the time to build the whole site in memory (every CAP file rendered and validated against the XSD, every page
and feed), the time to write it to an empty folder and to rewrite it unchanged, and the bytes of index.html,
feed.atom and the whole site. Target: build under 0.2 s; feed.atom under 100 KB. It measures; it asserts nothing.
"""

from __future__ import annotations

import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

INCIDENTS, UPDATES, RUNS = 50, 10, 5


def main() -> None:
    from sitekit import populate

    from broadcast.public.site import build_site, write_tree
    from broadcast.store import Store
    from broadcast.workspace import Workspace

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "workspace"
        root.mkdir()
        shutil.copyfile(REPO / "broadcast.toml", root / "broadcast.toml")
        for part in ("templates", "areas", "channels"):
            shutil.copytree(REPO / part, root / part)
        workspace = Workspace(root)
        store = Store.open(root / "broadcast.db")
        now = populate(workspace, store, INCIDENTS, UPDATES)
        build_site(workspace, store, now=now)  # warm up: imports, schema, template compilation
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            site = build_site(workspace, store, now=now)
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        write_tree(site.files, root / "site")
        first_write = time.perf_counter() - started
        started = time.perf_counter()
        again = write_tree(site.files, root / "site")
        rewrite = time.perf_counter() - started

    files = site.files
    print(f"broadcast page build: {INCIDENTS} incidents x {UPDATES} updates, {len(workspace.languages)} languages "
          f"(Python {platform.python_version()}, {platform.machine()})")
    print(f"  build (median of {RUNS})   {statistics.median(times):.3f} s   (min {min(times):.3f}, "
          f"max {max(times):.3f}; target < 0.2 s)")
    print(f"  write to empty folder  {first_write:.3f} s   rewrite unchanged {rewrite:.3f} s "
          f"({len(again.written)} files changed)")
    print(f"  files                  {len(files)} ({sum(p.startswith('cap/') for p in files)} CAP)")
    print(f"  index.html             {len(files['index.html']):,} bytes ({len(site.summary.current)} current; "
          f"budget 14,000)")
    print(f"  cy/index.html          {len(files['cy/index.html']):,} bytes")
    print(f"  feed.atom              {len(files['feed.atom']):,} bytes "
          f"({files['feed.atom'].count(b'<entry')} entries; target < 100,000)")
    print(f"  feed.rss               {len(files['feed.rss']):,} bytes")
    print(f"  status.json            {len(files['status.json']):,} bytes")
    print(f"  whole site             {site.size:,} bytes")


if __name__ == "__main__":
    main()
