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


def runtime_import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the runtime modules it imports (absolute or relative, at any depth of the file)."""
    root = src / RUNTIME
    modules = {
        ".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    for candidate in (f"{base}.{alias.name}", base):
                        if candidate in modules and candidate != name:
                            edges.add(candidate)
                            break
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules and a.name != name}
        graph[name] = edges
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, stack = set(), list(graph.get(start, ()))
    while stack:
        module = stack.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            stack.extend(graph.get(module, ()))
    return False


def test_no_import_cycle_involves_model_py(project_root: Path) -> None:
    graph = runtime_import_graph(project_root / "src")
    model = f"{RUNTIME}.model"
    assert graph[model], "model.py imports the project's Param and model_files"
    assert [m for m in graph[model] if reaches(graph, m, model)] == []


def test_a_cycle_through_model_py_is_found(tmp_path: Path) -> None:
    package = tmp_path / RUNTIME
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("from .params import Param\n")
    (package / "params.py").write_text("def f():\n    from . import model\n    return model\n")
    graph = runtime_import_graph(tmp_path)
    assert reaches(graph, f"{RUNTIME}.params", f"{RUNTIME}.model")
