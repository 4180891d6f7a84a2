"""The sandbox's page for a training room: posts as a timeline, texts as phone threads, emails as an inbox; it is
readable in a browser (axe finds nothing) and never runs what it shows."""

from __future__ import annotations

import smtplib
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import SETS, invoke

from broadcast.sandbox.mail import start_mail

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def land_one_of_each(live, sandbox):
    from notifications_python_client.notifications import NotificationsAPIClient

    from broadcast.sandbox.platforms.notify import API_KEY, SMS_TEMPLATE

    assert invoke(live, "warn", "school-closure", *SETS, "--yes").exit_code == 0  # Mastodon and two webhooks
    NotificationsAPIClient(API_KEY, base_url=sandbox.url).send_sms_notification(
        phone_number="07700900001", template_id=SMS_TEMPLATE, personalisation={"message": "Hillside is closed."})
    mail, port = start_mail(sandbox)
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "alerts@testshire.example", "ann@example.org", \
            "School closed <b>today</b>"
        message.set_content("Hillside Primary School is closed today.")
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(message)
    finally:
        mail.stop()


def test_the_page_shows_a_timeline_texts_and_an_inbox(live, sandbox):
    land_one_of_each(live, sandbox)
    page = urllib.request.urlopen(sandbox.url + "/").read().decode("utf-8")
    timeline = page.split("<h2>Timeline</h2>")[1].split("<h2>Texts</h2>")[0]
    assert "mastodon &middot; mastodon" in timeline and "Hillside Primary School is closed on Monday" in timeline
    assert "webhook &middot; hook-a" in timeline
    texts = page.split("<h2>Texts</h2>")[1].split("<h2>Inbox</h2>")[0]
    assert "<p class='bubble'>Hillside is closed.</p>" in texts
    inbox = page.split("<h2>Inbox</h2>")[1].split("<h2>Every request</h2>")[0]
    assert "ann@example.org" in inbox and "School closed &lt;b&gt;today&lt;/b&gt;" in inbox  # shown, not run
    assert "http-equiv='refresh'" not in page and "href='/?refresh=5'" in page  # refreshing is asked for
    refreshing = urllib.request.urlopen(sandbox.url + "/?refresh=5").read().decode("utf-8")
    assert "<meta http-equiv='refresh' content='5'>" in refreshing and "Stop refreshing" in refreshing


@pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium (CI installs it)")
def test_axe_finds_nothing_wrong_with_the_sandbox_page_at_320px(live, sandbox):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    land_one_of_each(live, sandbox)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_context(viewport={"width": 320, "height": 640}).new_page()
        assert page.goto(sandbox.url + "/").status == 200
        results = Axe().run(page)
        browser.close()
    assert results.violations_count == 0, results.generate_report()
