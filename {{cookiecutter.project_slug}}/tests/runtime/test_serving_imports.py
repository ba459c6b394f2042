"""No import searches on the request path (issue 13): with pandas absent, as in the image,
scikit-learn's ``import pandas`` probes once scanned sys.path 8 times per predict (~0.4 ms each as
uid 1000 on fuse-overlayfs). Counted by tests/support/import_spy.py in a fresh process."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.serving import imports
from {{ cookiecutter.package_name }}.settings import MODEL_LIBRARY


def spy(project_root, model_dir, *flags: str) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(project_root / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, str(project_root / "tests" / "support" / "import_spy.py"), str(model_dir), *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_import_search_reaches_the_file_system_per_request(project_root, served):
    counts = spy(project_root, served[2])
    assert counts["requests"] == 30
    assert counts["per_request"] == 0, counts["names"]


@pytest.mark.skipif(
    MODEL_LIBRARY != "scikit-learn", reason="scikit-learn's imputer is what probes for pandas"
)
def test_the_spy_sees_the_probes_without_the_absent_module_cache(project_root, served):
    counts = spy(project_root, served[2], "--no-cache")
    assert counts["per_request"] >= 1 and "pandas" in counts["names"]  # the spy is not blind


def test_a_miss_is_searched_for_once_then_refused_at_once(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    absent = imports.install()
    assert imports.install() is absent  # idempotent: one pair of finders per process
    name = "no_such_module_for_the_serving_test"
    with pytest.raises(ModuleNotFoundError):
        __import__(name)
    assert name in absent and name not in sys.modules  # sys.modules is left alone (sklearn reads it)
    searched = []
    original = importlib.machinery.PathFinder.find_spec
    monkeypatch.setattr(
        importlib.machinery.PathFinder,
        "find_spec",
        classmethod(
            lambda cls, name, path=None, target=None: searched.append(name) or original(name, path, target)
        ),
    )
    with pytest.raises(ModuleNotFoundError, match=name):
        __import__(name)
    assert searched == []  # refused by the first finder: sys.path was not scanned again
    with pytest.raises(ModuleNotFoundError):
        __import__("another_missing_module_for_the_serving_test")
    assert searched == ["another_missing_module_for_the_serving_test"]  # the spy itself works
