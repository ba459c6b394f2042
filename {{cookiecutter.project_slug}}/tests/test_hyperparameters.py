"""hyperparameters.json (all strings) into typed, range-checked Hyperparameters."""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.package_name }}.hyperparameters import HyperparameterError, load, parse
from {{ cookiecutter.package_name }}.model import Hyperparameters


def test_absent_names_keep_their_defaults():
    assert parse({}) == Hyperparameters()


def test_strings_become_the_field_types():
    hp = parse({"C": "0.25", "max_iter": "500", "class_weight": "balanced"})
    assert hp == Hyperparameters(C=0.25, max_iter=500, class_weight="balanced")
    assert isinstance(hp.max_iter, int)


def test_sagemaker_and_tuning_keys_are_ignored():
    raw = {"C": "2", "sagemaker_region": '"eu-west-1"', "_tuning_objective_metric": "validation:roc_auc"}
    assert parse(raw) == Hyperparameters(C=2.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"max_iter": "1e3"}, Hyperparameters(max_iter=1000)),  # tuners may send integral floats
        (
            {"class_weight": '"balanced"'},
            Hyperparameters(class_weight="balanced"),
        ),  # JSON-encoded by some SDKs
        ({"C": 3}, Hyperparameters(C=3.0)),  # a local caller passing numbers
    ],
)
def test_lenient_but_unambiguous_spellings(raw, expected):
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"c": "1"}, "unknown hyperparameter 'c' (known: C, max_iter, class_weight)"),
        ({"C": "abc"}, "hyperparameter C='abc': expected a finite number"),
        ({"C": "nan"}, "hyperparameter C='nan': expected a finite number"),
        ({"C": "0"}, "hyperparameter C=0.0: must be between 1e-06 and 1e+06"),
        ({"max_iter": "12.5"}, "hyperparameter max_iter='12.5': expected a whole number"),
        ({"max_iter": "5"}, "hyperparameter max_iter=5: must be between 10 and 100000"),
        ({"class_weight": "auto"}, "hyperparameter class_weight='auto': must be one of none, balanced"),
    ],
)
def test_bad_values_name_the_parameter(raw, message):
    with pytest.raises(HyperparameterError) as error:
        parse(raw)
    assert str(error.value) == message


def test_load_reads_the_file_and_defaults_without_one(tmp_path):
    path = tmp_path / "hyperparameters.json"
    assert load(path) == Hyperparameters()
    path.write_text(json.dumps({"C": "0.5"}))
    assert load(path) == Hyperparameters(C=0.5)


@pytest.mark.parametrize(
    ("text", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object")]
)
def test_load_refuses_a_broken_file(tmp_path, text, message):
    path = tmp_path / "hyperparameters.json"
    path.write_text(text)
    with pytest.raises(HyperparameterError, match=message):
        load(path)
