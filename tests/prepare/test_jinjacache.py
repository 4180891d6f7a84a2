"""Compiled templates kept between processes (broadcast.jinjacache): the same text is never compiled twice, and a
cache that is damaged or cannot be made is no cache, never a failed warning."""

import pytest
from conftest import VALUES
from jinja2 import Environment

from broadcast.jinjacache import bytecode_cache
from broadcast.prepare import templates
from broadcast.prepare.templates import find_template, render
from broadcast.public import page


def new_process():
    """Forget what this process compiled, as a new `broadcast` process starts."""
    for cached in (bytecode_cache, templates._environment, templates._compiled, page._environment):
        cached.cache_clear()
    templates._SECTIONS.clear()


def texts(workspace):
    rendering = render(find_template(workspace, "school-closure"), workspace, VALUES)
    return {language: {variant: text.full() for variant, text in variants.items()}
            for language, variants in rendering.texts.items()}


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    new_process()
    yield tmp_path / "cache"
    new_process()


def test_a_second_process_renders_the_same_text_without_compiling_it(workspace, cache_home, monkeypatch):
    first = texts(workspace)
    kept = list(cache_home.glob("broadcast/jinja-*/message-*.cache"))
    assert kept and all(path.stat().st_size > 0 for path in kept)
    new_process()

    def refuse(*args, **kwargs):
        raise AssertionError("compiled again: the cache was not used")

    monkeypatch.setattr(Environment, "compile", refuse)
    assert texts(workspace) == first


def test_a_changed_template_is_compiled_again(workspace, cache_home):
    before = texts(workspace)
    path = find_template(workspace, "school-closure").path
    path.write_text(path.read_text(encoding="utf-8").replace("{{ school }} is closed on", "{{ school }} is shut on"),
                    encoding="utf-8")
    new_process()
    after = texts(workspace)
    assert after != before and after["en-GB"]["headline"].startswith("Hillside Primary School is shut on")


def test_damaged_cache_files_are_compiled_afresh(workspace, cache_home):
    first = texts(workspace)
    for path in cache_home.glob("broadcast/jinja-*/*.cache"):
        path.write_bytes(b"not a bytecode cache")
    new_process()
    assert texts(workspace) == first


def test_no_cache_folder_to_be_had_still_renders(workspace, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("in the way")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))  # a folder cannot be made under a file
    new_process()
    try:
        assert bytecode_cache("message") is None
        assert texts(workspace)["en-GB"]
    finally:
        new_process()
