"""Hyperparameters: the spec in ``model.HYPERPARAMETERS`` plus the generic ones, parsed from strings.

SageMaker passes every hyperparameter as a string (the CreateTrainingJob API only takes
string-to-string maps), so each value is converted to the type its ``Param`` declares and checked
against its range. Absent names keep their defaults; unknown names and bad values fail with a
message that names the parameter, so a typo cannot silently train with a default.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html

The same spec feeds the tuning job's ``ParameterRanges`` (``tuning_ranges``) and the state
machine's check of execution-input overrides (``spec``), so nothing outside ``model.py`` names a
model hyperparameter. Generic ones (``GENERIC``) are added per problem type: binary models get the
``positive_class`` and the decision ``threshold``, recorded in the model's metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import model, settings
from .params import Param

# Added for every model of a binary problem; "" means "the second class in sorted order".
GENERIC: dict[str, tuple[Param, ...]] = {
    "binary": (
        Param(
            "positive_class",
            "categorical",
            "",
            tune=False,
            help="label value scored as positive (blank: the second class in sorted order)",
        ),
        Param(
            "threshold",
            "float",
            0.5,
            0.0,
            1.0,
            tune=False,
            help="positive-class score at or above which the positive class is predicted",
        ),
    ),
    "multiclass": (),
    "regression": (),
    "ranking": (),
}


class HyperparameterError(ValueError):
    """A hyperparameter that is unknown, of the wrong type or out of range."""


def all_params(problem_type: str | None = None) -> tuple[Param, ...]:
    """The model's own parameters followed by the generic ones for ``problem_type``."""
    return (*model.HYPERPARAMETERS, *GENERIC[problem_type or settings.PROBLEM_TYPE])


def model_names() -> set[str]:
    """Names that go to ``model.build_estimator`` (the generic ones stay with the Predictor)."""
    return {p.name for p in model.HYPERPARAMETERS}


def is_reserved(name: str) -> bool:
    """Keys SageMaker adds itself: framework settings (sagemaker_*) and tuning ones (_tuning_*)."""
    return name.startswith(("sagemaker_", "_"))


def _unquote(value: Any) -> str:
    # Some SDK paths JSON-encode values ('"balanced"'); the API itself sends plain strings.
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return str(json.loads(text))
        except json.JSONDecodeError:
            pass
    return text


def _number(param: Param, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise HyperparameterError(f"hyperparameter {param.name}={text!r}: expected a finite number")
    return number


def convert(param: Param, raw: Any) -> Any:
    """One value from its string form, typed and range-checked."""
    text = _unquote(raw)
    if param.kind == "categorical":
        if param.values and text not in param.values:
            raise HyperparameterError(
                f"hyperparameter {param.name}={text!r}: must be one of {', '.join(param.values)}"
            )
        return text
    number = _number(param, text)
    value: float | int = number
    if param.kind == "int":
        if number != int(number):
            raise HyperparameterError(f"hyperparameter {param.name}={text!r}: expected a whole number")
        value = int(number)
    low = -math.inf if param.low is None else param.low
    high = math.inf if param.high is None else param.high
    if not low <= value <= high:
        raise HyperparameterError(
            f"hyperparameter {param.name}={value!r}: must be between {low:g} and {high:g}"
        )
    return value


def parse(raw: Mapping[str, Any], problem_type: str | None = None) -> dict[str, Any]:
    """Typed, range-checked hyperparameters (every known name, defaults filled in)."""
    params = {p.name: p for p in all_params(problem_type)}
    values = {name: p.default for name, p in params.items()}
    for name, value in raw.items():
        if is_reserved(name):
            continue
        if name not in params:
            raise HyperparameterError(f"unknown hyperparameter {name!r} (known: {', '.join(params)})")
        values[name] = convert(params[name], value)
    return values


def load(path: Path) -> dict[str, Any]:
    """Hyperparameters from a hyperparameters.json file; defaults when the file does not exist."""
    if not path.exists():
        return parse({})
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HyperparameterError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise HyperparameterError(
            f"{path}: expected a JSON object of name -> value, got {type(raw).__name__}"
        )
    return parse(raw)


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def defaults(problem_type: str | None = None) -> dict[str, str]:
    """The string map for CreateTrainingJob.HyperParameters (blank defaults left out)."""
    return {p.name: _text(p.default) for p in all_params(problem_type) if _text(p.default) != ""}


def spec(problem_type: str | None = None) -> list[dict[str, Any]]:
    """The spec as JSON-ready dicts, for the state machine's check of execution-input overrides."""
    return [
        {
            "name": p.name,
            "kind": p.kind,
            "default": p.default,
            "low": p.low,
            "high": p.high,
            "scale": p.scale,
            "values": list(p.values),
        }
        for p in all_params(problem_type)
    ]


SCALING = {"linear": "Linear", "log": "Logarithmic"}


def tuning_ranges(problem_type: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """SageMaker's ``ParameterRanges`` for the tunable parameters.

    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ParameterRanges.html
    """
    ranges: dict[str, list[dict[str, Any]]] = {
        "ContinuousParameterRanges": [],
        "IntegerParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for p in all_params(problem_type):
        if not p.tune:
            continue
        if p.kind == "categorical":
            if p.values:
                ranges["CategoricalParameterRanges"].append({"Name": p.name, "Values": list(p.values)})
            continue
        key = "ContinuousParameterRanges" if p.kind == "float" else "IntegerParameterRanges"
        low, high = (p.low, p.high) if p.kind == "float" else (int(p.low or 0), int(p.high or 0))
        ranges[key].append(
            {"Name": p.name, "MinValue": str(low), "MaxValue": str(high), "ScalingType": SCALING[p.scale]}
        )
    return ranges
