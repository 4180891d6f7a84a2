"""The HTML review report: one self-contained file, charts as accessible inline SVG, rendered by Chromium."""

import re
import shutil

import pytest
from conftest import REPO
from reviewkit import SLUG

pytest_plugins = ("reviewkit",)  # its `known` fixture
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture
def report(run, known, tmp_path):
    assert run("review", "note", SLUG, "<script>alert('x')</script> & co", "--pin").exit_code == 0
    path = tmp_path / "review.html"
    result = run("review", SLUG, "-o", str(path))
    assert result.exit_code == 0, result.output
    return path


def test_the_report_is_one_file_that_requests_nothing(report):
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>\n<html lang=\"en-GB\">")
    assert "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"" in html
    assert not re.search(r"\ssrc=|<link|@import|<script", html)
    assert re.findall(r'href="([^"]*)"', html) == ["#timeline"]
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#hatch"}
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html
    assert "@media print{" in html


def test_the_report_holds_the_metrics_charts_decisions_and_timeline(report):
    html = report.read_text(encoding="utf-8")
    assert "<dt>Declared</dt><dd>2026-10-25 01:20:00 BST (2026-10-25T00:20:00.000Z)</dd>" in html
    assert "<tr><td>Time to all-clear</td><td>1h 30m</td></tr>" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and html.count('role="img"') == 2
    assert '<title id="dchart-t">Delivery results per channel over time</title>' in html
    assert "hook-c: 0 accepted, 1 refused or cut off" in html  # the chart's text alternative
    assert '<title id="lchart-t">Delivery latency by channel</title>' in html
    assert "mastodon-council: median 400 ms, 95th percentile 600 ms" in html
    assert ("<td>2026-10-25 01:40:00 BST</td><td>Keep schools closed all day</td>"
            "<td>Gritting not finished before 08:00</td><td>Sam Rees, Emergency Planning Manager</td>") in html
    timeline = html[html.index('id="timeline"'):]
    assert timeline.count("<tr") == 1 + 23  # the head row, 22 events and the note
    assert '<tr class="bad"><td class="n">14</td>' in timeline  # the failed delivery, marked in words as well


def test_the_report_renders_in_chromium(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)")
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    url = report.as_uri()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            requests, errors = [], []
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(url)
            assert requests == [url] and errors == []
            assert page.title() == f"Incident review: Snow closes schools ({SLUG})"
            assert page.get_by_role("img", name="Delivery results per channel over time").is_visible()
            chart = page.locator("svg[aria-labelledby='dchart-t dchart-d']").bounding_box()
            assert chart is not None and chart["width"] > 300 and chart["height"] > 60
            assert page.locator("#timeline ~ .wide tbody tr").count() == 23
            assert page.evaluate("document.documentElement.scrollWidth") <= 1100  # nothing spills sideways
            page.screenshot(path=str(artifacts / "review-report.png"), full_page=True)
            page.emulate_media(media="print")
            assert page.locator(".skip").is_hidden()
            page.pdf(path=str(artifacts / "review-report.pdf"), format="A4")
        finally:
            browser.close()
    assert (artifacts / "review-report.png").stat().st_size > 10_000
    assert (artifacts / "review-report.pdf").read_bytes().startswith(b"%PDF")
