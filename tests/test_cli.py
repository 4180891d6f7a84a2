import os
import subprocess
import sys

import pytest
from conftest import REPO


def test_help_groups_commands_by_phase(run):
    result = run("--help")
    assert result.exit_code == 0
    out = result.output
    assert out.index("Prepare:") < out.index("\n  templates ") < out.index("Warn and inform:")
    assert out.index("Warn and inform:") < out.index("\n  warn ") < out.index("Review:") < out.index("\n  review ")


def test_version():
    result = subprocess.run([sys.executable, "-m", "broadcast", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("broadcast, version ")


def test_cli_import_pulls_in_nothing_heavy():
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import broadcast.cli"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "click" in modules
    heavy = {"httpx", "jinja2", "sqlite_utils", "babel", "lxml", "tenacity", "sqlite3"} & modules
    assert heavy == set()


def test_the_command_table_says_what_each_command_says():
    """`broadcast --help` lists the commands from broadcast.cli.COMMANDS without importing them: every command of
    every module in broadcast.commands is there, in its order, with its module, phase and summary."""
    import importlib
    import pkgutil

    import broadcast.commands
    from broadcast.cli import COMMANDS

    found = {}
    for module in pkgutil.iter_modules(broadcast.commands.__path__):
        for command in getattr(importlib.import_module(f"broadcast.commands.{module.name}"), "COMMANDS", []):
            found[command.name] = (module.name, getattr(command, "phase", "prepare"),
                                   command.get_short_help_str(limit=70))
    assert found == COMMANDS
    ordered = [name for module in dict.fromkeys(m for m, _, _ in COMMANDS.values())
               for name in (c.name for c in importlib.import_module(f"broadcast.commands.{module}").COMMANDS)]
    assert ordered == list(COMMANDS)  # a module's commands together, in the order it lists them


def test_help_imports_no_command_and_a_command_only_its_own():
    def loaded(*args):
        code = ("import sys\nsys.argv = ['broadcast', *sys.argv[1:]]\nfrom broadcast.cli import main\n"
                "try:\n    main()\nexcept SystemExit:\n    pass\n"
                "print(sorted(m for m in sys.modules if m.startswith('broadcast.commands.')))")
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert loaded("--help") == "[]"
    assert loaded("store", "--help") == "['broadcast.commands.store']"


@pytest.mark.parametrize("columns", ["60", "200", "40", "not a number"])
def test_help_is_wrapped_as_click_wraps_it_without_importing_shutil(columns):
    # broadcast's entry point, where an import of shutil fails (a .pth file may have loaded it already) ...
    ours = ("import sys\nsys.modules['shutil'] = None\nsys.argv = ['broadcast', *sys.argv[1:]]\n"
            "from broadcast.cli import main\nmain()")
    # ... and click's own wrapping, to the width it finds through shutil
    clicks = "import sys\nfrom broadcast.cli import cli\ncli.main(sys.argv[1:], prog_name='broadcast')"
    for args in (["--help"], ["warn", "--help"]):
        said = [subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                               env={**os.environ, "COLUMNS": columns}) for code in (ours, clicks)]
        assert [done.returncode for done in said] == [0, 0], said[0].stderr
        assert said[0].stdout == said[1].stdout


def test_preview_shows_every_variant_in_both_languages(run):
    result = run("templates", "preview", "school-closure", "--set", "school=Ysgol Bro Lliw",
                 "--set", "date=2026-11-23", "--set", "reason=heating", "--set", "next_update=9:30am",
                 "--set", "area=town")
    assert result.exit_code == 0, result.output
    out = result.output
    for language in ("en-GB", "cy-GB"):
        assert f"{language}\n" in out
    for variant in ("headline", "short", "body", "instruction"):
        assert out.count(f"  {variant} (") == 2
    assert "Ysgol Bro Lliw is closed on Monday 23 November 2026" in out
    assert "Mae Ysgol Bro Lliw ar gau ar Dydd Llun 23 Tachwedd 2026" in out
    assert "because of a heating failure" in out and "oherwydd methiant gwres" in out
    assert "Next update at 9:30am." in out
    assert "headline (51 characters)" in out
    assert "without the optional sentences" in out
    assert "Example values used" not in out


def test_preview_fills_in_examples_and_says_so(run):
    result = run("templates", "preview", "school-closure", "--set", "school=Ysgol Bro Lliw")
    assert result.exit_code == 0
    assert "Example values used for: date, reason, next_update, area" in result.output


def test_bad_variable_exits_2_with_error_and_hint(run):
    result = run("templates", "preview", "school-closure", "--set", "date=Monday")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error: --set date: it is not a date; expected a date like 2026-11-23" in result.stderr
    assert "hint: example: --set date=2026-11-23" in result.stderr
    assert "Traceback" not in result.output


def test_set_without_equals_and_repeated_set(run):
    result = run("templates", "preview", "school-closure", "--set", "school")
    assert result.exit_code == 2 and "Error: --set 'school' is not name=value" in result.stderr
    result = run("templates", "preview", "school-closure", "--set", "school=A", "--set", "school=B")
    assert result.exit_code == 2 and "Error: --set school is given more than once" in result.stderr


def test_no_workspace_exits_2_with_hint(run, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from broadcast.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BROADCAST_WORKSPACE", raising=False)
    result = CliRunner().invoke(cli, ["templates", "list"])
    assert result.exit_code == 2
    assert "no broadcast.toml here or in any folder above" in result.stderr
    assert "hint: cd into your workspace, pass --workspace DIR" in result.stderr


def test_usage_error_exits_2(run):
    result = run("templates", "preview")
    assert result.exit_code == 2 and "Missing argument 'NAME'" in result.stderr


def test_debug_shows_the_traceback(workspace_dir):
    result = subprocess.run(
        [sys.executable, "-m", "broadcast", "--workspace", str(workspace_dir), "--debug",
         "templates", "show", "nope"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_templates_list_approve_and_edit(run, workspace_dir):
    result = run("templates", "list")
    assert "school-closure  School closed" in result.output and "not approved" in result.output
    result = run("templates", "approve", "school-closure", "--by", "Alex Morgan")
    assert result.exit_code == 2 and "must give a name and a role" in result.stderr
    result = run("templates", "approve", "school-closure", "--by", "Alex Morgan, Head of Communications")
    assert result.exit_code == 0 and "Approved school-closure" in result.output
    assert "approved (Alex Morgan, Head of Communications" in run("templates", "list").output
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert "modified since approval (Alex Morgan" in run("templates", "list").output


def test_lint_exit_codes(run, workspace_dir):
    result = run("templates", "lint")
    assert result.exit_code == 0 and "1 template checked: 0 errors, 0 warnings." in result.output
    path = workspace_dir / "templates" / "school-closure.md"
    path.write_text(path.read_text(encoding="utf-8").replace("## instruction\n", "## instructions\n"),
                    encoding="utf-8")
    result = run("templates", "lint")
    assert result.exit_code == 2
    assert "unknown section '## instructions'" in result.output


def test_review_verify_ok_and_tampered(run, workspace_dir):
    import sqlite3

    run("templates", "approve", "school-closure", "--by", "Alex Morgan, Head of Communications")
    run("templates", "approve", "school-closure", "--by", "Sam Rees, Emergency Planning Manager")
    result = run("review", "verify")
    assert result.exit_code == 0 and result.output.startswith("OK  2 events, head ")
    conn = sqlite3.connect(workspace_dir / "broadcast.db")
    conn.executescript("DROP TRIGGER events_no_update; UPDATE events SET actor = 'Someone Else' WHERE id = 2;")
    conn.commit()
    conn.close()
    result = run("review", "verify")
    assert result.exit_code == 1
    assert "Error: the log does not verify at event 2: content does not match its hash" in result.stderr
    assert "The 1 event before it verifies" in result.stderr


def test_warn_dry_run_previews_channels_and_logs_nothing(run, workspace_dir):
    args = [f"--set={k}={v}" for k, v in
            {"school": "Hillside Primary School", "date": "2026-11-23", "reason": "snow",
             "next_update": "10:00", "area": "town"}.items()]
    result = run("warn", "school-closure", *args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "mastodon-council  mastodon  en-GB  135/500 characters (links count 23)" in result.output
    assert "| Hillside Primary School is closed on Monday 23 November 2026 because of snow and ice." in result.output
    assert "not approved" in result.output
    assert "Dry run: nothing was sent and nothing was logged." in result.output
    assert not (workspace_dir / "broadcast.db").exists()


def test_warn_unknown_channel_is_refused(run):
    result = run("warn", "school-closure", "--set", "school=A", "--set", "date=today", "--set", "reason=snow",
                 "--set", "next_update=10:00", "--set", "area=town", "--only", "mastodon-counsil", "--dry-run")
    assert result.exit_code == 2
    assert "no channel named 'mastodon-counsil'" in result.stderr
    assert "hint: did you mean 'mastodon-council'?" in result.stderr
