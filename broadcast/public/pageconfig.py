"""The [page] section of broadcast.toml: licence, the 'about' line, exercises, feed size and publish targets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcast.errors import ConfigError
from broadcast.workspace import SECRET_REF_RE, Localized, check_keys, check_name, expect

if TYPE_CHECKING:
    from broadcast.workspace import Workspace

PAGE_KEYS = {"licence", "about", "check_minutes", "show_exercises", "feed_entries", "keep_ended_hours", "targets"}
TARGET_KEYS = {
    "directory": {"name", "kind", "path"},
    "s3": {"name", "kind", "bucket", "prefix", "endpoint_url", "region", "access_key_id", "secret_access_key"},
    "command": {"name", "kind", "command", "check_url", "timeout"},
}
URL_RE = re.compile(r"^https?://[^\s/]+")


@dataclass(frozen=True)
class Licence:
    id: str
    name: Localized
    url: str


LICENCES = {
    "OGL-3.0": Licence("OGL-3.0", Localized({"en": "Open Government Licence v3.0",
                                             "cy": "Trwydded Llywodraeth Agored v3.0"}),
                       "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"),
    "CC-BY-4.0": Licence("CC-BY-4.0", Localized({"*": "Creative Commons Attribution 4.0 International licence"}),
                         "https://creativecommons.org/licenses/by/4.0/"),
    "CC0-1.0": Licence("CC0-1.0", Localized({"*": "CC0 1.0 Universal public domain dedication"}),
                       "https://creativecommons.org/publicdomain/zero/1.0/"),
}


@dataclass(frozen=True)
class Target:
    """Where the built site is published: a local directory, an S3-compatible bucket or a command."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PageSettings:
    licence: Licence
    about: Localized | None
    check_minutes: int
    show_exercises: bool
    feed_entries: int
    keep_ended_hours: int
    targets: tuple[Target, ...]

    def output_dir(self, root: Path) -> Path:
        """The local folder `page build` and `page serve` use: the first directory target, else site/."""
        for target in self.targets:
            if target.kind == "directory":
                return root / target.options["path"]
        return root / "site"


def page_settings(workspace: Workspace) -> PageSettings:
    """Read and check the [page] section; every problem names the file, the key and what is expected."""
    path = workspace.config_path
    raw = expect(path, "page", workspace.config.get("page", {}), dict, "a [page] table")
    check_keys(path, raw, PAGE_KEYS, "page.")
    about = raw.get("about")
    return PageSettings(
        licence=_licence(path, raw.get("licence", "OGL-3.0")),
        about=Localized.parse(path, "page.about", about, workspace.languages) if about is not None else None,
        check_minutes=_whole(path, "page.check_minutes", raw.get("check_minutes", 15), 1, 1440, "minutes"),
        show_exercises=expect(path, "page.show_exercises", raw.get("show_exercises", False), bool, "true or false"),
        feed_entries=_whole(path, "page.feed_entries", raw.get("feed_entries", 50), 1, 500, "entries"),
        keep_ended_hours=_whole(path, "page.keep_ended_hours", raw.get("keep_ended_hours", 48), 0, 24 * 90, "hours"),
        targets=_targets(path, raw.get("targets")),
    )


def _whole(path: Path, key: str, value: Any, low: int, high: int, unit: str) -> int:
    expect(path, key, value, int, f"a whole number of {unit}")
    if not low <= value <= high:
        raise ConfigError(path, key, f"{value} is out of range", f"give {low} to {high} {unit}")
    return int(value)


def _licence(path: Path, value: Any) -> Licence:
    if isinstance(value, str):
        if value not in LICENCES:
            raise ConfigError(path, "page.licence", f"unknown licence {value!r}",
                              f"use one of {', '.join(LICENCES)}, or {{ name = \"…\", url = \"https://…\" }}")
        return LICENCES[value]
    expect(path, "page.licence", value, dict, 'a licence id such as "OGL-3.0", or { name = "…", url = "…" }')
    check_keys(path, value, {"name", "url"}, "page.licence.")
    url = expect(path, "page.licence.url", value.get("url"), str, "the licence's web address")
    if not URL_RE.match(url):
        raise ConfigError(path, "page.licence.url", f"{url!r} is not an http(s) URL")
    name = expect(path, "page.licence.name", value.get("name"), str, "the licence's name")
    return Licence(name, Localized({"*": name}), url)


def _targets(path: Path, value: Any) -> tuple[Target, ...]:
    if value is None:
        return (Target("site", "directory", {"path": "site"}),)
    expect(path, "page.targets", value, list, "a list of [[page.targets]] tables")
    if not value:
        raise ConfigError(path, "page.targets", "empty", "add at least one [[page.targets]], e.g. kind = \"directory\"")
    targets = [_target(path, f"page.targets[{i}]", raw) for i, raw in enumerate(value)]
    names = [t.name for t in targets]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(path, f"page.targets[{i}].name", f"a second target named '{name}'",
                              "give each target its own name")
    return tuple(targets)


def _target(path: Path, key: str, raw: Any) -> Target:
    expect(path, key, raw, dict, "a table")
    kind = raw.get("kind")
    if kind not in TARGET_KEYS:
        raise ConfigError(path, f"{key}.kind", f"unknown kind {kind!r}" if kind else "missing",
                          f"one of: {', '.join(TARGET_KEYS)}")
    check_keys(path, raw, TARGET_KEYS[kind], f"{key}.")
    name = check_name(f"{path}: {key}.name", expect(path, f"{key}.name", raw.get("name", kind), str, "a name"))
    options = {k: v for k, v in raw.items() if k not in ("name", "kind")}
    if kind == "directory":
        folder = expect(path, f"{key}.path", options.get("path", "site"), str, "a folder, relative to the workspace")
        options["path"] = folder
    elif kind == "s3":
        expect(path, f"{key}.bucket", options.get("bucket"), str, "the bucket name")
        prefix = expect(path, f"{key}.prefix", options.get("prefix", ""), str, "a key prefix such as alerts/")
        options["prefix"] = prefix.strip("/") + "/" if prefix.strip("/") else ""
        for optional in ("endpoint_url", "region"):
            if optional in options:
                expect(path, f"{key}.{optional}", options[optional], str, "text")
        if "endpoint_url" in options and not URL_RE.match(options["endpoint_url"]):
            raise ConfigError(path, f"{key}.endpoint_url", "not an http(s) URL", "e.g. https://s3.eu-west-2.amazonaws.com")
        for secret in ("access_key_id", "secret_access_key"):
            ref = options.get(secret)
            if ref is not None and (not isinstance(ref, str) or not SECRET_REF_RE.match(ref)):
                # Never echo the value: it may be the secret itself.
                raise ConfigError(path, f"{key}.{secret}", "must be a reference such as env:NAME, not a value",
                                  "put the key in an environment variable and write env:THAT_NAME here")
    else:
        command = options.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            raise ConfigError(path, f"{key}.command", "expected a list of arguments",
                              'e.g. command = ["rsync", "-rc", "--delete", "{site}/", "web@host:/srv/alerts/"]')
        check_url = options.get("check_url")
        if not isinstance(check_url, str) or not URL_RE.match(check_url):
            raise ConfigError(path, f"{key}.check_url", "missing or not an http(s) URL",
                              "give the address the files are served from, so each publish is read back and checked")
        options["check_url"] = check_url.rstrip("/") + "/"
        options["timeout"] = _whole(path, f"{key}.timeout", options.get("timeout", 120), 1, 3600, "seconds")
    return Target(name, kind, options)
