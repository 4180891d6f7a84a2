"""The fallback page as a reader (and a screen reader) gets it: the answer first, both languages, small and plain."""

import re
from dataclasses import replace
from datetime import datetime, timedelta

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from sitekit import T0, MemoryStore, hostile_alert, incident_row, make_alert, populate, save, with_page
from test_cap import TEXT

from broadcast.errors import ConfigError
from broadcast.public import page
from broadcast.public.pageconfig import page_settings
from broadcast.public.site import build_site
from broadcast.store import Store
from broadcast.workspace import Workspace

pytest_plugins = ("pagekit",)  # store: an empty log; example: the example workspace

PAGES = ("index.html", "cy/index.html")


def html(data: bytes):
    return lxml.html.fromstring(data)


def text(element) -> str:
    return re.sub(r"\s+", " ", element.text_content()).strip()


def winter_morning(workspace, store):
    """A flood warning, a list of closed schools, and a road closure that has been reopened."""
    save(store, make_alert(workspace, "A-2026-0001", template="school-closures", incident="snow"))
    save(store, make_alert(workspace, "A-2026-0002", minutes=5, template="flood-warning", incident="flood"))
    road = save(store, make_alert(workspace, "A-2026-0003", minutes=-60, template="road-closure", incident="road"))
    save(store, make_alert(workspace, "A-2026-0004", minutes=-10, template="all-clear", incident="road",
                           msg_type="Update", references=(road.identifier,)))
    return build_site(workspace, store, now=T0 + timedelta(minutes=30))


def test_the_index_leads_with_the_answer(example, store):
    page = html(winter_morning(example, store).files["index.html"])
    main = text(page.find(".//main"))
    assert main.startswith("Emergency alerts 2 current alerts. This page was last published at 07:12 GMT, "
                           "Monday 23 November 2026.")
    assert main.index("Schools") < main.index("Current alerts") < main.index("Ended recently")
    items = [text(li) for li in page.find_class("list")[0]]
    assert items[0].startswith("Flood warning: Afon Lliw valley")  # Severe before Minor
    assert items[1].startswith("Some schools are closed")
    assert page.find_class("list")[0][0].xpath("a/@href") == ["incidents/flood.html"]
    assert items[0].endswith("Updated 06:47 GMT.")  # its headline names the area: it is not said twice
    assert items[1].endswith("Updated 06:42 GMT. Area: All of Bryngwyn county")  # a headline that does not
    assert page.findtext(".//title") == "2 current alerts – Bryngwyn County Council"


def test_a_snow_day_gives_a_plain_list_of_schools(example, store):
    page = html(winter_morning(example, store).files["index.html"])
    schools = [text(li) for li in page.xpath("//h2[.='Schools']/following-sibling::ul[1]/li")]
    assert schools == ["Bryngwyn High School: closed, updated 06:42 GMT",
                       "Ysgol Bro Lliw: closed, updated 06:42 GMT",
                       "Ysgol Gynradd Hillside: closed, updated 06:42 GMT"]
    welsh = html(build_site(example, store, now=T0 + timedelta(minutes=30)).files["cy/index.html"])
    assert "Ysgol Bro Lliw: ar gau, diweddarwyd 06:42 GMT" in text(welsh)


def test_a_later_list_replaces_the_earlier_one_and_says_late_start(workspace):
    first = replace(hostile_alert("Snow", "A-2026-0001", "snow"), variables={"schools": "Ysgol A; Ysgol B"})
    later = replace(hostile_alert("Snow", "A-2026-0002", "snow"), sent="2026-11-23T07:30:00-00:00",
                    msg_type="Update", references=("A-2026-0001",),
                    variables={"schools": "Ysgol B", "school_status": "late-start"})
    site = build_site(workspace, MemoryStore([first, later], [incident_row("snow", "Snow")]), now=T0)
    items = [text(li) for li in html(site.files["index.html"]).xpath("//h2[.='Schools']/following-sibling::ul[1]/li")]
    assert items == ["Ysgol B: late start, updated 07:30 GMT"]


def test_an_incident_page_shows_updates_newest_first_with_the_all_clear_on_top(example, store):
    site = winter_morning(example, store)
    page = html(site.files["incidents/road.html"])
    assert page.findtext(".//title").startswith("All clear: ")
    assert text(page.find(".//h1")).startswith("All clear ")
    headings = [text(h) for h in page.xpath("//article/h2")]
    assert headings[0].startswith("All clear ") and headings[1].startswith("Alert ")
    assert [a.get("id") for a in page.xpath("//article")] == ["A-2026-0004", "A-2026-0003"]
    assert page.xpath("//article[1]//a[@type='application/cap+xml']/@href") == ["../cap/A-2026-0004.xml"]
    assert text(page.xpath("//article[2]//h3")[0]) == "What to do"
    flood = html(site.files["incidents/flood.html"])
    assert flood.findtext(".//title") == ("Current: Flood warning: Afon Lliw valley, Pont-y-Lliw to Cwm Lliw. "
                                          "Flooding expected from 9am on Monday 23 November 2026 – "
                                          "Bryngwyn County Council")


def test_every_page_links_to_its_other_language(example, store):
    site = winter_morning(example, store)
    pairs = [("index.html", "cy/index.html", "cy/index.html", "../index.html"),
             ("incidents/flood.html", "cy/incidents/flood.html", "../cy/incidents/flood.html",
              "../../incidents/flood.html")]
    for english, welsh, to_welsh, to_english in pairs:
        en, cy = html(site.files[english]), html(site.files[welsh])
        assert en.get("lang") == "en-GB" and cy.get("lang") == "cy-GB"
        assert en.xpath("//nav/a/@href") == [to_welsh] and text(en.xpath("//nav/a")[0]) == "Cymraeg"
        assert cy.xpath("//nav/a/@href") == [to_english] and text(cy.xpath("//nav/a")[0]) == "English"
        assert en.xpath("//head/link[@hreflang='cy-GB']/@href") == [to_welsh]
    cy = html(site.files["cy/incidents/flood.html"])
    assert text(cy.find(".//h1")).startswith("Cyfredol Rhybudd llifogydd: Dyffryn Afon Lliw")
    assert "Beth i'w wneud" in text(cy)


def test_each_page_has_the_structure_assistive_technology_needs(example, store):
    site = winter_morning(example, store)
    for path in (*PAGES, "incidents/flood.html", "cy/incidents/road.html"):
        page = html(site.files[path])
        assert len(page.xpath("//h1")) == 1, path
        assert [e.tag for e in page.find("body")] == ["a", "header", "main", "footer"]
        skip = page.find("body")[0]
        assert skip.get("href") == "#main" and page.xpath("//main/@id") == ["main"]
        levels = [int(h.tag[1]) for h in page.xpath("//h1|//h2|//h3")]
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), path
        for moment in page.xpath("//time/@datetime"):
            assert datetime.fromisoformat(moment).utcoffset() is not None
        assert page.xpath("//nav/@aria-label")


def test_no_javascript_and_no_external_requests(example, store):
    site = winter_morning(example, store)
    for path, data in site.files.items():
        if not path.endswith(".html"):
            continue
        page = html(data)
        assert not page.xpath("//script|//img|//iframe|//object|//embed|//link[@rel='stylesheet']"), path
        assert not page.xpath("//@src|//@style|//@*[starts-with(name(), 'on')]"), path
        assert not page.xpath("//a[starts-with(@href, 'javascript:')]"), path
        css = page.findtext(".//style")
        assert "url(" not in css and "@import" not in css and "@font-face" not in css
        assert "@media print" in css
        for link in page.xpath("//head/link"):
            assert link.get("rel") == "license" or not link.get("href").startswith(("http:", "https:", "//"))


def test_feed_autodiscovery_links(example, store):
    page = html(winter_morning(example, store).files["cy/incidents/flood.html"])
    found = {link.get("type"): link.get("href") for link in page.xpath("//head/link[@rel='alternate'][@type]")}
    assert found == {"application/atom+xml": "../../cy/feed.atom", "application/rss+xml": "../../cy/feed.rss",
                     "application/json": "../../status.json"}


def test_the_index_fits_14000_bytes_with_20_open_incidents(example, store):
    now = populate(example, store, incidents=20, updates=3)
    site = build_site(example, store, now=now)
    assert len(site.summary.current) == 20
    for path in PAGES:
        assert len(site.files[path]) <= 14_000, path
        items = html(site.files[path]).find_class("list")[0]
        assert len(items) == 20
    # The most severe keep their instructions when not all of them fit.
    first = html(site.files["index.html"]).find_class("list")[0][0]
    assert "Leave now." in text(first) or "Act now." in text(first)


def index_rendered_twice(summary, language):
    """The index as it was made before one render was enough when every instruction fits: rendered without them,
    then again with as many as fit, most severe first (the oracle)."""
    from markupsafe import escape

    template = page._environment().get_template("index.html")
    context = page.index_context(summary, language)
    made = page.utf8(template.render(context, detail=0))
    room, detail = page.INDEX_BUDGET - len(made), 0
    for incident in summary.current:
        info = page._info(incident.latest, language)
        cost = len(page.utf8(f"<br>{escape(info.instruction)}")) if info and info.instruction else 0
        if cost > room:
            break
        room, detail = room - cost, detail + 1
    return page.utf8(template.render(context, detail=detail)) if detail else made


@pytest.mark.parametrize("incidents", [1, 4, 40])
def test_the_index_keeps_the_instructions_that_fit_as_the_oracle_does(example, store, incidents):
    now = populate(example, store, incidents=incidents, updates=2)
    summary = build_site(example, store, now=now).summary
    for language in example.languages:
        made = page.render_index(summary, language)
        assert made == index_rendered_twice(summary, language)
        assert len(made) <= page.INDEX_BUDGET
        bare = page._environment().get_template("index.html").render(page.index_context(summary, language), detail=0)
        shown = made.count(b"<br>") - bare.count("<br>")  # the instructions' lines
        assert (shown == incidents) == (incidents < 40), shown  # all fit at 1 and 4; not at 40


def test_the_about_line_says_who_publishes_how_often_it_is_checked_and_the_licence(workspace_dir, store):
    workspace = with_page(workspace_dir, 'check_minutes = 10\nlicence = "CC-BY-4.0"\n'
                          'about = { en = "Published by the Testshire emergency planning team.", '
                          'cy = "Cyhoeddwyd gan dîm cynllunio argyfwng Testshire." }\n')
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"))
    site = build_site(workspace, store, now=T0)
    footer = html(site.files["index.html"]).find(".//footer")
    assert text(footer).startswith("About this page Published by the Testshire emergency planning team. We check it "
                                   "at least every 10 minutes while an alert is current. To talk to us, call "
                                   "01632 960001.")
    assert footer.xpath(".//a[@rel='license']/@href") == ["https://creativecommons.org/licenses/by/4.0/"]
    assert "You may republish this information under the Creative Commons Attribution 4.0" in text(footer)
    welsh = html(site.files["cy/incidents/snow.html"]).find(".//footer")
    assert "Cyhoeddwyd gan dîm cynllunio argyfwng Testshire. Rydyn ni'n ei gwirio o leiaf bob 10 munud" in text(welsh)


def test_the_default_is_the_open_government_licence(workspace, store):
    save(store, make_alert(workspace, "A-2026-0001", incident="snow"))
    footer = html(build_site(workspace, store, now=T0).files["incidents/snow.html"]).find(".//footer")
    assert "This page is published by Testshire Council. We check it at least every 15 minutes" in text(footer)
    assert "Open Government Licence v3.0" in text(footer)


def test_exercises_are_hidden_unless_the_workspace_shows_them_and_then_marked(workspace_dir, tmp_path):
    def build(workspace):
        store = Store.open(tmp_path / f"{id(workspace)}.db")
        save(store, make_alert(workspace, "A-2026-0001", incident="drill", status="Exercise",
                               note="Exercise Frosty Morning"), "Drill: school closed", exercise=True)
        return build_site(workspace, store, now=T0)

    hidden = build(Workspace(workspace_dir))
    assert "incidents/drill.html" not in hidden.files
    assert "No current alerts" in text(html(hidden.files["index.html"]))
    shown = build(with_page(workspace_dir, "show_exercises = true\n"))
    page = html(shown.files["incidents/drill.html"])
    assert page.findtext(".//title").startswith("EXERCISE – Current: ")
    assert text(page.find(".//h1")).startswith("EXERCISE Current")
    assert "This is an exercise, not a real emergency. You do not need to do anything." in text(page)
    assert "Exercise Frosty Morning" in text(page)
    assert text(html(shown.files["cy/index.html"]).find_class("list")[0]).startswith("YMARFER Drill")


def test_times_say_their_zone_in_winter_and_summer(workspace, store):
    save(store, make_alert(workspace, "A-2026-0001", incident="winter"))
    save(store, make_alert(workspace, "A-2026-0002", minutes=60 * 24 * 200, incident="summer"))
    site = build_site(workspace, store, now=T0 + timedelta(days=200))
    summer = html(site.files["incidents/summer.html"]).xpath("//article//time")[0]
    assert summer.get("datetime") == "2027-06-11T07:42:00+01:00"
    assert summer.text == "07:42 BST, Friday 11 June 2027"
    winter = html(site.files["cy/incidents/winter.html"]).xpath("//article//time")[0]
    assert winter.get("datetime") == "2026-11-23T06:42:00+00:00"
    assert winter.text == "06:42 GMT, Dydd Llun 23 Tachwedd 2026"


@pytest.mark.parametrize("section, key, says", [
    ("licenc = \"OGL-3.0\"\n", "page.licenc", "did you mean 'page.licence'?"),
    ("licence = \"GPL\"\n", "page.licence", "use one of OGL-3.0, CC-BY-4.0, CC0-1.0"),
    ("check_minutes = \"15\"\n", "page.check_minutes", "expected a whole number of minutes"),
    ("check_minutes = 0\n", "page.check_minutes", "give 1 to 1440 minutes"),
    ("show_exercises = \"yes\"\n", "page.show_exercises", "expected true or false"),
    ("about = { en = \"x\" }\n", "page.about", "no text for language 'cy'"),
    ("targets = []\n", "page.targets", "add at least one"),
    ("[[page.targets]]\nkind = \"ftp\"\n", "page.targets[0].kind", "one of: directory, s3, command"),
    ("[[page.targets]]\nkind = \"s3\"\n", "page.targets[0].bucket", "expected the bucket name"),
    ("[[page.targets]]\nkind = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"hunter2-secret\"\n",
     "page.targets[0].secret_access_key", "must be a reference such as env:NAME"),
    ("[[page.targets]]\nkind = \"command\"\ncommand = [\"rsync\"]\n", "page.targets[0].check_url",
     "read back and checked"),
    ("[[page.targets]]\nkind = \"directory\"\n[[page.targets]]\nkind = \"directory\"\npath = \"b\"\n",
     "page.targets[1].name", "a second target named 'directory'"),
])
def test_page_settings_errors_name_the_file_the_key_and_what_is_expected(workspace_dir, section, key, says):
    workspace = with_page(workspace_dir, section)
    with pytest.raises(ConfigError) as caught:
        page_settings(workspace)
    error = caught.value
    assert error.key == key and str(workspace.config_path) in error.message
    assert says in f"{error.message} {error.hint}"
    assert "hunter2" not in f"{error.message} {error.hint}"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text_=TEXT)
def test_hostile_text_is_escaped_in_every_page(workspace, text_):
    store = MemoryStore([hostile_alert(text_)], [incident_row("hostile", text_)])
    files = build_site(workspace, store, now=T0).files
    shown = text_.strip()
    for path in ("index.html", "cy/index.html", "incidents/hostile.html", "cy/incidents/hostile.html"):
        page = html(files[path])
        assert not page.xpath("//script"), path
        title = page.xpath("//h1//bdi")[0] if "incidents/" in path else page.xpath("//ul[@class='list']/li/a")[0]
        assert title.text_content() == text_, path
    article = html(files["incidents/hostile.html"]).xpath("//article")[0]
    assert article.xpath("h2")[0].text_content() == "Alert " + text_
    assert [p.text_content() for p in article.xpath("div/p")][:2] == [shown, shown]
    school = html(files["index.html"]).xpath("//h2[.='Schools']/following-sibling::ul[1]/li")[0]
    assert school.text_content().startswith(shown + ": closed, updated "), school.text_content()


@pytest.mark.parametrize("title, isolated", [("Snow: Hillside", False), ("مدرسة الأمل مغلقة", True),
                                             ("Snow \u202eesolc", True), ("Eira: Ysgol Bro Lliw", False)])
def test_text_that_could_reorder_the_page_is_isolated_and_plain_text_is_not(workspace, title, isolated):
    files = build_site(workspace, MemoryStore([hostile_alert(title)], [incident_row("hostile", title)]), now=T0).files
    for path in ("index.html", "cy/index.html"):
        [link] = html(files[path]).xpath("//ul[@class='list']/li/a")
        assert link.text_content() == title
        assert [b.text_content() for b in link.xpath("bdi")] == ([title] if isolated else []), path
    assert html(files["incidents/hostile.html"]).xpath("//h1//bdi")[0].text_content() == title
