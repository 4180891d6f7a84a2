"""The built page in a real browser: Debian's Chromium driven by Playwright, checked by axe-core, at 320 px wide."""

import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import REPO
from sitekit import T0, hostile_alert, make_alert, save

from broadcast.public.site import build_into, preview_server
from broadcast.store import Store
from broadcast.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "artifacts"
PAGES = ("index.html", "cy/index.html", "incidents/flood.html", "cy/incidents/road.html", "incidents/hostile.html")

if not CHROMIUM.exists():
    # .ci/run installs chromium and sets this, so CI cannot skip the test by accident.
    if os.environ.get("BROADCAST_BROWSER_TEST") == "required":
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def site_url(tmp_path_factory, example_files):
    root = example_files
    workspace = Workspace(root)
    store = Store.open(workspace.db_path)
    save(store, make_alert(workspace, "A-2026-0001", template="school-closures", incident="snow"))
    save(store, make_alert(workspace, "A-2026-0002", minutes=5, template="flood-warning", incident="flood"))
    road = save(store, make_alert(workspace, "A-2026-0003", minutes=-60, template="road-closure", incident="road"))
    save(store, make_alert(workspace, "A-2026-0004", minutes=-10, template="all-clear", incident="road",
                           msg_type="Update", references=(road.identifier,)))
    hostile = "<script>alert('x')</script> ]]> & \"quotes\" مدرسة الأمل 🌨️ " + "Floodwater" * 500
    save(store, hostile_alert(hostile, "A-2026-0005", "hostile"), hostile)
    built = build_into(workspace, store, now=T0 + timedelta(minutes=30))
    store.close()
    server = preview_server(built.directory, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def example_files(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("browser") / "workspace"
    root.mkdir()
    shutil.copyfile(REPO / "broadcast.toml", root / "broadcast.toml")
    for folder in ("templates", "areas", "channels"):
        shutil.copytree(REPO / folder, root / folder)
    return root


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser, site_url):
    """A 320 CSS px wide viewport (WCAG 1.4.10 reflow) that records every request the page makes."""
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    yield page, requests
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_axe_finds_no_violations_and_nothing_scrolls_sideways_at_320px(phone, site_url, path):
    from axe_playwright_python.sync_playwright import Axe

    page, requests = phone
    response = page.goto(site_url + path)
    assert response.status == 200
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1] == 320, f"{path} scrolls sideways: {widths[0]} px of content in 320 px"
    assert all(url.startswith(site_url) for url in requests), requests  # no fonts, scripts or trackers
    if path == "index.html":
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "page-index-320px.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000


def test_the_hostile_text_is_shown_as_text_and_never_runs(phone, site_url):
    page, _ = phone
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(site_url + "incidents/hostile.html")
    assert dialogs == []
    assert page.locator("script").count() == 0
    assert page.locator("h1 bdi").inner_text().startswith("<script>alert('x')</script> ]]> & \"quotes\"")


def test_print_drops_the_chrome_and_keeps_the_status_in_words(browser, site_url):
    context = browser.new_context(viewport={"width": 800, "height": 1000})
    page = context.new_page()
    page.goto(site_url + "incidents/flood.html")
    page.emulate_media(media="print")
    assert page.locator("nav").is_hidden() and page.locator(".skip").is_hidden()
    assert page.locator("h1 .tag").inner_text() == "Current"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-incident-print.png"), full_page=True)
    context.close()


def test_the_skip_link_appears_on_focus_and_leads_to_main(phone, site_url):
    page, _ = phone
    page.goto(site_url + "index.html")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert skip.evaluate("element => element === document.activeElement")
    box = skip.bounding_box()
    assert box and box["x"] >= 0 and box["height"] >= 24  # visible, and a target at least 24 px high
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html#main", timeout=5000)  # following the link is asynchronous: wait, then look
    assert page.url.endswith("#main")
