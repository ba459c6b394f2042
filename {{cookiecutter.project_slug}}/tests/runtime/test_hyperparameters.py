"""hyperparameters.json (all strings) into typed, range-checked values, and the spec that the
tuning job and the state machine read from model.HYPERPARAMETERS (never from hard-coded names)."""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.package_name }} import metrics, model
from {{ cookiecutter.package_name }}.hyperparameters import (
    GENERIC,
    HyperparameterError,
    Param,
    all_params,
    convert,
    defaults,
    load,
    parse,
    spec,
    tuning_ranges,
)
from {{ cookiecutter.package_name }}.settings import GATE_METRIC, PROBLEM_TYPE

PARAMS = all_params()
NUMERIC = [p for p in PARAMS if p.kind != "categorical"]
FLOAT = Param("rate", "float", 0.1, 1e-3, 1.0, scale="log")
INT = Param("rounds", "int", 100, 10, 1000)
CHOICE = Param("weight", "categorical", "none", values=("none", "balanced"))
FREE = Param("label", "categorical", "")


def test_absent_names_keep_their_defaults():
    assert parse({}) == {p.name: p.default for p in PARAMS}


def test_generic_parameters_follow_the_problem_type():
    names = [p.name for p in PARAMS]
    assert names == [*(p.name for p in model.HYPERPARAMETERS), *(p.name for p in GENERIC[PROBLEM_TYPE])]
    assert ("threshold" in names) is (PROBLEM_TYPE == "binary")


def test_strings_become_the_declared_types():
    values = parse({p.name: str(p.high) for p in NUMERIC})
    for p in NUMERIC:
        assert values[p.name] == p.high and type(values[p.name]) is (int if p.kind == "int" else float)


def test_sagemaker_and_tuning_keys_are_ignored():
    raw = {"sagemaker_region": '"eu-west-1"', "_tuning_objective_metric": "validation:x"}
    assert parse(raw) == parse({})


@pytest.mark.parametrize(
    ("param", "raw", "expected"),
    [
        (INT, "1e2", 100),  # tuners may send integral floats
        (CHOICE, '"balanced"', "balanced"),  # JSON-encoded by some SDKs
        (FLOAT, 0.5, 0.5),  # a local caller passing numbers
        (FREE, " yes ", "yes"),  # free text (a class label)
    ],
)
def test_lenient_but_unambiguous_spellings(param, raw, expected):
    assert convert(param, raw) == expected


@pytest.mark.parametrize(
    ("param", "raw", "message"),
    [
        (FLOAT, "abc", "hyperparameter rate='abc': expected a finite number"),
        (FLOAT, "nan", "hyperparameter rate='nan': expected a finite number"),
        (FLOAT, "0", "hyperparameter rate=0.0: must be between 0.001 and 1"),
        (INT, "12.5", "hyperparameter rounds='12.5': expected a whole number"),
        (INT, "5", "hyperparameter rounds=5: must be between 10 and 1000"),
        (CHOICE, "auto", "hyperparameter weight='auto': must be one of none, balanced"),
    ],
)
def test_bad_values_name_the_parameter(param, raw, message):
    with pytest.raises(HyperparameterError) as error:
        convert(param, raw)
    assert str(error.value) == message


def test_unknown_names_list_the_known_ones():
    with pytest.raises(HyperparameterError) as error:
        parse({"no_such_name": "1"})
    assert (
        str(error.value)
        == f"unknown hyperparameter 'no_such_name' (known: {', '.join(p.name for p in PARAMS)})"
    )


def test_load_reads_the_file_and_defaults_without_one(tmp_path):
    path = tmp_path / "hyperparameters.json"
    assert load(path) == parse({})
    first = NUMERIC[0]
    path.write_text(json.dumps({first.name: str(first.low)}))
    assert load(path)[first.name] == first.low


@pytest.mark.parametrize(
    ("text", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object")]
)
def test_load_refuses_a_broken_file(tmp_path, text, message):
    path = tmp_path / "hyperparameters.json"
    path.write_text(text)
    with pytest.raises(HyperparameterError, match=message):
        load(path)


def test_model_spec_is_well_formed():
    """Every tunable number has a range; log scales start above zero; defaults parse."""
    for p in model.HYPERPARAMETERS:
        assert p.kind in ("float", "int", "categorical")
        if p.kind != "categorical":
            assert p.low is not None and p.high is not None and p.low <= p.default <= p.high, p
            assert p.scale == "linear" or p.low > 0, p
        elif p.tune:
            assert p.default in p.values and len(p.values) >= 2, p
    assert parse(defaults()) == parse({})


def test_defaults_are_the_string_map_for_create_training_job():
    values = defaults()
    assert all(isinstance(v, str) and v for v in values.values())
    assert set(values) == {p.name for p in PARAMS if str(p.default) != ""}


def test_spec_is_json_for_the_state_machine():
    entries = json.loads(json.dumps(spec()))
    assert [e["name"] for e in entries] == [p.name for p in PARAMS]
    assert all(set(e) == {"name", "kind", "default", "low", "high", "scale", "values"} for e in entries)


def test_tuning_ranges_cover_the_tunable_parameters_in_sagemaker_shape():
    ranges = tuning_ranges()
    assert set(ranges) == {
        "ContinuousParameterRanges",
        "IntegerParameterRanges",
        "CategoricalParameterRanges",
    }
    named = {r["Name"]: (key, r) for key, entries in ranges.items() for r in entries}
    tunable = [p for p in PARAMS if p.tune and (p.kind != "categorical" or p.values)]
    assert set(named) == {p.name for p in tunable}
    for p in tunable:
        key, entry = named[p.name]
        if p.kind == "categorical":
            assert (key, entry["Values"]) == ("CategoricalParameterRanges", list(p.values))
            continue
        assert key == ("ContinuousParameterRanges" if p.kind == "float" else "IntegerParameterRanges")
        assert float(entry["MinValue"]) == p.low and float(entry["MaxValue"]) == p.high
        assert entry["ScalingType"] == {"linear": "Linear", "log": "Logarithmic"}[p.scale]
        convert(p, entry["MinValue"]), convert(p, entry["MaxValue"])  # the tuner's strings parse back


def test_metric_definitions_and_objective_follow_the_problem_type():
    definitions = metrics.metric_definitions()
    names = metrics.METRICS[PROBLEM_TYPE]
    assert [d["Name"] for d in definitions] == [f"{s}:{n}" for s in ("train", "validation") for n in names]
    objective = metrics.tuning_objective()
    assert objective["MetricName"] == f"validation:{GATE_METRIC}"
    assert objective["Type"] == ("Maximize" if metrics.higher_is_better(GATE_METRIC) else "Minimize")


def test_metric_definition_regexes_read_the_training_log_lines():
    import re

    values = {name: -0.25 - i for i, name in enumerate(metrics.METRICS[PROBLEM_TYPE])}
    line = metrics.format_for_logs(values, "train") + " " + metrics.format_for_logs(values, "validation")
    for definition in metrics.metric_definitions():
        _, name = definition["Name"].split(":")
        found = re.findall(definition["Regex"], line)
        assert [float(v) for v in found] == [values[name]], definition
    assert not re.findall(metrics.metric_definitions()[0]["Regex"], "train:x=nan;")
