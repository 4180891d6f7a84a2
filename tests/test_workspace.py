import shutil
from datetime import UTC, datetime

import pytest

from broadcast.errors import ConfigError
from broadcast.prepare.templates import find_template
from broadcast.workspace import Workspace, find_root, read_toml


def write_config(root, text):
    (root / "broadcast.toml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ('timezone = "Europe/London"', 'timezone = "Europe/Londn"', "timezone", "unknown time zone"),
        ('timezone = "Europe/London"', 'timezone = "Europe/London"\nlanguage = ["en-GB"]', "language",
         "unknown key"),
        ('languages = ["en-GB", "cy-GB"]', 'languages = "en-GB"', "languages", "expected a list"),
        ('languages = ["en-GB", "cy-GB"]', 'languages = ["english"]', "languages", "not a language tag"),
        ('sender = "alerts@testshire.example"', 'sender = "alerts, testshire"', "organisation.sender", "comma"),
        ('web = "https://alerts.testshire.example"', 'web = "alerts.testshire.example"', "organisation.web",
         "not an http(s) URL"),
        ('name = { en = "Testshire Council", cy = "Cyngor Testshire" }', 'name = { en = "Testshire Council" }',
         "organisation.name", "no text for language 'cy'"),
    ],
)
def test_config_errors_name_file_key_and_expectation(workspace_dir, old, new, key, words):
    text = (workspace_dir / "broadcast.toml").read_text(encoding="utf-8")
    write_config(workspace_dir, text.replace(old, new))
    with pytest.raises(ConfigError) as raised:
        Workspace(workspace_dir)
    assert raised.value.message.startswith(f"{workspace_dir / 'broadcast.toml'}: {key}: ")
    assert words in raised.value.message


def test_bad_toml_and_non_utf8(workspace_dir):
    write_config(workspace_dir, "languages = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Workspace(workspace_dir)
    (workspace_dir / "broadcast.toml").write_bytes(b"timezone = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Workspace(workspace_dir)


def test_literal_secret_is_refused_and_not_echoed(workspace_dir):
    (workspace_dir / "channels" / "x-council.toml").write_text(
        'kind = "x"\n[secrets]\naccess_token = "sk-live-9f8e7d6c5b4a"\n', encoding="utf-8")
    workspace = Workspace(workspace_dir)
    assert "x-council" not in workspace.channels  # a broken file fails alone: the others stay usable
    error = workspace.broken_channels["x-council"].error
    assert "secrets.access_token: must be a reference such as env:NAME" in error.message
    assert "sk-live" not in error.message + (error.hint or "")


def test_unknown_channel_kind_suggests(workspace_dir):
    (workspace_dir / "channels" / "masto.toml").write_text('kind = "mastadon"\n', encoding="utf-8")
    workspace = Workspace(workspace_dir)
    error = workspace.broken_channels["masto"].error
    assert "kind: unknown kind 'mastadon'" in error.message and error.hint == "did you mean 'mastodon'?"
    assert workspace.broken_channels["masto"].languages == (workspace.languages[0],)
    assert "mastodon-council" in workspace.channels


def test_found_from_flag_env_and_parent_folders(workspace_dir, monkeypatch):
    nested = workspace_dir / "templates"
    monkeypatch.delenv("BROADCAST_WORKSPACE", raising=False)
    assert find_root(start=nested) == workspace_dir.resolve()
    monkeypatch.setenv("BROADCAST_WORKSPACE", str(workspace_dir))
    assert find_root(start=nested.parent.parent) == workspace_dir.resolve()
    assert find_root(explicit=str(workspace_dir)) == workspace_dir.resolve()
    monkeypatch.delenv("BROADCAST_WORKSPACE")
    with pytest.raises(ConfigError, match="no broadcast.toml here or in any folder above"):
        find_root(start=workspace_dir.parent)


def test_workspace_files_that_link_outside_it_are_refused(workspace_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = outside / "passwd.md"
    secret.write_text("+++\ntitle = \"x\"\n+++\n", encoding="utf-8")
    (workspace_dir / "templates" / "sneaky.md").symlink_to(secret)
    (outside / "hook.toml").write_text('kind = "webhook"\n', encoding="utf-8")
    (workspace_dir / "channels" / "linked.toml").symlink_to(outside / "hook.toml")
    workspace = Workspace(workspace_dir)
    with pytest.raises(ConfigError) as raised:
        find_template(workspace, "sneaky")
    assert f"is a link to {secret.resolve()}, outside the workspace" in raised.value.message
    assert "outside the workspace" in workspace.broken_channels["linked"].error.message
    inside = workspace_dir / "templates" / "alias.md"  # a link within the workspace is the planner's business
    inside.symlink_to(workspace_dir / "templates" / "school-closure.md")
    assert find_template(workspace, "alias").title


def test_a_channels_folder_that_links_outside_the_workspace_breaks_every_channel_in_it(workspace_dir, tmp_path):
    outside = tmp_path / "elsewhere-channels"
    shutil.copytree(workspace_dir / "channels", outside)
    (outside / "hook.toml").write_text('kind = "webhook"\n[settings]\nurl = "https://example.org"\n', encoding="utf-8")
    shutil.rmtree(workspace_dir / "channels")
    (workspace_dir / "channels").symlink_to(outside)
    workspace = Workspace(workspace_dir)
    assert not workspace.channels
    assert {"hook", "mastodon-council"} <= set(workspace.broken_channels)
    assert all("outside the workspace" in b.error.message for b in workspace.broken_channels.values())


def test_a_channel_file_linked_within_the_workspace_is_used(workspace_dir):
    (workspace_dir / "shared").mkdir()
    (workspace_dir / "shared" / "hook.toml").write_text('kind = "webhook"\n[settings]\nurl = "https://example.org"\n',
                                                         encoding="utf-8")
    (workspace_dir / "channels" / "hook.toml").symlink_to(workspace_dir / "shared" / "hook.toml")
    assert Workspace(workspace_dir).channels["hook"].kind == "webhook"


def test_a_toml_file_read_again_is_a_fresh_copy_and_an_edit_is_seen(tmp_path):
    path = tmp_path / "channel.toml"
    path.write_text('kind = "webhook"\nwhen = 2026-11-23T06:00:00Z\n[settings]\nurl = "https://a.example"\n'
                    'tags = ["x"]\n', encoding="utf-8")
    first = read_toml(path)
    first["settings"]["url"] = "changed by a caller"
    first["settings"]["tags"].append("y")
    again = read_toml(path)
    assert again == {"kind": "webhook", "when": datetime(2026, 11, 23, 6, tzinfo=UTC),
                     "settings": {"url": "https://a.example", "tags": ["x"]}}
    path.write_text('kind = "webhook"\n[settings]\nurl = "https://b.example"\n', encoding="utf-8")
    assert read_toml(path)["settings"] == {"url": "https://b.example"}
    path.write_text('kind = "webhook"\n[settings\n', encoding="utf-8")
    for _ in range(2):  # a broken file is refused every time it is read
        with pytest.raises(ConfigError, match="not valid TOML"):
            read_toml(path)
