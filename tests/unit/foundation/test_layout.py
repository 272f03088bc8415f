"""`operator/` must never shadow the standard library's `operator` module."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import coinfeed

REPO = Path(coinfeed.__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def operator_module_file(cwd: Path) -> Path:
    """Which file `import operator` loads for a script started in ``cwd``. ``-S`` because `site`
    imports the stdlib module before any script runs, which would hide a shadowing package."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", "import operator; print(operator.__file__)"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out).resolve()


def test_component_folders_are_not_top_level_packages() -> None:
    for folder in ("operator", "producers", "spark"):
        assert (REPO / folder).is_dir()
        assert not (REPO / folder / "__init__.py").exists(), f"{folder}/__init__.py must not exist"
        link = REPO / "coinfeed" / folder
        assert link.is_symlink() and link.resolve() == (REPO / folder).resolve()


def test_import_operator_from_repo_root_is_the_standard_library() -> None:
    assert operator_module_file(REPO).parent == STDLIB


def test_the_probe_would_see_a_shadowing_package(tmp_path: Path) -> None:
    (tmp_path / "operator").mkdir()
    (tmp_path / "operator" / "__init__.py").write_text("")
    assert operator_module_file(tmp_path) == tmp_path / "operator" / "__init__.py"


def test_coinfeed_operator_is_importable() -> None:
    assert any((REPO / "operator").glob("*.py")), "operator/ has no modules yet"
    code = (
        "import importlib.util as u; s = u.find_spec('coinfeed.operator'); "
        "print(*s.submodule_search_locations)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert [Path(p).resolve() for p in out] == [(REPO / "operator").resolve()]
