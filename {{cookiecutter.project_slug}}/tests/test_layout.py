"""The three packages and the one direction of their imports: emulator -> deploy -> runtime.

The runtime is what the image carries (container/Dockerfile copies it alone), so it must never
import the deploy tooling or the emulator; the deploy tooling runs in CI without the emulator's
dependencies, so it must never import the emulator. Checked on the source (every import
statement, wherever it stands) and in a fresh interpreter (what importing every runtime module
actually loads).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import settings

PACKAGE = settings.PACKAGE_NAME
RUNTIME, DEPLOY, EMULATOR = PACKAGE, f"{PACKAGE}_deploy", f"{PACKAGE}_emulator"
# What each package may import of the project's packages.
ALLOWED = {RUNTIME: {RUNTIME}, DEPLOY: {RUNTIME, DEPLOY}, EMULATOR: {RUNTIME, DEPLOY, EMULATOR}}


def imported_packages(path: Path) -> set[str]:
    """The top-level names an absolute import in ``path`` reaches (relative imports stay inside)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(src: Path) -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((src / package).rglob("*.py")):
            wrong = (imported_packages(path) & set(ALLOWED)) - allowed
            found += [f"{path.relative_to(src)} imports {name}" for name in sorted(wrong)]
    return found


def test_the_three_packages_exist(project_root: Path) -> None:
    assert sorted(
        p.name for p in (project_root / "src").iterdir() if (p / "__init__.py").is_file()
    ) == sorted(ALLOWED)


def test_imports_run_one_way(project_root: Path) -> None:
    assert violations(project_root / "src") == []


@pytest.mark.parametrize(("package", "target"), [(RUNTIME, EMULATOR), (RUNTIME, DEPLOY), (DEPLOY, EMULATOR)])
def test_an_import_the_wrong_way_is_found(tmp_path: Path, package: str, target: str) -> None:
    for name in ALLOWED:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    # Inside a function, as a lazy import would hide it.
    (tmp_path / package / "sneaky.py").write_text(f"def f():\n    from {target} import x\n    return x\n")
    assert violations(tmp_path) == [f"{package}/sneaky.py imports {target}"]


def test_importing_every_runtime_module_loads_neither_deploy_nor_emulator(project_root: Path) -> None:
    script = f"""
import pkgutil, importlib, sys
import {RUNTIME}
for module in pkgutil.walk_packages({RUNTIME}.__path__, "{RUNTIME}."):
    importlib.import_module(module.name)
print(sorted(n for n in sys.modules if n.split(".")[0] in ("{DEPLOY}", "{EMULATOR}")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project_root,
        env={**os.environ, "PYTHONPATH": str(project_root / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
