"""The incremental build: after one more alert only that incident's pages and the new CAP file are made again, and
the site is byte for byte what a full build makes."""

import os
from dataclasses import replace
from datetime import timedelta

import pytest
from sitekit import T0, MemoryStore, hostile_alert, incident_row, make_alert, populate, save, with_page

import broadcast.public.cap
import broadcast.public.page
from broadcast.public.buildcache import FILE, OLD_FOLDER, forget
from broadcast.public.publish import publish_site
from broadcast.public.site import build_site
from broadcast.store import Store

pytest_plugins = ("pagekit",)  # store: an empty log; example: the example workspace


@pytest.fixture
def made(monkeypatch):
    """The incident pages rendered and CAP files built, as (slug, language) and identifiers."""
    seen: dict[str, list] = {"pages": [], "cap": []}
    render, cap = broadcast.public.page.render_incident, broadcast.public.cap.cap_document

    def rendering(summary, incident, language):
        seen["pages"].append((incident.slug, language))
        return render(summary, incident, language)

    def building(alert, known):
        seen["cap"].append(alert.identifier)
        return cap(alert, known)

    monkeypatch.setattr(broadcast.public.page, "render_incident", rendering)
    monkeypatch.setattr(broadcast.public.cap, "cap_document", building)
    return seen


def one_more(workspace, store, slug, identifier, minutes):
    previous = store.alerts(incident=slug)[-1]
    return save(store, make_alert(workspace, identifier, minutes=minutes, template=slug.rsplit("-", 1)[0],
                                  incident=slug, msg_type="Update", references=(previous.identifier,)))


def test_after_one_more_alert_the_build_is_a_full_build_byte_for_byte(example, store):
    workspace = example
    now = populate(workspace, store, incidents=5, updates=3)
    build_site(workspace, store, now=now)
    one_more(workspace, store, "road-closure-02", "A-2026-0100", 60)
    later = now + timedelta(minutes=60)
    incremental = build_site(workspace, store, now=later)
    full = build_site(workspace, store, now=later, incremental=False)
    assert incremental.files == full.files
    assert "cap/A-2026-0100.xml" in incremental.files
    assert b'id="A-2026-0100"' in incremental.files["incidents/road-closure-02.html"]
    assert b'id="A-2026-0100"' in incremental.files["cy/incidents/road-closure-02.html"]


def test_a_build_reads_the_alerts_again_only_when_one_may_have_been_recorded(example, store):
    workspace = example
    now = populate(workspace, store, incidents=3, updates=2)
    build_site(workspace, store, now=now)
    asked: list[str] = []
    store.conn.set_trace_callback(asked.append)
    build_site(workspace, store, now=now)  # the page after a send that recorded no alert
    assert not [sql for sql in asked if sql.startswith("SELECT alert FROM alerts")]
    other = Store.open(store.path)  # another officer's process, on the same log
    one_more(workspace, other, "school-closures-01", "A-2026-0100", 60)
    other.close()
    later = now + timedelta(minutes=60)
    seen = build_site(workspace, store, now=later)
    assert "cap/A-2026-0100.xml" in seen.files and seen.files == build_site(workspace, store, now=later,
                                                                            incremental=False).files
    one_more(workspace, store, "school-closures-01", "A-2026-0101", 70)  # and one this store records
    assert "cap/A-2026-0101.xml" in build_site(workspace, store, now=later).files


def test_only_the_incident_with_the_new_alert_is_rendered_and_only_its_cap_file_built(example, store, made):
    workspace = example
    now = populate(workspace, store, incidents=5, updates=3)
    build_site(workspace, store, now=now)
    assert len(made["pages"]) == 10 and len(made["cap"]) == 15  # the first build makes everything
    made["pages"].clear()
    made["cap"].clear()
    one_more(workspace, store, "road-closure-02", "A-2026-0100", 60)
    build_site(workspace, store, now=now + timedelta(minutes=60))
    assert sorted(made["pages"]) == [("road-closure-02", "cy-GB"), ("road-closure-02", "en-GB")]
    assert made["cap"] == ["A-2026-0100"]  # a CAP file once written is never built or checked again
    made["pages"].clear()
    made["cap"].clear()
    build_site(workspace, store, now=now + timedelta(minutes=61))
    assert made == {"pages": [], "cap": []}


def test_a_publish_after_one_more_alert_leaves_the_other_incident_pages_untouched(example, store):
    workspace = example
    now = populate(workspace, store, incidents=3, updates=2)
    publish_site(workspace, store, now=now)
    site = workspace.root / "site"
    others = [site / "incidents" / "flood-warning-00.html", site / "cy" / "incidents" / "school-closures-01.html"]
    for page in others:
        os.utime(page, (1, 1))
    one_more(workspace, store, "road-closure-02", "A-2026-0100", 30)
    report = publish_site(workspace, store, now=now + timedelta(minutes=30))
    assert "incidents/road-closure-02.html" in report.site.files
    assert all(page.stat().st_mtime == 1 for page in others)  # unchanged bytes: their Last-Modified stays
    # The new CAP file, its incident's 2 pages, 2 indexes, 4 feeds and status.json.
    assert report.results[0].written == 10


def test_what_changes_an_incident_without_a_new_alert_is_rendered_again(workspace_dir, workspace, store):
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"))
    before = build_site(workspace, store, now=T0)
    expired = build_site(workspace, store, now=T0 + timedelta(days=3))  # its alert expired: the page says Ended
    assert expired.files == build_site(workspace, store, now=T0 + timedelta(days=3), incremental=False).files
    assert b"Ended" in expired.files["incidents/snow.html"] and b"Ended" not in before.files["incidents/snow.html"]
    settled = with_page(workspace_dir, "check_minutes = 5\n")  # a setting every page's footer shows
    again = build_site(settled, store, now=T0)
    assert again.files == build_site(settled, store, now=T0, incremental=False).files
    assert b"every 5 minutes" in again.files["cy/incidents/snow.html"] or b"bob 5 munud" in \
        again.files["cy/incidents/snow.html"]


def test_another_log_with_the_same_identifiers_gets_its_own_pages_and_cap_files(workspace):
    first = hostile_alert("Snow: Hillside closed")
    build_site(workspace, MemoryStore([first], [incident_row("hostile", "Snow")]), now=T0)
    second = replace(hostile_alert("Flood: Riverside closed"), sent=first.sent)  # same identifier, sender, sent
    rows = [incident_row("hostile", "Snow")]
    files = build_site(workspace, MemoryStore([second], rows), now=T0).files
    assert files == build_site(workspace, MemoryStore([second], rows), now=T0, incremental=False).files
    assert b"Riverside" in files["cap/A-2026-0001.xml"] and b"Riverside" in files["incidents/hostile.html"]


def test_a_cache_that_cannot_be_written_only_makes_the_build_slower(workspace, store, made):
    (workspace.root / ".broadcast").write_text("not a folder", encoding="utf-8")
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"))
    site = build_site(workspace, store, now=T0)
    assert build_site(workspace, store, now=T0).files == site.files
    assert site.files == build_site(workspace, store, now=T0, incremental=False).files
    assert not (workspace.root / FILE).exists()
    assert made["cap"] == ["A-2026-0001"] * 3  # nothing kept: built by each build


def test_a_damaged_cache_is_only_a_slower_build_and_is_made_again_at_once(workspace, store, made):
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"))
    site = build_site(workspace, store, now=T0)
    (workspace.root / FILE).write_bytes(b"not a database " * 300)  # damaged between two runs of broadcast
    forget()  # each build below as a new process makes it
    assert build_site(workspace, store, now=T0).files == site.files
    forget()
    assert build_site(workspace, store, now=T0).files == site.files
    assert made["cap"] == ["A-2026-0001"] * 2  # the first build's, then the one that found the cache damaged


def test_the_cache_folder_of_earlier_versions_goes_at_the_next_save(workspace, store):
    old = workspace.root / OLD_FOLDER
    old.mkdir(parents=True)
    (old / ("0" * 40)).write_bytes(b"<html>an incident page</html>")
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"))
    build_site(workspace, store, now=T0)
    assert not old.exists() and (workspace.root / FILE).is_file()


def test_a_library_upgraded_in_place_makes_every_key_new_without_importing_it(tmp_path, monkeypatch):
    import sys

    from broadcast.public import buildcache

    library = tmp_path / "shaping_library.py"
    library.write_text("raise AssertionError('imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(buildcache, "LIBRARIES", ("shaping_library",))
    before = buildcache.code_version.__wrapped__()
    stat = library.stat()
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # reinstalled: a new file time
    assert buildcache.code_version.__wrapped__() != before
    assert "shaping_library" not in sys.modules
