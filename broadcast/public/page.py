"""The fallback page: index.html (current alerts first) and one page per incident, in each configured language."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from broadcast.public.feeds import language_prefix
from broadcast.public.pagetext import clock, count_text, local, long_time, machine_time, utc_time, utf8, words

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jinja2 import Environment
    from markupsafe import Markup

    from broadcast.alert import Info
    from broadcast.public.buildcache import BuildCache
    from broadcast.public.summary import Incident, Summary, Update

# Bidirectional classes that can reorder neighbouring text: right-to-left letters and numbers, and explicit controls.
BIDI_CLASSES = frozenset({"R", "AL", "AN", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
INDEX_BUDGET = 14_000  # bytes: what fits in the first TCP round trip on a slow phone connection
# System fonts, no images; colour never carries meaning alone (every status is a word); print drops the chrome.
CSS = (
    "html{font:112.5%/1.5 system-ui,sans-serif;color:#0b0c0c;background:#fff}"
    "body{max-width:40rem;margin:0 auto;padding:0 1rem 2rem;overflow-wrap:anywhere}"
    "a{color:#1d4f91}a:visited{color:#4c2c92}"
    "a:focus{outline:3px solid;background:#fd0;color:#0b0c0c;text-decoration:none}"
    ".skip{position:absolute;left:-9999px}.skip:focus{position:static;display:inline-block;padding:.25rem}"
    "header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:0 1rem;"
    "border-bottom:.3rem solid #0b0c0c}header p{font-weight:700;margin:.5rem 0}"
    "nav a{display:inline-block;padding:.25rem 0}h1{font-size:1.7rem;line-height:1.2}"
    "h2{font-size:1.3rem;margin-top:2rem}h3{font-size:1.1rem;margin:0}.list{list-style:none;padding:0}"
    ".list>li{border-top:1px solid #b1b4b6;padding:.5rem 0}.list a{font-weight:700}"
    ".tag{display:inline-block;padding:0 .3rem;font-weight:700;color:#fff;background:#505a5f}"
    ".current{background:#942514}.all-clear{background:#005a30}"
    ".marker,.note{color:#0b0c0c;background:#fd0;outline:2px dashed #0b0c0c}.note{padding:.5rem}"
    "footer{border-top:1px solid #b1b4b6;margin-top:2rem;font-size:.9rem}"
    "@media print{.skip,nav{display:none}html{font-size:11pt}body{max-width:none}a{color:#0b0c0c}"
    ".tag{color:#0b0c0c;background:none;border:1px solid}}"
)


def render_pages(summary: Summary, cache: BuildCache | None = None, fingerprints: Mapping[str, str] | None = None,
                 ) -> dict[str, bytes]:
    """Every HTML file of the site, by path relative to the site root. With a cache (and each alert's fingerprint),
    an incident page made before from the same incident, settings and code is taken from it, not rendered again."""
    files = {}
    site = (summary.workspace.languages, summary.workspace.timezone, summary.workspace.organisation, summary.settings)
    for language in summary.workspace.languages:
        prefix = language_prefix(summary, language)
        files[f"{prefix}index.html"] = render_index(summary, language)
        for incident in summary.incidents:
            path = f"{prefix}{incident.page}"
            if cache is None or fingerprints is None:
                files[path] = render_incident(summary, incident, language)
                continue
            # Everything an incident page shows comes from this key: so it never shows the build time or the log's
            # head, which change on every build (the index shows those).
            alerts = [fingerprints[update.alert.identifier] for update in incident.updates]
            key = cache.key("incident", path, language, site, incident.slug, incident.title, incident.state,
                            incident.status, incident.marker, alerts)
            files[path] = cache.get(key) or cache.put(key, render_incident(summary, incident, language))
    return files


def render_index(summary: Summary, language: str) -> bytes:
    """The index, with each current alert's instruction while the page stays within its byte budget: the most
    severe keep theirs when there is not room for all."""
    from markupsafe import escape

    template = _environment().get_template("index.html")
    context = index_context(summary, language)
    costs = []  # an instruction adds exactly its own line: what each adds is known without rendering again
    for incident in summary.current:
        info = _info(incident.latest, language)
        costs.append(len(utf8(f"<br>{escape(info.instruction)}")) if info and info.instruction else 0)
    page = utf8(template.render(context, detail=len(costs)))  # usually all fit: one render
    if len(page) <= INDEX_BUDGET:
        return page
    room, detail = INDEX_BUDGET - (len(page) - sum(costs)), 0
    for cost in costs:  # the most severe first
        if cost > room:
            break
        room, detail = room - cost, detail + 1
    return utf8(template.render(context, detail=detail))


def render_incident(summary: Summary, incident: Incident, language: str) -> bytes:
    return utf8(_environment().get_template("incident.html").render(incident_context(summary, incident, language)))


def index_context(summary: Summary, language: str) -> dict[str, Any]:
    """What index.html is rendered from (with `detail`, how many current alerts show their instruction)."""
    context = _context(summary, language, "index.html")
    count = count_text(language, len(summary.current))
    context.update(count=count, generated=summary.generated, schools=summary.schools, current=summary.current,
                   ended=summary.ended, title=f"{count} – {context['org']}")
    return context


def incident_context(summary: Summary, incident: Incident, language: str) -> dict[str, Any]:
    """What incident.html is rendered from."""
    said = words(language)
    status = said[f"status_{incident.status}"]
    if incident.marker:
        status = f"{said['marker_' + incident.marker]} – {status}"
    context = _context(summary, language, incident.page)
    context.update(incident=incident, title=f"{status}: {context['title_of'](incident)[0]} – {context['org']}")
    return context


def _context(summary: Summary, language: str, page: str) -> dict[str, Any]:
    """What every page needs: where it is, its words, its language links and the footer."""
    from markupsafe import Markup, escape

    workspace, settings = summary.workspace, summary.settings
    zone, said = workspace.timezone, words(language)
    root = "../" * (language_prefix(summary, language) + page).count("/")
    org = workspace.organisation

    def say(key: str, **parts: Any) -> Markup:
        return escape(said[key]).format(**parts)

    index = page == "index.html"  # the index is on a byte budget: its times carry the shorter UTC form

    def when(moment: datetime) -> Markup:
        return _time(moment, zone, language, True, index)

    def at(moment: datetime) -> Markup:
        return _time(moment, zone, language, False, index)

    about = settings.about.get(language) if settings.about else said["published_by"].format(
        org=org.name.get(language))
    return {
        "lang": language, "t": said, "root": root, "prefix": language_prefix(summary, language),
        "home": root + language_prefix(summary, language) + "index.html",
        "alternates": [{"lang": other, "name": words(other)["language_name"],
                        "href": root + language_prefix(summary, other) + page}
                       for other in workspace.languages if other != language],
        "org": org.name.get(language), "phone": org.phone, "about": about, "check_minutes": settings.check_minutes,
        "licence": settings.licence, "licence_name": settings.licence.name.get(language),
        # The log's head on the index only: on every page it would change every page with every event logged.
        "log_count": f"{summary.log[0]:,}", "log_head": summary.log[1] if index else "",
        "css": Markup(CSS), "say": say, "when": when, "clock": at, "link": _link,
        "info_of": lambda update: _info(update, language), "areas": _areas, "unsaid": _unsaid,
        "isolated": lambda text, of=language: _isolated(text, of, language),
        "title_of": lambda incident: incident.title_in(language, workspace.languages[0]),
        "today": lambda moment: _time(moment, zone, language, local(moment, zone).date() !=
                                      local(summary.generated, zone).date(), index),
    }


@lru_cache(maxsize=8192)
def _time(moment: datetime, zone: str, language: str, long: bool, short: bool = False) -> Markup:
    """<time datetime="2026-11-23T06:42:00+00:00">06:42 GMT, Monday 23 November 2026</time> (or just 06:42 GMT);
    `short` gives the instant in UTC, as <time datetime="2026-11-23T06:42Z">."""
    from markupsafe import Markup, escape

    text = long_time(moment, zone, language) if long else clock(moment, zone)
    return Markup(f'<time datetime="{utc_time(moment) if short else machine_time(moment, zone)}">{escape(text)}</time>')


def _link(href: str, text: str, **attributes: str) -> Markup:
    from markupsafe import Markup, escape

    extra = "".join(f' {k}="{escape(v)}"' for k, v in attributes.items())
    return Markup(f'<a href="{escape(href)}"{extra}>{escape(text)}</a>')


def _info(update: Update, language: str) -> Info | None:
    return update.alert.info(language) if update.alert.infos else None


def _areas(info: Info) -> str:
    return "; ".join(area.desc for area in info.areas)


def _unsaid(info: Info, *shown: str) -> str:
    """The areas, unless the text already shown names every one of them (as a headline 'What: where' does)."""
    said = " ".join(shown).casefold()
    return "" if info.areas and all(area.desc.casefold() in said for area in info.areas) else _areas(info)


def _isolated(text: str, of: str, language: str) -> Markup:
    """Text from an alert, a list or the log in a <bdi> when it could change the order of what is around it (it has
    right-to-left or direction characters; the page itself is always left to right), with its language when that
    is not the page's."""
    from markupsafe import Markup, escape

    if of != language:
        return Markup(f'<bdi lang="{escape(of)}">{escape(text)}</bdi>')
    if text.isascii() or not any(unicodedata.bidirectional(c) in BIDI_CLASSES for c in text):
        return escape(text)
    return Markup(f"<bdi>{escape(text)}</bdi>")


def _paragraphs(text: str) -> Markup:
    """Plain text to paragraphs: a blank line starts a new one, a single line break stays a break."""
    from markupsafe import Markup, escape

    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("\n".join("<p>" + "<br>".join(str(escape(line)) for line in b.split("\n")) + "</p>" for b in blocks))


@cache
def _environment() -> Environment:
    """Its own autoescaping environment: the page is not rendered in the template sandbox."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from broadcast.jinjacache import bytecode_cache

    env = Environment(loader=PackageLoader("broadcast", "data/page"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False, bytecode_cache=bytecode_cache("page"))
    env.filters["paragraphs"] = _paragraphs
    return env
