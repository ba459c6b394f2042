"""container/precompile.py: the build's bytecode step fails the build on a broken entrypoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def precompile(project_root: Path, pythonpath: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no bytecode written into this venv
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    script = project_root / "container" / "precompile.py"
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)


def test_every_entrypoint_imports(project_root):
    result = precompile(project_root)
    assert result.returncode == 0, result.stderr
    assert "precompile: error" not in result.stderr


def test_a_native_library_that_does_not_load_fails_the_build_and_names_the_cause(project_root, tmp_path):
    # A numpy whose import fails as a stripped OpenBLAS made it fail (docs/decisions.md).
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text(
        "raise ImportError('IMPORTANT: PLEASE READ THIS\\n\\nOriginal error was: libopenblas.so: "
        "ELF load command address/offset not page-aligned')\n"
    )
    result = precompile(project_root, str(tmp_path))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("precompile: error")]
    named = {line.split("cannot import ", 1)[1].split(":", 1)[0].split(".", 1)[1] for line in lines}
    # Each entrypoint that imports numpy is named; serve's launcher imports only the standard library.
    assert named == {"serving.app", "steps.train", "steps.validate", "steps.evaluate"}
    assert all(line.endswith("ELF load command address/offset not page-aligned") for line in lines)
    assert any(".serving.app: ImportError: Original error was: libopenblas.so" in line for line in lines)
