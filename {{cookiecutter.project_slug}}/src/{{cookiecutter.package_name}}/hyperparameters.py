"""Hyperparameters from SageMaker's hyperparameters.json into a typed ``model.Hyperparameters``.

SageMaker passes every hyperparameter as a string (the CreateTrainingJob API only takes
string-to-string maps), so types come from the dataclass fields and ranges from
``model.HYPERPARAMETER_RULES``. Absent names keep their defaults; unknown names and bad values fail
with a message that names the parameter, so a typo cannot silently train with a default.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

from .model import HYPERPARAMETER_RULES, Hyperparameters


class HyperparameterError(ValueError):
    """A hyperparameter that is unknown, of the wrong type or out of range."""


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


def _convert(name: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() in {"true", "1", "yes"}:
            return True
        if text.lower() in {"false", "0", "no"}:
            return False
        raise HyperparameterError(f"hyperparameter {name}={text!r}: expected true or false")
    if kind is int:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number != int(number):
            raise HyperparameterError(f"hyperparameter {name}={text!r}: expected a whole number")
        return int(number)
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise HyperparameterError(f"hyperparameter {name}={text!r}: expected a finite number")
        return number
    return text


def _check_rule(name: str, value: Any) -> None:
    rule = HYPERPARAMETER_RULES.get(name)
    if rule is None:
        return
    if all(isinstance(r, str) for r in rule):
        if value not in rule:
            raise HyperparameterError(
                f"hyperparameter {name}={value!r}: must be one of {', '.join(map(str, rule))}"
            )
        return
    low, high = rule
    if not low <= value <= high:
        raise HyperparameterError(f"hyperparameter {name}={value!r}: must be between {low:g} and {high:g}")


def parse(raw: Mapping[str, Any]) -> Hyperparameters:
    """Typed, range-checked hyperparameters from SageMaker's string map."""
    types = get_type_hints(Hyperparameters)
    known = [f.name for f in fields(Hyperparameters)]
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if is_reserved(name):
            continue
        if name not in types:
            raise HyperparameterError(f"unknown hyperparameter {name!r} (known: {', '.join(known)})")
        values[name] = _convert(name, _unquote(value), types[name])
        _check_rule(name, values[name])
    return Hyperparameters(**values)


def load(path: Path) -> Hyperparameters:
    """Hyperparameters from a hyperparameters.json file; defaults when the file does not exist."""
    if not path.exists():
        return Hyperparameters()
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HyperparameterError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise HyperparameterError(
            f"{path}: expected a JSON object of name -> value, got {type(raw).__name__}"
        )
    return parse(raw)
