"""The post-generation hook's helpers: run bits."""

from __future__ import annotations

import importlib.util
import os

from conftest import TEMPLATE

spec = importlib.util.spec_from_file_location("post_gen_project", TEMPLATE / "hooks" / "post_gen_project.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


def test_run_bits_set_on_entrypoints(tmp_path) -> None:
    (tmp_path / "container").mkdir()
    script = tmp_path / "container" / "train"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    hook.set_run_bits(tmp_path)
    assert os.access(script, os.X_OK)
