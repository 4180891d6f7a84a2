"""Fixtures the page, feed and build tests share (pytest_plugins = ("pagekit",))."""

import pytest

from broadcast.store import Store
from broadcast.workspace import Workspace


@pytest.fixture
def store(tmp_path):
    """An empty log in a SQLite file."""
    store = Store.open(tmp_path / "broadcast.db")
    yield store
    store.close()


@pytest.fixture
def example(example_dir):
    """The repository's example workspace, copied."""
    return Workspace(example_dir)
