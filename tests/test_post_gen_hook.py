"""The post-generation hook's helpers: option pruning and run bits."""

from __future__ import annotations

import importlib.util
import os

from conftest import TEMPLATE

spec = importlib.util.spec_from_file_location("post_gen_project", TEMPLATE / "hooks" / "post_gen_project.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


def make_pipeline(root) -> None:
    (root / "pipeline").mkdir()
    (root / hook.ASL).write_text('{"plain": true}')
    (root / hook.ASL_HPO).write_text('{"tuning": true}')


def test_hpo_on_ships_the_tuning_state_machine(tmp_path) -> None:
    make_pipeline(tmp_path)
    hook.use_hpo_state_machine(tmp_path, enabled=True)
    assert (tmp_path / hook.ASL).read_text() == '{"tuning": true}'
    assert not (tmp_path / hook.ASL_HPO).exists()


def test_hpo_off_removes_the_tuning_state_machine(tmp_path) -> None:
    make_pipeline(tmp_path)
    hook.use_hpo_state_machine(tmp_path, enabled=False)
    assert (tmp_path / hook.ASL).read_text() == '{"plain": true}'
    assert not (tmp_path / hook.ASL_HPO).exists()


def test_run_bits_set_on_entrypoints(tmp_path) -> None:
    (tmp_path / "container").mkdir()
    script = tmp_path / "container" / "train"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    hook.set_run_bits(tmp_path)
    assert os.access(script, os.X_OK)
