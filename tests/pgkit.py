"""A real, throw-away PostgreSQL server for the store's tests: initdb and pg_ctl from Debian's postgresql package, on a
temporary folder and a free port of 127.0.0.1, for the whole session; each test gets a database of its own.

With BROADCAST_POSTGRES_TESTS=required (as .ci/run sets it) a server that cannot start fails the test instead of
skipping it. $BROADCAST_TEST_POSTGRES_URL points the tests at a server of your own instead (a superuser's URL).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_counter = itertools.count(1)


def _unavailable(why: str) -> None:
    if os.environ.get("BROADCAST_POSTGRES_TESTS") == "required":
        pytest.fail(f"PostgreSQL is required for these tests (BROADCAST_POSTGRES_TESTS=required): {why}")
    pytest.skip(f"no PostgreSQL server: {why} (apt-get install postgresql)")


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` account."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def _cluster() -> Iterator[str]:
    binaries = _binaries()
    if binaries is None:
        _unavailable("initdb is not installed")
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="broadcast-pg-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                        "-E", "UTF8", "--locale=C.UTF-8"]), **run)
        subprocess.run(_as_server_user([
            str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start"]), **run)
    except (OSError, subprocess.SubprocessError) as exc:
        log = (folder / "server.log").read_text(errors="replace")[-2000:] if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"{exc}: {getattr(exc, 'stderr', '') or ''} {log}".strip())
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A superuser's URL to a running server: ours, or $BROADCAST_TEST_POSTGRES_URL."""
    given = os.environ.get("BROADCAST_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with _cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the server, dropped after the test."""
    psycopg = pytest.importorskip("psycopg")
    name = f"broadcast_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
