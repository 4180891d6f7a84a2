"""Publishing: atomic writes, every target read back, a failing target never stops the others, all of it logged."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import REPO
from sitekit import T0, make_alert, save, with_page
from test_packaging import installed  # noqa: F401  (the wheel, installed in a fresh venv)

from broadcast.public.cap import CapError
from broadcast.public.publish import publish_site
from broadcast.public.site import Manifest, existing_files, preview_server
from broadcast.public.targets import MANIFESTS
from broadcast.store import Store

TARGET_EVENTS = ("fallback_published", "fallback_verified", "fallback_failed")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path: (folder / path).read_bytes() for path in existing_files(folder)}


def page_events(store):
    return [(e["type"], json.loads(e["details"]).get("target"), e["phase"]) for e in store.events()
            if e["type"] in TARGET_EVENTS]


def first_alert(workspace, store):
    return save(store, make_alert(workspace, "A-2026-0001", incident="snow"), "Snow: schools closed")


def second_alert(workspace, store):
    return save(store, make_alert(workspace, "A-2026-0002", minutes=20, incident="snow", msg_type="Update",
                                  references=("A-2026-0001",)))


@pytest.fixture
def store(workspace):
    store = Store.open(workspace.db_path)
    yield store
    store.close()


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (the preview server), as a web host behind rsync would be."""
    folder = tmp_path / "webroot"
    folder.mkdir()
    server = preview_server(folder, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_publish_writes_the_site_reads_it_back_and_logs_both(workspace, store):
    first_alert(workspace, store)
    report = publish_site(workspace, store, actor="Sam Duty", now=T0)
    assert report.ok
    site = workspace.root / "site"
    assert snapshot(site) == report.site.files
    assert {"index.html", "cy/index.html", "incidents/snow.html", "cap/A-2026-0001.xml", "feed.atom", "feed.rss",
            "status.json"} <= set(report.site.files)
    (result,) = report.results
    assert (result.name, result.kind, result.written, result.verified) == ("site", "directory", 10, 10)
    assert report.lines() == [f"OK    page:site  directory  {site}  10 of 10 files sent, 10 checked and match"]
    assert page_events(store) == [("fallback_published", "site", "warn"), ("fallback_verified", "site", "warn")]
    published = next(e for e in store.events() if e["type"] == "fallback_published")
    assert published["actor"] == "Sam Duty" and published["channel"] == "page"
    assert json.loads(published["details"])["bytes"] == report.site.size
    assert store.verify().ok


def test_a_second_publish_only_touches_what_changed(workspace, store):
    first_alert(workspace, store)
    publish_site(workspace, store, now=T0)
    site = workspace.root / "site"
    old_cap = site / "cap" / "A-2026-0001.xml"
    os.utime(old_cap, (1, 1))
    second_alert(workspace, store)
    report = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert report.results[0].written == 10  # the new CAP file, 2 incident pages, 2 indexes, 4 feeds, status.json
    assert old_cap.stat().st_mtime == 1  # an unchanged file keeps its Last-Modified, so caches stay valid
    again = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert again.results[0].written == 0 and again.results[0].verified == len(again.site.files)


def reads_of(folder: Path, monkeypatch) -> list[str]:
    """The files of `folder` read from now on."""
    reads, real = [], Path.read_bytes

    def reading(self):
        if folder in self.parents:
            reads.append(self.relative_to(folder).as_posix())
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", reading)
    return reads


def settle(record: Path) -> None:
    """As if the folder's record had been written ten seconds later: every file it lists has settled."""
    later = record.stat().st_mtime_ns + 10 * 10**9
    os.utime(record, ns=(later, later))


def test_a_file_changed_just_before_its_record_was_written_is_read_again(tmp_path):
    """A coarse file-system clock can give a second write the same times as the first: such a file is not vouched
    for until the record is written RACY seconds after its last change."""
    folder, record = tmp_path / "site", tmp_path / "record.json"
    folder.mkdir()
    (folder / "index.html").write_bytes(b"one")
    Manifest(folder, record).remember({"index.html": b"one"})
    assert not Manifest(folder, record).holds("index.html", b"one")  # recorded within RACY of the write
    settle(record)
    assert Manifest(folder, record).holds("index.html", b"one")
    assert not Manifest(folder, record).holds("index.html", b"two")  # vouches only for what it recorded
    for damaged in ([], ["digest"], [None, 1, 2, 3, 4], ["digest", 1, 2, 3, "4"], {"a": 1}, 7):
        record.write_text(json.dumps({"directory": str(folder), "files": {"index.html": damaged}}), encoding="utf-8")
        settle(record)
        assert not Manifest(folder, record).holds("index.html", b"one")  # vouches for nothing, breaks nothing


def test_a_publish_reads_what_it_writes_and_what_changed_behind_its_back_and_no_more(workspace, store, monkeypatch):
    first_alert(workspace, store)
    publish_site(workspace, store, now=T0)
    site = workspace.root / "site"
    (record,) = (workspace.root / MANIFESTS).glob("*.json")
    settle(record)
    reads = reads_of(site, monkeypatch)
    second_alert(workspace, store)
    report = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert "cap/A-2026-0001.xml" not in reads, reads  # unchanged since it was read back: neither compared nor reread
    assert len(set(reads)) == report.results[0].written == 10 and report.results[0].verified == 11
    assert report.ok and snapshot(site) == report.site.files

    # Someone edits a published file in place, same size, and sets its time back; another file is deleted.
    settle(record)
    cap = site / "cap" / "A-2026-0001.xml"
    before = cap.stat()
    tampered = cap.read_bytes().replace(b"snow", b"rain")
    assert tampered != report.site.files["cap/A-2026-0001.xml"]
    cap.write_bytes(tampered)
    os.utime(cap, ns=(before.st_atime_ns, before.st_mtime_ns))
    (site / "incidents" / "snow.html").unlink()
    again = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert again.ok and again.results[0].written == 2
    assert snapshot(site) == again.site.files  # both put right

    # The record lives in the workspace, never in the published folder; a damaged one vouches for nothing.
    assert not [path for path in existing_files(site) if path.endswith(".json") and path != "status.json"]
    record.write_text("{not json", encoding="utf-8")
    cap.write_bytes(tampered)
    os.utime(cap, ns=(before.st_atime_ns, before.st_mtime_ns))
    third = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert third.ok and third.results[0].written == 1 and snapshot(site) == third.site.files


def test_a_crash_mid_build_leaves_the_previous_site_intact(workspace, store, monkeypatch):
    import broadcast.public.page

    first_alert(workspace, store)
    publish_site(workspace, store, now=T0)
    before = snapshot(workspace.root / "site")
    second_alert(workspace, store)
    calls = []

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("the machine ran out of memory mid-build")
        return real(*args, **kwargs)

    real = broadcast.public.page.render_incident
    monkeypatch.setattr(broadcast.public.page, "render_incident", crash)
    with pytest.raises(MemoryError):
        publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert snapshot(workspace.root / "site") == before
    assert not list((workspace.root / "site").rglob(".broadcast-staging-*"))


def test_a_full_disk_while_writing_leaves_the_previous_site_intact(workspace, store, monkeypatch):
    import broadcast.public.site

    first_alert(workspace, store)
    publish_site(workspace, store, now=T0)
    before = snapshot(workspace.root / "site")
    second_alert(workspace, store)
    written = []
    real = Path.write_bytes

    def fill_up(self, data):
        written.append(self)
        if len(written) > 3:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(broadcast.public.site.Path, "write_bytes", fill_up)
    report = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert not report.ok
    assert report.results[0].error == f"site: cannot write {workspace.root / 'site'}: No space left on device"
    assert "disk is not full" in report.results[0].hint
    assert snapshot(workspace.root / "site") == before
    assert not list((workspace.root / "site").rglob(".broadcast-staging-*"))
    assert page_events(store)[-1] == ("fallback_failed", "site", "warn")


KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from datetime import timedelta
from sitekit import T0
from broadcast.public.site import build_into
from broadcast.store import Store
from broadcast.workspace import Workspace

real, count = Path.write_bytes, []
def write_then_die(self, data):
    count.append(1)
    if len(count) == 4:
        os.kill(os.getpid(), signal.SIGKILL)  # a power cut or the OOM killer: no cleanup runs
    return real(self, data)
Path.write_bytes = write_then_die
workspace = Workspace(Path({root!r}))
build_into(workspace, Store.open(workspace.db_path), now=T0 + timedelta(minutes=30))
"""


def test_a_killed_build_leaves_the_site_intact_and_its_leftovers_are_cleared_later(workspace, store):
    first_alert(workspace, store)
    publish_site(workspace, store, now=T0)
    site = workspace.root / "site"
    before = snapshot(site)
    second_alert(workspace, store)
    script = KILLED_BUILD.format(tests=str(REPO / "tests"), root=str(workspace.root))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert snapshot(site) == before
    leftovers = list(site.rglob(".broadcast-staging-*"))  # the three copies written before the kill, beside theirs
    assert len(leftovers) == 3 and not set(existing_files(site)) - set(before)  # hidden from every listing
    for leftover in leftovers[1:]:
        os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    assert publish_site(workspace, store, now=T0 + timedelta(minutes=30)).ok
    assert list(site.rglob(".broadcast-staging-*")) == leftovers[:1]  # young enough to be another publish's
    os.utime(leftovers[0], (time.time() - 7200, time.time() - 7200))
    assert publish_site(workspace, store, now=T0 + timedelta(minutes=30)).ok
    assert not list((workspace.root / "site").rglob(".broadcast-staging-*"))
    assert (site / "cap" / "A-2026-0002.xml").is_file()


def test_a_failing_target_does_not_stop_the_others(workspace_dir, run):
    workspace = with_page(workspace_dir, '[[page.targets]]\nname = "web2"\nkind = "command"\ncommand = ["false"]\n'
                          'check_url = "http://127.0.0.1:9/"\n'
                          '[[page.targets]]\nname = "local"\nkind = "directory"\npath = "public"\n')
    store = Store.open(workspace.db_path)
    first_alert(workspace, store)
    store.close()
    result = run("page", "publish")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "FAIL  page:web2   command    web2: false exited with 1"
    assert lines[1] == "      hint: run the command by hand to see why; the other targets were still published"
    assert lines[2].startswith(f"OK    page:local  directory  {workspace_dir / 'public'}  10 of 10 files sent")
    assert lines[3:] == ["1 of 2 targets published (1 current alert).",
                         "Fix the failed target, then run: broadcast page publish"]
    assert (workspace_dir / "public" / "index.html").is_file()
    store = Store.open(workspace.db_path)
    assert page_events(store) == [("fallback_failed", "web2", "warn"), ("fallback_published", "local", "warn"),
                                  ("fallback_verified", "local", "warn")]


def test_when_every_target_fails_publish_exits_3(workspace_dir, run):
    with_page(workspace_dir, '[[page.targets]]\nkind = "command"\ncommand = ["no-such-deploy-tool"]\n'
              'check_url = "http://127.0.0.1:9/"\n')
    result = run("page", "publish")
    assert result.exit_code == 3
    assert "command: command not found: no-such-deploy-tool" in result.output
    assert "hint: install it, or fix command = […] under [[page.targets]]" in result.output


def test_a_command_target_is_read_back_over_http(workspace_dir, served):
    webroot, url = served
    workspace = with_page(workspace_dir, f'[[page.targets]]\nname = "web2"\nkind = "command"\n'
                          f'command = ["cp", "-r", "{{site}}/.", "{webroot}"]\ncheck_url = "{url}"\n')
    store = Store.open(workspace.db_path)
    first_alert(workspace, store)
    report = publish_site(workspace, store, now=T0)
    assert report.ok, report.lines()
    assert report.results[0].verified == len(report.site.files)  # the one CAP file is in the feed
    assert (webroot / "cap" / "A-2026-0001.xml").read_bytes() == report.site.files["cap/A-2026-0001.xml"]
    assert page_events(store) == [("fallback_published", "web2", "warn"), ("fallback_verified", "web2", "warn")]


def test_a_copy_that_differs_on_the_host_fails_verification(workspace_dir, served):
    webroot, url = served
    workspace = with_page(workspace_dir, f'[[page.targets]]\nname = "web2"\nkind = "command"\n'
                          f'command = ["sh", "-c", "cp -r {{site}}/. {webroot} && echo stale > {webroot}/status.json"]'
                          f'\ncheck_url = "{url}"\n')
    store = Store.open(workspace.db_path)
    first_alert(workspace, store)
    report = publish_site(workspace, store, now=T0)
    (result,) = report.results
    assert not result.ok
    assert result.error == f"web2: 1 of {len(report.site.files)} files read back differ from what was published, " \
                           "first status.json"
    failed = next(e for e in store.events() if e["type"] == "fallback_failed")
    assert json.loads(failed["details"])["stage"] == "verify"


def test_invalid_cap_stops_the_publish_before_anything_is_written(workspace, store, run):
    first_alert(workspace, store)
    publish_site(workspace, store, now=T0)
    before = snapshot(workspace.root / "site")
    alert = make_alert(workspace, "A-2026-0002", minutes=20, incident="snow", msg_type="Update",
                       references=("A-2026-0001",))
    area = replace(alert.infos[0].areas[0], polygons=("52,-3.4 52,-3.3 52.1,-3.3",))
    save(store, replace(alert, infos=(replace(alert.infos[0], areas=(area,)), *alert.infos[1:])))
    events = len(page_events(store))
    with pytest.raises(CapError, match="A-2026-0002 is not valid CAP 1.2: info en-GB, area 'Testshire town': "
                                       "polygon has 3 points"):
        publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert snapshot(workspace.root / "site") == before
    assert len(page_events(store)) == events
    store.close()
    result = run("page", "publish")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: alert A-2026-0002 is not valid CAP 1.2")
    assert "hint: the alert is not published; fix its source" in result.stderr


def test_page_build_writes_the_site_without_publishing(workspace, store, run):
    first_alert(workspace, store)
    store.close()
    result = run("page", "build", "--output", str(workspace.root / "preview"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("Built 10 files (")
    assert f"in {workspace.root / 'preview'}: 1 current alert, 1 incident page in each language, 10 files changed." \
        in result.output
    assert (workspace.root / "preview" / "cy" / "index.html").is_file()
    assert not (workspace.root / "site").exists()
    store = Store.open(workspace.db_path)
    assert page_events(store) == []


def test_the_preview_server_serves_the_site_on_localhost(workspace, store, served):
    folder, url = served
    (folder / "index.html").write_text("<!doctype html><title>x</title>", encoding="utf-8")
    (folder / "feed.atom").write_text("<feed/>", encoding="utf-8")
    assert url.startswith("http://127.0.0.1:")
    page = httpx.get(url + "index.html")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert httpx.get(url + "feed.atom").headers["content-type"] == "application/atom+xml"


def test_serve_on_a_busy_port_says_what_to_do(run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run("page", "serve", "--port", str(busy.getsockname()[1]))
    assert result.exit_code == 2
    assert "Error: cannot listen on 127.0.0.1:" in result.stderr
    assert "hint: another program is using the port: choose another with --port 8001" in result.stderr


# --- S3-compatible object storage, against moto's server on 127.0.0.1 ---------------------------------------------

@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path):
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("TEST_S3_KEY", "testing-key")
    monkeypatch.setenv("TEST_S3_SECRET", "testing-secret")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-2", aws_access_key_id="testing-key",
                          aws_secret_access_key="testing-secret")
    bucket = f"alerts-{tmp_path.name.lower().replace('_', '-')[:40]}"
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    return client, bucket, s3_endpoint


def s3_target(bucket: str, endpoint: str) -> str:
    return (f'[[page.targets]]\nname = "bucket"\nkind = "s3"\nbucket = "{bucket}"\nprefix = "alerts"\n'
            f'endpoint_url = "{endpoint}"\nregion = "eu-west-2"\n'
            f'access_key_id = "env:TEST_S3_KEY"\nsecret_access_key = "env:TEST_S3_SECRET"\n')


def test_the_s3_target_uploads_with_content_types_and_reads_back(workspace_dir, s3):
    client, bucket, endpoint = s3
    workspace = with_page(workspace_dir, s3_target(bucket, endpoint))
    store = Store.open(workspace.db_path)
    first_alert(workspace, store)
    client.put_object(Bucket=bucket, Key="alerts/robots.txt", Body=b"User-agent: *\n")  # not ours: left alone
    client.put_object(Bucket=bucket, Key="alerts/incidents/gone.html", Body=b"old")  # ours, no longer built
    report = publish_site(workspace, store, now=T0)
    assert report.ok, report.lines()
    (result,) = report.results
    assert (result.location, result.written, result.removed, result.verified) == (
        f"s3://{bucket}/alerts/", 10, 1, 10)
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"alerts/{path}" for path in report.site.files} | {"alerts/robots.txt"}
    cap = client.get_object(Bucket=bucket, Key="alerts/cap/A-2026-0001.xml")
    assert cap["Body"].read() == report.site.files["cap/A-2026-0001.xml"]
    assert cap["ContentType"] == "application/cap+xml"
    assert cap["CacheControl"] == "public, max-age=31536000, immutable"
    index = client.get_object(Bucket=bucket, Key="alerts/index.html")
    assert (index["ContentType"], index["CacheControl"]) == ("text/html; charset=utf-8", "public, max-age=60")
    assert page_events(store) == [("fallback_published", "bucket", "warn"), ("fallback_verified", "bucket", "warn")]

    # Next time only what changed goes up; an object changed behind our back is put right.
    client.put_object(Bucket=bucket, Key="alerts/feed.rss", Body=b"tampered")
    second_alert(workspace, store)
    again = publish_site(workspace, store, now=T0 + timedelta(minutes=30))
    assert again.ok and again.results[0].written == 10
    body = client.get_object(Bucket=bucket, Key="alerts/feed.rss")["Body"].read()
    assert body == again.site.files["feed.rss"]


def test_a_missing_s3_key_fails_that_target_only(workspace_dir, s3, monkeypatch):
    client, bucket, endpoint = s3
    monkeypatch.delenv("TEST_S3_SECRET")
    workspace = with_page(workspace_dir, s3_target(bucket, endpoint)
                          + '[[page.targets]]\nname = "local"\nkind = "directory"\n')
    store = Store.open(workspace.db_path)
    first_alert(workspace, store)
    report = publish_site(workspace, store, now=T0)
    bad, good = report.results
    assert bad.error == "bucket: the environment variable TEST_S3_SECRET (secret_access_key) is not set"
    assert bad.hint.startswith("export TEST_S3_SECRET=…")
    assert good.ok and (workspace_dir / "site" / "index.html").is_file()


def test_an_unreachable_s3_endpoint_is_reported_with_what_to_check(workspace_dir, s3, monkeypatch):
    from broadcast.public.targets import S3Target

    monkeypatch.setattr(S3Target, "attempts", 1)  # botocore would back off between its retries
    _, bucket, _ = s3
    workspace = with_page(workspace_dir, s3_target(bucket, "http://127.0.0.1:9"))
    store = Store.open(workspace.db_path)
    first_alert(workspace, store)
    (result,) = publish_site(workspace, store, now=T0).results
    assert not result.ok
    assert result.error.startswith(f"bucket: could not publish to s3://{bucket}/alerts/: EndpointConnectionError")
    assert result.hint.startswith("check the bucket name, endpoint and credentials")


def test_the_installed_wheel_carries_the_schema_and_the_page_templates(installed, tmp_path):  # noqa: F811
    """package_data: the XSD and the page templates must be in the wheel, not just in the checkout."""
    target = tmp_path / "council"
    subprocess.run([installed / "bin" / "broadcast", "init", str(target)], check=True, capture_output=True)
    built = subprocess.run([installed / "bin" / "broadcast", "page", "build"], capture_output=True, text=True,
                           cwd=target)
    assert built.returncode == 0, built.stderr
    assert "No current alerts" in (target / "site" / "index.html").read_text(encoding="utf-8")
    example = (REPO / "tests" / "data" / "cap" / "oasis-a4-amber-alert-multilang.xml").read_bytes()
    script = ("import sys, broadcast; from broadcast.public.cap import validate_xml; "
              "validate_xml(sys.stdin.buffer.read(), 'amber'); print(broadcast.__file__)")
    check = subprocess.run([installed / "bin" / "python", "-c", script], input=example, capture_output=True,
                           cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.decode().startswith(str(installed))
