"""The sandbox's web page for a training room: what landed, as each kind of platform shows it.

Social posts as a timeline, texts as a phone's message threads, emails as an inbox; every raw request below,
for whoever needs the detail. A training room can ask it to refresh itself every few seconds (`?refresh=5`): an
opt-in, as WCAG 2.2.1 wants, never the default.
"""

from __future__ import annotations

import html
import json
from typing import Any

from broadcast.words import counted

REFRESH_SECONDS = 5


def post_text(platform: str, body: Any) -> str:
    """The words of a post as its platform shows them, from the request the sandbox received."""
    if not isinstance(body, dict):
        return str(body)
    if platform == "bluesky":
        return str((body.get("record") or {}).get("text", ""))
    if platform == "teams":
        cards = [a.get("content") or {} for a in body.get("attachments") or [] if isinstance(a, dict)]
        return "\n".join(str(block.get("text", "")) for card in cards for block in card.get("body") or []
                         if isinstance(block, dict) and block.get("text"))
    if platform == "webhook":
        return "\n".join(str(body[k]) for k in ("headline", "description", "instruction") if body.get(k))
    if platform == "notify":
        return str((body.get("personalisation") or {}).get("message", ""))
    for key in ("status", "text", "message", "Body"):  # Mastodon, X/Telegram/Slack, Facebook, Twilio
        if body.get(key):
            return str(body[key])
    return json.dumps(body, ensure_ascii=False)[:300]


def kind_of(platform: str, body: Any) -> str:
    if platform == "smtp" or (platform == "notify" and isinstance(body, dict) and "email_address" in body):
        return "email"
    if platform in ("notify", "twilio"):
        return "sms"
    return "social"


def render(received: list[Any], requests: int, refresh: int | None = None) -> str:
    """The whole page: a timeline, message threads, an inbox, then the raw requests."""
    accepted = [r for r in received if r.accepted]
    social = [r for r in accepted if kind_of(r.platform, r.body) == "social"]
    texts = [r for r in accepted if kind_of(r.platform, r.body) == "sms"]
    mail = [r for r in accepted if kind_of(r.platform, r.body) == "email"]

    def esc(value: Any) -> str:
        return html.escape(str(value))

    timeline = "".join(
        f"<li><p class='who'>{esc(r.platform)} &middot; {esc(r.target)}</p><p class='post'>"
        f"{esc(post_text(r.platform, r.body))}</p></li>" for r in reversed(social)) or "<li>Nothing yet.</li>"
    threads: dict[str, list[str]] = {}
    for r in texts:
        number = r.body.get("phone_number") or r.body.get("To") if isinstance(r.body, dict) else "?"
        threads.setdefault(str(number), []).append(post_text(r.platform, r.body))
    phones = "".join(
        f"<section class='phone'><h3>{esc(number)}</h3>" + "".join(f"<p class='bubble'>{esc(text)}</p>"
                                                                    for text in messages) + "</section>"
        for number, messages in list(threads.items())[:12]) or "<p>No texts yet.</p>"
    more = f"<p>and {len(threads) - 12:,} more people.</p>" if len(threads) > 12 else ""
    inbox = "".join(
        f"<tr><td>{esc(', '.join(r.body.get('to') or []) if r.platform == 'smtp' else r.body.get('email_address'))}"
        f"</td><td>{esc(r.body.get('subject') or (r.body.get('personalisation') or {}).get('subject', ''))}</td>"
        f"<td>{esc(r.body.get('text') or post_text(r.platform, r.body))[:200]}</td></tr>" for r in reversed(mail)
    ) or "<tr><td colspan='3'>No email yet.</td></tr>"
    raw = "".join(
        f"<tr><td>{esc(r.platform)}</td><td>{esc(r.target)}</td><td>{esc(r.method)} {esc(r.path)}</td>"
        f"<td>{r.status}</td><td>{'new post' if r.accepted else ''}</td>"
        f"<td><pre>{esc(json.dumps(r.body, ensure_ascii=False)[:600])}</pre></td></tr>" for r in reversed(received))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        + (f"<meta http-equiv='refresh' content='{refresh}'>" if refresh else "") + "<title>broadcast sandbox</title>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'><style>"
        "body{font-family:system-ui,sans-serif;margin:1rem;max-width:70rem}ul{list-style:none;padding:0}"
        ".timeline li{border:1px solid #bbb;border-radius:.5rem;padding:.5rem 1rem;margin:.5rem 0}"
        ".who{color:#505a5f;margin:0}.post{white-space:pre-wrap}"
        ".phones{display:flex;flex-wrap:wrap;gap:1rem}.phone{border:2px solid #333;border-radius:1rem;padding:.5rem;"
        "width:16rem}.bubble{background:#e8f0fe;border-radius:1rem;padding:.5rem;white-space:pre-wrap}"
        "table{border-collapse:collapse}td,th{border-top:1px solid #ccc;vertical-align:top;padding:.25rem;"
        "text-align:left}pre{white-space:pre-wrap;margin:0}</style></head><body><main>"
        "<h1>broadcast sandbox: what each platform received</h1>"
        f"<p>{counted(len(social), 'post')}, {counted(len(texts), 'text')} and {counted(len(mail), 'email')} accepted; "
        f"{counted(requests, 'request')} in all."
        " Nothing here left this computer. "
        + ("<a href='/'>Stop refreshing</a>" if refresh else
           f"<a href='/?refresh={REFRESH_SECONDS}'>Refresh every {REFRESH_SECONDS} seconds</a>") + "</p>"
        f"<h2>Timeline</h2><ul class='timeline'>{timeline}</ul>"
        f"<h2>Texts</h2><div class='phones'>{phones}</div>{more}"
        "<h2>Inbox</h2><table><tr><th scope='col'>to</th><th scope='col'>subject</th><th scope='col'>text</th></tr>"
        f"{inbox}</table>"
        "<h2>Every request</h2><details><summary>Show the raw requests</summary><table><tr>"
        "<th scope='col'>platform</th><th scope='col'>target</th><th scope='col'>request</th>"
        "<th scope='col'>status</th><th scope='col'>result</th><th scope='col'>body</th></tr>"
        f"{raw}</table></details></main></body></html>")
