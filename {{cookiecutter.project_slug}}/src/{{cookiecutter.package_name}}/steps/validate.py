"""Validate new training data against the production model's reference profile.

    python -m {{ cookiecutter.package_name }}.steps.validate --data DIR --reference-model URI|none --output DIR

Writes ``decision.json`` (shape in docs/architecture.md) and ``report.html`` to ``--output``.
Exit 0 for "proceed" and for "block" (a drift block is a correct outcome, not an error); exit 1
with ``/opt/ml/output/failure`` for a schema violation or unreadable input.

Fail closed: a reference model whose profile cannot be used (missing, unparseable, wrong version,
missing or malformed fields) means drift cannot be checked. Under ``--policy block`` the run is
blocked with that reason; under ``retrain`` it proceeds, and ``decision.json`` says so
(``"reference_usable": false`` with ``"reference_problem"``), as does the report's headline.
Only the first run (``--reference-model none``: no production model to protect) proceeds under
both policies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import data, settings
from ..artifacts import open_model
from ..drift import data_drift, schema
from ..drift.profile import PROFILE_FILE, ProfileError, load_profile
from ..reports import pages
from . import outputs

FIRST_RUN = "no reference model (first run): drift not checked"
# What each column profile must hold for the drift tests and schema checks (profile.py builds them).
NUMERIC_FIELDS = ("n", "missing", "min", "max", "mean", "std")
NUMERIC_DISTRIBUTION = ("points", "cum", "edges", "counts")
CATEGORICAL_FIELDS = ("n", "missing", "counts", "other")
TEXT_FIELDS = ("n", "missing", "counts", "other", "length")  # length: words per row, a numeric profile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Schema and drift checks of new training data.")
    parser.add_argument(
        "--data", type=Path, required=True, help="CSV file or folder of the new training data"
    )
    parser.add_argument(
        "--reference-model", default="none", help="s3://.../model.tar.gz, a local model, or none"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for decision.json and report.html")
    parser.add_argument("--psi-threshold", type=float, default=settings.PSI_THRESHOLD)
    parser.add_argument(
        "--ks-pvalue", type=float, default=settings.KS_PVALUE, help="alpha for KS / chi-squared"
    )
    parser.add_argument("--policy", choices=("retrain", "block"), default=settings.DRIFT_POLICY)
    parser.add_argument("--max-missing-rate", type=float, default=schema.MAX_MISSING_RATE)
    parser.add_argument("--range-margin", type=float, default=schema.RANGE_MARGIN)
    return parser.parse_args(argv)


def _base(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "step": "validate",
        "decision": "proceed",
        "drift_detected": False,
        "policy": args.policy,
        "share_drifted": 0.0,
        "drifted_features": [],
        "features": {},
        "reasons": [],
        "reference": str(args.reference_model) if str(args.reference_model).lower() != "none" else "none",
        "reference_usable": True,
        "reference_problem": None,
        "thresholds": {"psi": args.psi_threshold, "p_value": args.ks_pvalue},
    }


def _load_reference(uri: str) -> tuple[dict[str, Any] | None, str | None]:
    """The reference profile, or None and why drift cannot be checked (FIRST_RUN when there is no
    reference model at all). An unreadable model archive raises: that is unreadable input."""
    with open_model(uri) as model_dir:
        if model_dir is None:
            return None, FIRST_RUN
        if not (model_dir / PROFILE_FILE).is_file():
            return None, f"reference model has no {PROFILE_FILE}"
        try:
            profile = load_profile(model_dir / PROFILE_FILE)
        except ProfileError as error:
            return None, str(error)
        problem = profile_problem(profile)
        return (None, f"{PROFILE_FILE}: {problem}") if problem else (profile, None)


def profile_problem(profile: dict[str, Any]) -> str | None:
    """The first field the drift checks need that is missing or malformed, or None."""
    names = profile.get("feature_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return "'feature_names' is not a non-empty list of column names"
    if not isinstance(profile.get("n_rows"), int) or profile["n_rows"] < 1:
        return "'n_rows' is not a positive integer"
    columns = profile.get("columns")
    if not isinstance(columns, dict):
        return "'columns' is not an object"
    for name in names:
        if name not in columns:
            return f"column {name!r} has no profile"
        problem = _column_problem(columns[name])
        if problem:
            return f"column {name!r}: {problem}"
    problem = _roles_problem(profile.get("roles"))
    if problem:
        return problem
    label = profile.get("label")
    if label is not None:
        if not isinstance(label, dict) or not isinstance(label.get("column"), str):
            return "'label' has no column name"
        problem = _column_problem(label)
        if problem:
            return f"label: {problem}"
    return None


def _roles_problem(roles: Any) -> str | None:
    """``roles`` is optional (profiles written before issue 23 have none); if there, well formed."""
    if roles is None:
        return None
    if not isinstance(roles, dict):
        return "'roles' is not an object"
    ids = roles.get("id", [])
    if not isinstance(ids, list) or not all(isinstance(c, str) for c in ids):
        return "'roles': 'id' is not a list of column names"
    for key in ("timestamp", "group", "weight"):
        if not isinstance(roles.get(key), str | None):
            return f"'roles': {key!r} is not a column name or null"
    return None


def _column_problem(column: Any) -> str | None:
    if not isinstance(column, dict):
        return "not an object"
    kind = column.get("type")
    if kind == "numeric":
        missing = [f for f in NUMERIC_FIELDS if f not in column]
        if not missing and column["min"] is not None:  # an all-missing column has no distribution
            missing = [f for f in NUMERIC_DISTRIBUTION if not isinstance(column.get(f), list)]
            if not missing and (
                len(column["points"]) != len(column["cum"])
                or len(column["counts"]) != len(column["edges"]) + 1
            ):
                return "inconsistent distribution (points/cum or edges/counts lengths)"
    elif kind == "categorical":
        missing = [f for f in CATEGORICAL_FIELDS if f not in column]
        if not missing and not isinstance(column["counts"], dict):
            return "'counts' is not an object"
    elif kind == "text":
        missing = [f for f in TEXT_FIELDS if f not in column]
        if not missing:
            if not isinstance(column["counts"], dict):
                return "'counts' is not an object"
            length = column["length"]
            if not isinstance(length, dict) or length.get("type") != "numeric":
                return "'length' is not a numeric profile"
            problem = _column_problem(length)
            return f"length: {problem}" if problem else None
    else:
        return f"unknown type {kind!r}"
    return f"missing field(s) {', '.join(missing)}" if missing else None


def _unchecked(decision: dict[str, Any], table: data.Table, note: str, policy: str) -> dict[str, Any]:
    """Drift cannot be checked: proceed on the first run, else as the policy says (fail closed)."""
    if settings.LABEL_COLUMN not in table.data:
        raise schema.SchemaError(settings.LABEL_COLUMN, "label column missing from the data")
    decision.update(reference_usable=False, reference_problem=note, n_rows=table.n_rows)
    if note == FIRST_RUN:
        decision["reasons"].append(note)
    elif policy == "block":
        decision["decision"] = "block"
        decision["reasons"] += [
            f"reference profile unusable, drift not checked: {note}",
            "policy block: the run stops here (an unchecked run could ship drifted data)",
        ]
    else:
        decision["reasons"] += [
            f"reference profile unusable, drift not checked: {note}",
            "policy retrain: training goes on without a drift check; the gate still compares the models",
        ]
    return decision


def run(args: argparse.Namespace) -> tuple[dict[str, Any], data_drift.DriftResult | None]:
    """The decision and the drift details; raises on schema violations and unreadable input."""
    decision = _base(args)
    table = data.read_csv(args.data)
    profile, note = _load_reference(args.reference_model)
    if profile is None:
        return _unchecked(decision, table, note or FIRST_RUN, args.policy), None

    notes = schema.check(profile, table, args.max_missing_rate, args.range_margin)
    try:
        result = data_drift.compare(profile, table, args.psi_threshold, args.ks_pvalue)
    except (KeyError, TypeError, IndexError, ZeroDivisionError) as error:
        # A profile that passed the field checks but still cannot be compared: unusable, not a crash.
        return _unchecked(
            decision, table, f"cannot compare ({type(error).__name__}: {error})", args.policy
        ), None
    blocked = result.drift_detected and args.policy == "block"
    decision.update(
        decision="block" if blocked else "proceed",
        drift_detected=result.drift_detected,
        share_drifted=round(result.share_drifted, 6),
        drifted_features=result.drifted_features,
        features={name: f.as_json() for name, f in result.features.items()},
        label=None if result.label is None else {"column": result.label.name, **result.label.as_json()},
        n_rows=table.n_rows,
        n_reference_rows=profile["n_rows"],
    )
    reasons = decision["reasons"]
    if result.drifted_features:
        shown = ", ".join(result.drifted_features[:10]) + (
            " ..." if len(result.drifted_features) > 10 else ""
        )
        reasons.append(f"{len(result.drifted_features)} of {len(result.features)} features drifted: {shown}")
        for name in result.drifted_features:  # a text column says which of its tests fired
            text = result.features[name].text
            if text is not None and text.reasons:
                reasons.append(f"text column {name!r}: {'; '.join(text.reasons)}")
    if result.label is not None and result.label.drifted:
        # A class label is profiled as categorical (its balance moved); a regression target as numeric.
        change = "class balance" if result.label.kind == "categorical" else "label distribution"
        reasons.append(f"label {result.label.name!r} {change} changed (PSI {result.label.psi:.3f})")
    if result.drift_detected:
        reasons.append("policy block: the run stops here" if blocked else "policy retrain: training goes on")
    else:
        reasons.append(f"no drift in {len(result.features)} features")
    reasons.extend(notes)
    small = result.small_sample_note()
    if small:
        reasons.append(small)
    return decision, result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        decision, result = run(args)
    except Exception as error:  # every failure must reach the failure file, not just a traceback
        return outputs.fail(args.output, _reason(error), _base(args), pages.validation_page, error)
    outputs.write(args.output, decision, pages.validation_page(decision, result))
    print(f"validate: {decision['decision']} ({'; '.join(decision['reasons'])})")
    return 0


def _reason(error: Exception) -> str:
    if isinstance(error, schema.SchemaError):
        return f"schema violation: {error}"
    if isinstance(error, ValueError):  # DataError, ArtifactError, ProfileError
        return f"unreadable input: {error}"
    return f"validation crashed: {type(error).__name__}: {error}"


if __name__ == "__main__":
    sys.exit(main())
