"""Publish targets: a local folder, an S3-compatible bucket, a command (rsync and the like). Each one is read back."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcast.errors import BroadcastError
from broadcast.public.site import Manifest, Written, managed, swap_order, write_tree

if TYPE_CHECKING:
    from broadcast.public.pageconfig import Target
    from broadcast.public.site import Site
    from broadcast.workspace import Workspace

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".atom": "application/atom+xml",
                 ".rss": "application/rss+xml", ".json": "application/json", ".xml": "application/cap+xml"}


class TargetError(BroadcastError):
    """One publish target failed; the others carry on."""


MANIFESTS = ".broadcast/published"  # one manifest per folder target, named by a digest of its path


def content_type(path: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(path)[1], "application/octet-stream")


def cache_control(path: str) -> str:
    """CAP files never change (an update is a new file); everything else is short-lived so news shows quickly."""
    return "public, max-age=31536000, immutable" if path.startswith("cap/") else "public, max-age=60"


def mismatch(target: str, bad: list[str], checked: int) -> TargetError:
    return TargetError(f"{target}: {len(bad)} of {checked} files read back differ from what was published, "
                       f"first {bad[0]}", hint="publish again: broadcast page publish; if it repeats, check the "
                       "target's storage and whatever else writes to it")


class DirectoryTarget:
    """A folder on this machine (or a mounted share). A manifest in the workspace's .broadcast/ folder records what
    each file held when last written or read back, so a file whose stat is unchanged since is neither read to
    compare nor read back again: on a site of hundreds of files, a publish reads only what it writes."""

    def __init__(self, target: Target, workspace: Workspace):
        self.name = target.name
        self.path = (workspace.root / target.options["path"]).resolve()
        self.location = str(self.path)
        key = hashlib.sha256(str(self.path).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.manifest = Manifest(self.path, workspace.root / MANIFESTS / f"{key}.json")

    def publish(self, site: Site) -> Written:
        try:
            return write_tree(site.files, self.path, self.manifest)
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot write {self.path}: {exc.strerror or exc}",
                              hint="check the folder exists, is writable and the disk is not full") from None

    def verify(self, site: Site, written: Written) -> int:
        """Read back every file written now, and any other the manifest cannot vouch for or the publish did not
        read just now."""
        fresh, manifest = set(written.written), self.manifest
        bad = []
        for path, data in site.files.items():
            if path not in fresh and (path in manifest.confirmed or manifest.holds(path, data)):
                continue
            try:
                if (self.path / path).read_bytes() != data:
                    bad.append(path)
            except OSError:
                bad.append(path)
        if bad:
            self.manifest.forget()
            raise mismatch(self.name, bad, len(site.files))
        self.manifest.remember(site.files)
        return len(site.files)


class S3Target:
    """Any S3-compatible object store. Objects whose ETag already equals the file's MD5 are not sent again."""

    attempts = 3  # botocore's own retries, with its backoff

    def __init__(self, target: Target, workspace: Workspace):
        self.name = target.name
        self.options = target.options
        self.bucket = target.options["bucket"]
        self.prefix = target.options["prefix"]
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise TargetError(f"{self.name}: the S3 target needs boto3, which is not installed",
                                  hint="install it: python3 -m pip install 'broadcast[s3]'") from None

            kwargs = {"endpoint_url": self.options.get("endpoint_url"), "region_name": self.options.get("region")}
            for key, arg in (("access_key_id", "aws_access_key_id"), ("secret_access_key", "aws_secret_access_key")):
                if key in self.options:
                    kwargs[arg] = self._secret(key)
            retries = {"max_attempts": self.attempts, "mode": "standard"}
            config = Config(connect_timeout=10, read_timeout=30, retries=retries)
            self._client = boto3.client("s3", config=config, **kwargs)
        return self._client

    def _secret(self, key: str) -> str:
        variable = self.options[key].removeprefix("env:")
        value = os.environ.get(variable)
        if not value:
            raise TargetError(f"{self.name}: the environment variable {variable} ({key}) is not set",
                              hint=f"export {variable}=… in the shell that publishes; the other targets were still "
                              "published")
        return value

    def publish(self, site: Site) -> Written:
        with self._errors("publish to"):
            client = self.client()
            existing = self._listing()
            written = []
            for path in sorted(site.files, key=swap_order):
                data = site.files[path]
                if existing.get(path) == hashlib.md5(data, usedforsecurity=False).hexdigest():
                    continue
                client.put_object(Bucket=self.bucket, Key=self.prefix + path, Body=data,
                                  ContentType=content_type(path), CacheControl=cache_control(path))
                written.append(path)
            removed = [path for path in existing if managed(path) and path not in site.files]
            for start in range(0, len(removed), 1000):
                batch = [{"Key": self.prefix + path} for path in removed[start:start + 1000]]
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            return Written(written, removed)

    def verify(self, site: Site, written: Written) -> int:
        """Read back every object sent now; the rest were matched by their ETags when listed."""
        with self._errors("read back from"):
            bad = [path for path in written.written
                   if self.client().get_object(Bucket=self.bucket, Key=self.prefix + path)["Body"].read()
                   != site.files[path]]
        if bad:
            raise mismatch(self.name, bad, len(written.written))
        return len(site.files)

    def _listing(self) -> dict[str, str]:
        etags = {}
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                etags[item["Key"][len(self.prefix):]] = item["ETag"].strip('"')
        return etags

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return _translate(self.name, f"{doing} {self.location}",
                          "check the bucket name, endpoint and credentials; the other targets were still published")


class CommandTarget:
    """Run a command (rsync, scp, a deploy script) on a complete copy of the site, then fetch it back over HTTP."""

    def __init__(self, target: Target, workspace: Workspace):
        self.name = target.name
        self.options = target.options
        self.root = workspace.root
        self.location = target.options["check_url"]

    def publish(self, site: Site) -> Written:
        with tempfile.TemporaryDirectory(prefix="broadcast-site-") as folder:
            write_tree(site.files, Path(folder) / "site")
            args = [arg.replace("{site}", str(Path(folder) / "site")) for arg in self.options["command"]]
            try:
                done = subprocess.run(args, cwd=self.root, capture_output=True, text=True,
                                      timeout=self.options["timeout"], check=False)
            except FileNotFoundError:
                raise TargetError(f"{self.name}: command not found: {args[0]}",
                                  hint="install it, or fix command = […] under [[page.targets]]") from None
            except subprocess.TimeoutExpired:
                raise TargetError(f"{self.name}: {args[0]} took more than {self.options['timeout']} seconds",
                                  hint="check the network to the host; raise timeout = … if it is just slow") from None
        if done.returncode:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise TargetError(f"{self.name}: {args[0]} exited with {done.returncode}"
                              + (f": {said[-1][:300]}" if said else ""),
                              hint="run the command by hand to see why; the other targets were still published")
        return Written(sorted(site.files), [])

    def verify(self, site: Site, written: Written) -> int:
        """Fetch what people are shown: every page and feed, and the CAP files of the alerts in the feed (older CAP
        files never change and were checked when they were new)."""
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        in_feed = {u.cap_path for u in site.summary.updates[: site.summary.settings.feed_entries]}
        paths = [p for p in site.files if not p.startswith("cap/") or p in in_feed]
        base = self.options["check_url"]
        with _translate(self.name, f"read back from {base}", "check check_url is where the command puts the files"), \
                httpx.Client(timeout=20, follow_redirects=True) as client, ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda p: client.get(base + p, headers={"Cache-Control": "no-cache"}), paths))
        bad = [p for p, r in zip(paths, bodies, strict=True) if r.status_code != 200 or r.content != site.files[p]]
        if bad:
            raise mismatch(self.name, bad, len(paths))
        return len(paths)


@contextlib.contextmanager
def _translate(name: str, doing: str, hint: str) -> Iterator[None]:
    """Turn a library's exception into a TargetError that names the target and says what to check."""
    try:
        yield
    except BroadcastError:
        raise
    except Exception as error:
        raise TargetError(f"{name}: could not {doing}: {type(error).__name__}: {error}", hint=hint) from None


Adapter = DirectoryTarget | S3Target | CommandTarget
KINDS: dict[str, type[Adapter]] = {"directory": DirectoryTarget, "s3": S3Target, "command": CommandTarget}


def make_target(target: Target, workspace: Workspace) -> Adapter:
    return KINDS[target.kind](target, workspace)
