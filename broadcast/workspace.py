"""Find and load a workspace: broadcast.toml, templates/, channels/, runbooks/, areas/."""

from __future__ import annotations

import json
import os
import pickle
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from broadcast.errors import ConfigError

CONFIG = "broadcast.toml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
CAP_TEXT_RE = re.compile(r"^[^\s,<&]+$")
SECRET_REF_RE = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
CHANNEL_KINDS = (
    "webhook", "mastodon", "bluesky", "telegram", "slack", "teams", "facebook", "x",
    "twilio", "govuk-notify", "smtp", "page",
)
TOP_LEVEL_KEYS = {"languages", "timezone", "database", "default_area", "organisation", "page", "fanout", "policy",
                  "watch", "store"}
ORGANISATION_KEYS = {"name", "sender", "phone", "web"}
CHANNEL_KEYS = {"kind", "description", "languages", "exercise", "enabled", "settings", "secrets"}


def primary_tag(language: str) -> str:
    """Return the primary language subtag: 'cy' for 'cy-GB'."""
    return language.split("-", 1)[0].lower()


# A TOML file's bytes -> what they parse to, pickled: a process that warns again (a watcher, a benchmark, a service
# using the library) reads every channel file each time, and a pickle loads at a twentieth of a parse's cost, as a
# fresh copy the caller may change. Keyed by the content itself, so an edited file is simply parsed anew.
_PARSED: dict[bytes, bytes] = {}
PARSED_KEPT = 1024


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every way it can fail into a ConfigError that names the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    if (parsed := _PARSED.get(data)) is not None:
        return pickle.loads(parsed)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}", "fix the line shown; see the example in "
                          "`broadcast init`") from None
    if len(_PARSED) >= PARSED_KEPT:
        _PARSED.clear()
    _PARSED[data] = pickle.dumps(table, pickle.HIGHEST_PROTOCOL)
    return table


def check_keys(path: Path, table: dict[str, Any], allowed: set[str], prefix: str = "") -> None:
    """Refuse unknown keys, suggesting the nearest known one."""
    for key in table:
        if key not in allowed:
            from difflib import get_close_matches  # only for a mistake: a good file never needs it

            near = get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean '{prefix}{near[0]}'?" if near else f"known keys: {', '.join(sorted(allowed))}"
            raise ConfigError(path, prefix + key, "unknown key", hint)


def expect(path: Path, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        got = "nothing: it is missing" if value is None else f"{type(value).__name__} {value!r}"
        raise ConfigError(path, key, f"expected {what}, got {got}")
    return value


def postgres_url(value: str, file: object, key: str | None, why: str) -> str:
    """A PostgreSQL URL given as env:NAME (read from the environment) or written out without a password (`why` says
    where a written one would end up); anything else is a ConfigError naming `file` and `key`."""
    import os
    from urllib.parse import urlsplit

    hint = ('write env:BROADCAST_STORE_URL and export BROADCAST_STORE_URL=postgresql://user:password@host/db in the '
            "shell that runs broadcast (or keep the password in ~/.pgpass)")
    if SECRET_REF_RE.match(value):
        name = value.removeprefix("env:")
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigError(file, key, f"the environment variable {name} is not set",
                              f"export {name}=postgresql://user:password@host:5432/broadcast")
    elif urlsplit(value).password is not None:
        raise ConfigError(file, key, f"holds a password: {why}", hint)
    if not value.startswith(("postgresql://", "postgres://")):
        raise ConfigError(file, key, "is not a PostgreSQL URL (postgresql://...)", hint)
    return value


def check_name(kind: str, name: str) -> str:
    """Names of templates, channels and areas become file names: refuse anything that is not a plain slug."""
    if not NAME_RE.match(name):
        raise ConfigError(
            kind, None, f"'{name}' is not a valid name",
            "use lower-case letters, digits and hyphens, starting with a letter or digit (e.g. school-closure)",
        )
    return name


def within(root: Path, path: Path) -> Path:
    """Refuse a workspace file that is a link (or in a linked folder) leading outside the workspace, as a ../ name
    is refused: a template, channel, area, runbook or list is what the workspace holds, nothing else."""
    target = path.resolve()
    if target != path.absolute() and not target.is_relative_to(root.resolve()):
        raise ConfigError(path, None, f"is a link to {target}, outside the workspace",
                          "copy the file into the workspace instead of linking to it")
    return path


@dataclass(frozen=True)
class Localized:
    """A piece of text given once, or once per language (keyed by primary tag)."""

    values: dict[str, str]

    def get(self, language: str) -> str:
        tag = primary_tag(language)
        if tag in self.values:
            return self.values[tag]
        return self.values.get("*") or next(iter(self.values.values()))

    @classmethod
    def parse(cls, path: Path, key: str, value: Any, languages: list[str]) -> Localized:
        if isinstance(value, str):
            return cls({"*": value})
        expect(path, key, value, dict, "text, or a table of text per language such as { en = \"…\", cy = \"…\" }")
        missing = [primary_tag(lang) for lang in languages if primary_tag(lang) not in value]
        if missing:
            raise ConfigError(path, key, f"no text for language '{missing[0]}'", f"add {missing[0]} = \"…\"")
        for tag, text in value.items():
            expect(path, f"{key}.{tag}", text, str, "text")
        return cls(dict(value))


@dataclass(frozen=True)
class Organisation:
    name: Localized
    sender: str
    phone: str
    web: str


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: str
    path: Path
    description: str = ""
    languages: tuple[str, ...] = ()
    exercise: bool = False
    enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokenChannel:
    """A channel file that cannot be used: its error names the file, the key and the fix."""

    name: str
    path: Path
    error: ConfigError
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Area:
    id: str
    name: Localized
    polygons: tuple[tuple[tuple[float, float], ...], ...]  # rings of (lat, lon), closed
    geocodes: dict[str, str]


class Workspace:
    """A loaded workspace. Templates, channels and areas are read when first asked for."""

    def __init__(self, root: Path):
        self.root = root
        self.config_path = root / CONFIG
        config = read_toml(self.config_path)
        check_keys(self.config_path, config, TOP_LEVEL_KEYS)
        self.config = config  # each module checks its own section (page, fanout, policy)
        self.languages = self._languages(config)
        self.timezone = self._timezone(config)
        self.organisation = self._organisation(config)
        self.default_area = expect(self.config_path, "default_area", config.get("default_area", ""), str,
                                   "the id of an area in areas/")
        self.db_path = root / expect(self.config_path, "database", config.get("database", "broadcast.db"), str,
                                     "a file name")

    def store_url(self) -> str | None:
        """The PostgreSQL log `[store] url` names (read from the environment when it says env:NAME), or None: the
        SQLite file `database`. A password is only ever taken from the environment."""
        section = expect(self.config_path, "store", self.config.get("store", {}), dict, "a [store] table")
        check_keys(self.config_path, section, {"url"}, "store.")
        if "url" not in section:
            return None
        value = expect(self.config_path, "store.url", section["url"], str, 'env:NAME or "postgresql://..."')
        return postgres_url(value, self.config_path, "store.url", "it would be in the file and in git")

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def channels_dir(self) -> Path:
        return self.root / "channels"

    @property
    def runbooks_dir(self) -> Path:
        return self.root / "runbooks"

    @property
    def areas_dir(self) -> Path:
        return self.root / "areas"

    @property
    def approvals_path(self) -> Path:
        return self.root / "approvals.toml"

    def _languages(self, config: dict[str, Any]) -> list[str]:
        languages = expect(self.config_path, "languages", config.get("languages", ["en-GB"]), list,
                           'a list such as ["en-GB", "cy-GB"]')
        if not languages:
            raise ConfigError(self.config_path, "languages", "empty list", 'name at least one, e.g. ["en-GB"]')
        for lang in languages:
            if not isinstance(lang, str) or not LANGUAGE_RE.match(lang):
                raise ConfigError(self.config_path, "languages", f"{lang!r} is not a language tag",
                                  "use tags such as en-GB or cy-GB")
        if len({primary_tag(lang) for lang in languages}) != len(languages):
            raise ConfigError(self.config_path, "languages", "two languages share a primary tag")
        return list(languages)

    def _timezone(self, config: dict[str, Any]) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = expect(self.config_path, "timezone", config.get("timezone", "Europe/London"), str, "a zone name")
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(self.config_path, "timezone", f"unknown time zone {name!r}",
                              "use an IANA name such as Europe/London") from None
        return name

    def _organisation(self, config: dict[str, Any]) -> Organisation:
        path = self.config_path
        org = expect(path, "organisation", config.get("organisation"), dict, "an [organisation] table")
        check_keys(path, org, ORGANISATION_KEYS, "organisation.")
        for key in sorted(ORGANISATION_KEYS):
            if key not in org:
                raise ConfigError(path, f"organisation.{key}", "missing", "see the example broadcast.toml")
        sender = expect(path, "organisation.sender", org["sender"], str, "text")
        if not CAP_TEXT_RE.match(sender):
            raise ConfigError(path, "organisation.sender", f"{sender!r} contains a space, comma, '<' or '&'",
                              "CAP forbids these; use an address such as emergencies@council.example")
        web = expect(path, "organisation.web", org["web"], str, "a URL")
        if not re.match(r"^https?://[^\s/]+", web):
            raise ConfigError(path, "organisation.web", f"{web!r} is not an http(s) URL",
                              "give the fallback page's address, e.g. https://alerts.council.example")
        return Organisation(
            name=Localized.parse(path, "organisation.name", org["name"], self.languages),
            sender=sender,
            phone=expect(path, "organisation.phone", org["phone"], str, "text"),
            web=web.rstrip("/"),
        )

    @property
    def channels(self) -> dict[str, ChannelConfig]:
        """Every valid channel file, by name (a broken one is in `broken_channels`, and fails alone)."""
        return self._channel_files[0]

    @property
    def broken_channels(self) -> dict[str, BrokenChannel]:
        """Channel files that cannot be used, with why: a send reports each as failed and goes on with the rest."""
        return self._channel_files[1]

    @cached_property
    def _channel_files(self) -> tuple[dict[str, ChannelConfig], dict[str, BrokenChannel]]:
        channels, broken = {}, {}
        # In a folder whose real path is in the workspace, a file that is not a link is in it too: only links need
        # resolving (a workspace with 200 webhooks resolved every component of 200 paths, and the root 200 times).
        # The folder's entries say which are links without a stat of each.
        settled = self.channels_dir.resolve().is_relative_to(self.root.resolve())
        try:
            with os.scandir(self.channels_dir) as entries:
                found = sorted((entry.name, entry.is_symlink()) for entry in entries if entry.name.endswith(".toml"))
        except (FileNotFoundError, NotADirectoryError):
            found = []
        for name, link in found:
            path = self.channels_dir / name
            try:
                channels[path.stem] = self._channel(path, inside=settled and not link)
            except ConfigError as error:
                broken[path.stem] = BrokenChannel(path.stem, path, error, self._languages_of(path))
        return channels, broken

    def _languages_of(self, path: Path) -> tuple[str, ...]:
        """The languages a broken channel file asks for, where they can be read; else the first language."""
        try:
            languages = read_toml(path).get("languages")
        except ConfigError:
            languages = None
        if isinstance(languages, list) and languages and all(tag in self.languages for tag in languages):
            return tuple(languages)
        return tuple(self.languages[:1])

    def _channel(self, path: Path, *, inside: bool = False) -> ChannelConfig:
        check_name(str(path), path.stem)
        if not inside:
            within(self.root, path)
        raw = read_toml(path)
        check_keys(path, raw, CHANNEL_KEYS)
        kind = raw.get("kind")
        if kind not in CHANNEL_KINDS:
            from difflib import get_close_matches

            near = get_close_matches(str(kind), CHANNEL_KINDS, n=1)
            raise ConfigError(path, "kind", f"unknown kind {kind!r}" if kind else "missing",
                              f"did you mean '{near[0]}'?" if near else f"one of: {', '.join(CHANNEL_KINDS)}")
        languages = expect(path, "languages", raw.get("languages", self.languages[:1]), list, "a list of languages")
        for lang in languages:
            if lang not in self.languages:
                raise ConfigError(path, "languages", f"{lang!r} is not one of the workspace's languages",
                                  f"broadcast.toml has: {', '.join(self.languages)}")
        secrets = expect(path, "secrets", raw.get("secrets", {}), dict, "a [secrets] table")
        for key, ref in secrets.items():
            if not isinstance(ref, str) or not SECRET_REF_RE.match(ref):
                # Never echo the value: it may be the secret itself.
                raise ConfigError(path, f"secrets.{key}", "must be a reference such as env:NAME, not a value",
                                  "put the secret in an environment variable and write env:THAT_NAME here")
        return ChannelConfig(
            name=path.stem,
            kind=kind,
            path=path,
            description=expect(path, "description", raw.get("description", ""), str, "text"),
            languages=tuple(languages),
            exercise=expect(path, "exercise", raw.get("exercise", False), bool, "true or false"),
            enabled=expect(path, "enabled", raw.get("enabled", True), bool, "true or false"),
            settings=expect(path, "settings", raw.get("settings", {}), dict, "a [settings] table"),
            secrets=secrets,
        )

    def template_names(self) -> list[str]:
        return sorted(p.stem for p in self.templates_dir.glob("*.md") if p.name != "README.md")

    @cached_property
    def areas(self) -> dict[str, Area]:
        return {path.stem: self._area(path) for path in sorted(self.areas_dir.glob("*.geojson"))}

    def _area(self, path: Path) -> Area:
        check_name(str(path), path.stem)
        within(self.root, path)
        hint = "export the area again as a GeoJSON Feature (WGS 84), e.g. from geojson.io"
        try:
            feature = json.loads(path.read_bytes().decode("utf-8"))
            props, geometry = feature["properties"], feature["geometry"]
            kind, geocodes = geometry.get("type"), props.get("geocode") or {}
            geocodes = {str(k): str(v) for k, v in geocodes.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(path, None, f"not a GeoJSON Feature with properties and geometry ({exc})", hint) from None
        if kind not in ("Polygon", "MultiPolygon"):
            raise ConfigError(path, "geometry.type", "expected Polygon or MultiPolygon")
        try:
            json.dumps(props, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a \ud800-style escape: half a character, which no page or channel can carry
            raise ConfigError(path, "properties", "a \\u escape stands for half a character (a lone surrogate)",
                              hint) from None
        try:
            coordinates = geometry["coordinates"]
            rings = [coordinates[0]] if kind == "Polygon" else [polygon[0] for polygon in coordinates]
            polygons = tuple(tuple((float(lat), float(lon)) for lon, lat in ring) for ring in rings)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise ConfigError(path, "geometry.coordinates", f"not rings of [longitude, latitude] ({exc})",
                              hint) from None
        if not polygons or not all(polygons) or not all(-90 <= lat <= 90 and -180 <= lon <= 180
                                                         for ring in polygons for lat, lon in ring):
            raise ConfigError(path, "geometry.coordinates", "an empty ring, or a point outside longitude -180..180 "
                              "and latitude -90..90", hint)
        return Area(
            id=path.stem,
            name=Localized.parse(path, "properties.name", props.get("name"), self.languages),
            polygons=polygons,
            geocodes=geocodes,
        )

    def area_default(self) -> Area | None:
        """The area a template without an area variable covers (default_area in broadcast.toml)."""
        if not self.default_area:
            return None
        if self.default_area not in self.areas:
            raise ConfigError(self.config_path, "default_area", f"no area '{self.default_area}' in areas/",
                              f"areas: {', '.join(self.areas) or 'none'}")
        return self.areas[self.default_area]


def find_root(start: Path | None = None, explicit: str | os.PathLike[str] | None = None) -> Path:
    """Find the workspace: --workspace, then $BROADCAST_WORKSPACE, then the current directory upward."""
    given = explicit or os.environ.get("BROADCAST_WORKSPACE")
    if given:
        root = Path(given).expanduser()
        if not (root / CONFIG).is_file():
            raise ConfigError(root / CONFIG, None, "not found",
                              "point --workspace or BROADCAST_WORKSPACE at a folder with a broadcast.toml, "
                              "or create one with: broadcast init DIR")
        return root.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file():
            return folder
    raise ConfigError(here, None, f"no {CONFIG} here or in any folder above",
                      "cd into your workspace, pass --workspace DIR, or create one with: broadcast init DIR")


def load(explicit: str | os.PathLike[str] | None = None) -> Workspace:
    """Find and load the workspace."""
    return Workspace(find_root(explicit=explicit))
