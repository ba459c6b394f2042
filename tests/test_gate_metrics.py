"""The gate metrics are written in four places that cannot import one another: the pre-generation
hook (the template's one list), cookiecutter.json (the default per problem type and the prompt),
and the generated metrics.py. This test fails when any copy differs from the hook's."""

from __future__ import annotations

import ast
import re

from conftest import _HOOK, DEFAULTS, TEMPLATE
from cookiecutter.main import cookiecutter

PROBLEM_TYPES = DEFAULTS["problem_type"]


def generated_metrics(tmp_path) -> dict[str, object]:
    """METRICS and LOWER_IS_BETTER of a baked metrics.py, read as literals (nothing imported)."""
    cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path))
    source = next(tmp_path.glob("*/src/*/metrics.py")).read_text()
    found = {}
    for node in ast.parse(source).body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id in {"METRICS", "LOWER_IS_BETTER"}:
            value = node.value
            if isinstance(value, ast.Call):  # frozenset({...})
                value = value.args[0]
            found[target.id] = ast.literal_eval(value)
    return found


def test_generated_metrics_py_has_the_hooks_table(tmp_path) -> None:
    found = generated_metrics(tmp_path)
    assert found["METRICS"] == _HOOK.METRICS
    assert set(found["LOWER_IS_BETTER"]) == set(_HOOK.LOWER_IS_BETTER)


def test_cookiecutter_json_defaults_are_allowed_metrics() -> None:
    # The default expression maps each problem type to a metric; render it per type.
    expression = DEFAULTS["gate_metric"]
    defaults = dict(re.findall(r"'(\w+)': '(\w+)'", expression))
    assert set(defaults) == set(PROBLEM_TYPES)
    for problem, metric in defaults.items():
        assert metric in _HOOK.METRICS[problem], (problem, metric)


def test_the_prompt_lists_exactly_the_hooks_metrics() -> None:
    prompt = DEFAULTS["__prompts__"]["gate_metric"]
    for problem in PROBLEM_TYPES:
        listed = re.search(rf"{problem}: ([a-z_, 0-9]+?)(?:;|\))", prompt)
        assert listed, f"the gate_metric prompt does not list {problem}'s metrics"
        assert tuple(m.strip() for m in listed.group(1).split(",")) == _HOOK.METRICS[problem], problem
