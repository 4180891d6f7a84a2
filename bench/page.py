"""Benchmark: build the fallback site for 50 incidents of 10 updates each (500 CAP alerts, both languages).

Run: python bench/page.py
Prints, beside a floor measured in the same run, the time to build the whole site in memory from scratch (every CAP
file rendered and validated against the XSD, every page and feed) and to build it again after one more alert (the
incremental build the page before a send makes: only that incident's pages, the indexes, the feeds, status.json
and the new CAP file). The floor is a plain Jinja2 render of the same pages: the same templates loaded by a plain
jinja2.Environment, each page rendered with the same context dicts, no CAP, no feeds, no checks. Then the time to
write the site to an empty folder and to rewrite it unchanged, and the bytes of index.html, feed.atom and the whole
site. Targets (issue 17): full build <= 2x its floor; index.html <= 14,000 bytes; feed.atom < 100 KB. Every timing
is the median of RUNS after a warm-up; the full build and the floor take turns, round by round, so a machine whose
speed drifts moves both alike. It measures; it asserts nothing.
"""

from __future__ import annotations

import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from timing import together

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

INCIDENTS, UPDATES, RUNS = 50, 10, 7
FLOOR_TARGET = 2.0


def main() -> None:
    from sitekit import T0, make_alert, populate, save

    import broadcast.public.cap
    import broadcast.public.page
    from broadcast.public.buildcache import FILE
    from broadcast.public.site import build_site, write_tree
    from broadcast.store import Store
    from broadcast.workspace import Workspace

    counts = {"pages": 0, "cap": 0}
    _count(broadcast.public.page, "render_incident", counts, "pages")
    _count(broadcast.public.cap, "cap_document", counts, "cap")

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "workspace"
        root.mkdir()
        shutil.copyfile(REPO / "broadcast.toml", root / "broadcast.toml")
        for part in ("templates", "areas", "channels"):
            shutil.copytree(REPO / part, root / part)
        workspace = Workspace(root)
        store = Store.open(root / "broadcast.db")
        now = populate(workspace, store, INCIDENTS, UPDATES)

        site = build_site(workspace, store, now=now, incremental=False)
        floor = Floor(site.summary)
        every = floor.pages()
        full, every_page = together(lambda: build_site(workspace, store, now=now, incremental=False),
                                    lambda: floor.render(every), runs=RUNS)

        def first() -> None:
            for suffix in ("", "-wal", "-shm"):
                (root / f"{FILE}{suffix}").unlink(missing_ok=True)
            new_process()
            build_site(workspace, store, now=now)

        cold = _median(first)

        # One more alert before each incremental build, to a different incident each time, as a send would make:
        # even runs as a new process would build (the CLI's page before a send), odd ones in the process that built
        # the last time (the page after a send, or a long-lived process).
        incremental, again_here, changed_floor, rendered, identical = [], [], [], [], True
        build_site(workspace, store, now=now)
        for run in range(2 * RUNS + 2):
            slug = site.summary.current[run % len(site.summary.current)].slug
            previous = store.alerts(incident=slug)[-1]
            template = slug.rsplit("-", 1)[0]
            now += timedelta(minutes=1)
            save(store, make_alert(workspace, f"A-2026-9{run:03d}", minutes=(now - T0).total_seconds() / 60,
                                   template=template, incident=slug, msg_type="Update",
                                   references=(previous.identifier,)))
            now += timedelta(minutes=1)
            counts.update(pages=0, cap=0)
            if run % 2 == 0:
                new_process()
            started = time.perf_counter()
            built = build_site(workspace, store, now=now)
            seconds = time.perf_counter() - started
            if run < 2:
                continue  # the warm-up: the first builds after a change of store size
            if run % 2:
                again_here.append(seconds)
                continue
            incremental.append(seconds)
            rendered.append((counts["pages"], counts["cap"]))
            changed = Floor(built.summary)
            changed_floor.append(changed.time(changed.pages([i for i in built.summary.incidents if i.slug == slug])))
            identical = identical and built.files == build_site(workspace, store, now=now, incremental=False).files

        started = time.perf_counter()
        write_tree(site.files, root / "site")
        first_write = time.perf_counter() - started
        started = time.perf_counter()
        again = write_tree(site.files, root / "site")
        rewrite = time.perf_counter() - started

    files = site.files
    pages, caps = max(rendered)
    print(f"broadcast page build: {INCIDENTS} incidents x {UPDATES} updates, {len(workspace.languages)} languages "
          f"(Python {platform.python_version()}, {platform.machine()})")
    print(f"  floor: plain Jinja2 render of every page ({len(floor.pages())} pages, median of {RUNS})   "
          f"{every_page:.3f} s")
    print(f"  build (median of {RUNS})   {full:.3f} s   {full / every_page:.1f}x the floor (target <= "
          f"{FLOOR_TARGET:.0f}x; full build, nothing kept from before)")
    print(f"  first build, empty cache {cold:.3f} s   {cold / every_page:.1f}x the floor (also writes the cache)")
    print(f"  incremental build after one more alert, as a new process (median of {RUNS})   "
          f"{statistics.median(incremental):.3f} s   "
          f"{statistics.median(incremental) / every_page:.2f}x the floor of every page, "
          f"{statistics.median(incremental) / statistics.median(changed_floor):.1f}x the floor of the pages it renders "
          f"({statistics.median(changed_floor):.4f} s: 2 indexes, {pages} incident pages); {caps} CAP file built; "
          f"identical to a full build: {'yes' if identical else 'NO'}")
    print(f"  the same, in the process that built the last time (median of {RUNS})   "
          f"{statistics.median(again_here):.3f} s   {statistics.median(again_here) / every_page:.2f}x the floor of "
          f"every page")
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


class Floor:
    """The same pages from the same context dicts, through a plain Jinja2 environment: what rendering alone costs."""

    def __init__(self, summary: Any) -> None:
        from jinja2 import Environment, FileSystemLoader

        from broadcast.public import page

        self.summary = summary
        self.environment = Environment(loader=FileSystemLoader(REPO / "broadcast" / "data" / "page"),
                                       autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self.environment.filters["paragraphs"] = page._paragraphs  # incident.html uses it: the same function
        self.index_context, self.incident_context = page.index_context, page.incident_context

    def pages(self, incidents: list[Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Each language's index (with no instructions: the build may render it up to three times to fit its
        budget, the floor once) and the pages of `incidents` (default: every incident)."""
        summary = self.summary
        chosen = summary.incidents if incidents is None else incidents
        return [page for language in summary.workspace.languages for page in (
            ("index.html", {**self.index_context(summary, language), "detail": 0}),
            *(("incident.html", self.incident_context(summary, i, language)) for i in chosen))]

    def render(self, pages: list[tuple[str, dict[str, Any]]]) -> None:
        for name, context in pages:
            self.environment.get_template(name).render(context).encode("utf-8")

    def time(self, pages: list[tuple[str, dict[str, Any]]]) -> float:
        self.render(pages)  # warm-up: compile the templates
        return _median(lambda: self.render(pages))


def new_process() -> None:
    """Forget what this process kept from the last build (the alerts it read, the cache entries it used): the
    next build starts as the first one of a new `broadcast` process does."""
    import broadcast.public.site
    from broadcast.public.buildcache import forget

    forget()
    broadcast.public.site._LAST_READ.clear()


def _median(work: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _count(module: Any, name: str, counts: dict[str, int], key: str) -> None:
    """Count calls of module.name (an incident page rendered, a CAP file built): the build looks it up each call."""
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return real(*args, **kwargs)

    setattr(module, name, counted)


if __name__ == "__main__":
    main()
