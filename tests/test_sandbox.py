"""The sandbox itself: its control API, fault injection and the page listing what each platform received."""

import httpx
import pytest

from broadcast.sandbox.server import CREDENTIALS


def post_status(url, text="Road closed", token=CREDENTIALS["mastodon"], **headers):
    return httpx.post(f"{url}/mastodon/api/v1/statuses", json={"status": text},
                      headers={"Authorization": f"Bearer {token}", **headers})


def test_faults_set_over_http_and_the_listing_page(sandbox):
    assert httpx.post(f"{sandbox.url}/_sandbox/faults",
                      json={"target": "mastodon", "fail_next": 2, "status": 429, "retry_after": 3}).status_code == 200
    first, second, third = (post_status(sandbox.url, f"Road closed {i}") for i in range(3))
    assert (first.status_code, first.headers["retry-after"]) == (429, "3")
    assert second.status_code == 429 and third.status_code == 200
    page = httpx.get(f"{sandbox.url}/").text
    assert "1 post, 0 texts and 0 emails accepted; 3 requests in all." in page and "Road closed 2" in page
    received = httpx.get(f"{sandbox.url}/_sandbox/received", params={"platform": "mastodon"}).json()
    assert [r["status"] for r in received] == [429, 429, 200]
    httpx.post(f"{sandbox.url}/_sandbox/reset")
    assert sandbox.received() == []


def test_error_rate_is_seeded_and_reads_are_spared_by_default(sandbox):
    sandbox.fault("mastodon", error_rate=0.5, status=503)
    statuses = [post_status(sandbox.url, f"n{i}").status_code for i in range(40)]
    assert 5 < statuses.count(503) < 35
    assert httpx.get(f"{sandbox.url}/mastodon/api/v2/instance").status_code == 200


@pytest.mark.parametrize(("garbage", "content_type"),
                         [("html", "text/html"), ("truncated", "application/json"), ("content-type", "text/plain")])
def test_garbage_answers(sandbox, garbage, content_type):
    sandbox.fault("mastodon", garbage=garbage)
    response = post_status(sandbox.url)
    assert response.status_code == 200 and response.headers["content-type"].startswith(content_type)


def test_auth_is_checked_like_the_platform(sandbox):
    response = post_status(sandbox.url, token="nope")
    assert response.status_code == 401 and response.json() == {"error": "The access token is invalid"}
    assert sandbox.received(accepted=True) == []
