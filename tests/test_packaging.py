"""`broadcast init` from a wheel installed into a fresh venv, offline: no checkout on the path."""

import site
import subprocess
import sys
import venv

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"),
         str(REPO)],
        check=True, capture_output=True, cwd=work,
    )
    wheel = next((work / "dist").glob("broadcast-*.whl"))
    env = work / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    # The dependencies come from this interpreter's site-packages through a plain .pth line, which (unlike an
    # editable install's finder) cannot put the checkout itself on the path.
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(f"{purelib}/_host_deps.pth", "w") as pth:
        pth.write("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    return env


def test_the_installed_package_is_the_wheel(installed):
    where = subprocess.run([installed / "bin" / "python", "-c", "import broadcast; print(broadcast.__file__)"],
                           check=True, capture_output=True, text=True, cwd="/").stdout
    assert where.startswith(str(installed))


def test_init_from_the_wheel_makes_a_working_workspace(installed, tmp_path):
    target = tmp_path / "council"
    result = subprocess.run([installed / "bin" / "broadcast", "init", str(target)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Created a workspace in {target}" in result.stdout
    assert (target / "broadcast.toml").is_file()
    assert len(list((target / "templates").glob("*.md"))) >= 11
    assert list((target / "channels").glob("*.toml"))
    assert (target / "runbooks" / "README.md").is_file()
    assert not (target / "approvals.toml").exists()
    people = (target / "people.toml").read_text(encoding="utf-8")
    assert "The second-person rule compares OS accounts" in people and "# [[person]]" in people
    ignore = (target / ".gitignore").read_text()
    for line in ("broadcast.db", "site/", "lists/"):
        assert line in ignore.splitlines()
    lint = subprocess.run([installed / "bin" / "broadcast", "templates", "lint"],
                          capture_output=True, text=True, cwd=target)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    again = subprocess.run([installed / "bin" / "broadcast", "init", str(target)], capture_output=True, text=True)
    assert again.returncode == 2 and "a workspace is already here" in again.stderr
