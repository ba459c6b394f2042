"""Fill the state machine's ``${Name}`` tokens exactly as CloudFormation ``DefinitionSubstitutions`` does.

One helper for both places the ASL file runs: the deploy CLI checks a rendering before upload, and
the offline emulator renders the definition moto's CloudFormation leaves empty. CloudFormation
replaces each ``${Name}`` with the value as plain text (no JSON escaping) and refuses a definition
that names a substitution it was not given.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# ${Name}: letters, digits and underscores, as CloudFormation accepts for substitution keys.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


# Tokens filled from the model spec at deploy time (render_model_tokens), before CloudFormation
# fills the rest: a user who edits model.py changes the tuning ranges, metric definitions and the
# Init state's checks without touching the ASL. Each value is embedded as JSON text that the ASL
# reads with $parse('${Token}').
MODEL_TOKENS = (
    "RunDefaults",
    "HyperparameterSpec",
    "HyperparameterDefaults",
    "TuningParameterRanges",
    "TuningObjective",
    "MetricDefinitions",
)
# Tuning defaults when the execution input does not say (section 6 of the execution input).
TUNING_MAX_JOBS = 8
TUNING_MAX_PARALLEL_JOBS = 2
# Every job's storage and time limit, and the training channels' input mode, when the execution
# input does not say (Init bounds them: docs/architecture.md, "Execution input"). 10 GB and one
# hour suit the default instance and data; FastFile streams S3 objects instead of copying them first.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html
VOLUME_SIZE_GB = 10
MAX_RUNTIME_SECONDS = 3600
TRAINING_INPUT_MODE = "File"


class DefinitionError(ValueError):
    """A definition that CloudFormation would refuse: a token without a value, or invalid JSON."""


def placeholders(asl_text: str) -> set[str]:
    """Every ``${Name}`` token in the definition text."""
    return set(PLACEHOLDER.findall(asl_text))


def render_definition(asl_text: str, substitutions: Mapping[str, object]) -> str:
    """The definition with every ``${Name}`` replaced by ``str(substitutions[Name])``.

    Raises DefinitionError when a token has no substitution or the result is not JSON.
    Extra substitutions are ignored, as CloudFormation does.
    """
    missing = sorted(placeholders(asl_text) - set(substitutions))
    if missing:
        raise DefinitionError(f"no DefinitionSubstitutions value for: {', '.join(missing)}")
    rendered = PLACEHOLDER.sub(lambda match: str(substitutions[match.group(1)]), asl_text)
    try:
        json.loads(rendered)
    except json.JSONDecodeError as error:
        raise DefinitionError(
            f"the definition is not valid JSON after substitution (a value with a quote or backslash?): {error}"
        ) from error
    return rendered


def embedded_json(value: object) -> str:
    """``value`` as JSON text that survives two quotings: a JSONata string literal ``'...'`` inside
    a JSON string (the JSONata expression of an ASL field). JSONata strings take JSON's escapes, so a quote is \\u0027."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    jsonata_literal = text.replace("\\", "\\\\").replace("'", "\\u0027")
    return json.dumps(jsonata_literal)[1:-1]


def model_substitutions() -> dict[str, str]:
    """The MODEL_TOKENS values from the model spec (hyperparameters.py, metrics.py) and settings."""
    from {{ cookiecutter.package_name }} import hyperparameters, metrics, settings

    values = {
        "RunDefaults": {
            "tune": settings.ENABLE_HPO,
            "max_jobs": TUNING_MAX_JOBS,
            "max_parallel_jobs": TUNING_MAX_PARALLEL_JOBS,
            "volume_size_gb": VOLUME_SIZE_GB,
            "max_runtime_seconds": MAX_RUNTIME_SECONDS,
            "training_input_mode": TRAINING_INPUT_MODE,
            **training_hosts(),
        },
        "HyperparameterSpec": hyperparameters.spec(),
        "HyperparameterDefaults": hyperparameters.defaults(),
        "TuningParameterRanges": hyperparameters.tuning_ranges(),
        "TuningObjective": metrics.tuning_objective(),
        "MetricDefinitions": metrics.metric_definitions(),
    }
    return {name: embedded_json(value) for name, value in values.items()}


def training_hosts() -> dict[str, object]:
    """Whether model.py's estimator trains one model across hosts, and its library, for Init's refusal
    of ``training_instance_count`` > 1: every host runs the train step, so an estimator without a
    data-parallel fit (scikit-learn) would train N separate models on a share of the rows each."""
    from {{ cookiecutter.package_name }} import model, settings

    return {
        # getattr: a model.py written before the constant trains on one host.
        "distributed_training": bool(getattr(model, "DISTRIBUTED_TRAINING", False)),
        "model_library": getattr(model, "LIBRARY", settings.MODEL_LIBRARY),
    }


def render_model_tokens(asl_text: str, substitutions: Mapping[str, object] | None = None) -> str:
    """The definition with only the MODEL_TOKENS filled (CloudFormation fills the others later).

    Used by the deploy step before the definition is uploaded, so deployment and the offline
    emulator (which renders what was uploaded) run the same text.
    """
    values = model_substitutions() if substitutions is None else substitutions
    missing = sorted(set(MODEL_TOKENS) & placeholders(asl_text) - set(values))
    if missing:
        raise DefinitionError(f"no model value for: {', '.join(missing)}")
    return PLACEHOLDER.sub(
        lambda match: str(values[match.group(1)]) if match.group(1) in MODEL_TOKENS else match.group(0),
        asl_text,
    )
