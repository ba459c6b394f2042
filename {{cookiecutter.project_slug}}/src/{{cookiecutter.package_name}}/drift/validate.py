"""Validate new training data against the production model's reference profile.

    python -m {{ cookiecutter.package_name }}.drift.validate --data DIR --reference-model URI|none --output DIR

Writes ``decision.json`` (shape in docs/architecture.md) and ``report.html`` to ``--output``.
Exit 0 for "proceed" and for "block" (a drift block is a correct outcome, not an error); exit 1
with ``/opt/ml/output/failure`` for a schema violation or unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import data, settings
from . import data_drift, outputs, report, schema
from .artifacts import open_model
from .profile import PROFILE_FILE, ProfileError, load_profile


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
        "thresholds": {"psi": args.psi_threshold, "p_value": args.ks_pvalue},
    }


def _load_reference(uri: str) -> tuple[dict[str, Any] | None, str | None]:
    """The reference profile, or None and why drift cannot be checked.

    A model without a usable profile (trained before profiles existed, or by an older template
    version) skips the drift checks instead of failing: failing would block the very retraining
    that replaces it. The gate after training still protects production.
    """
    with open_model(uri) as model_dir:
        if model_dir is None:
            return None, "no reference model (first run): drift not checked"
        if not (model_dir / PROFILE_FILE).is_file():
            return None, f"reference model has no {PROFILE_FILE}: drift not checked"
        try:
            return load_profile(model_dir / PROFILE_FILE), None
        except ProfileError as error:
            return None, f"reference profile unusable, drift not checked: {error}"


def run(args: argparse.Namespace) -> tuple[dict[str, Any], data_drift.DriftResult | None]:
    """The decision and the drift details; raises on schema violations and unreadable input."""
    decision = _base(args)
    table = data.read_csv(args.data)
    profile, note = _load_reference(args.reference_model)
    if profile is None:
        if settings.LABEL_COLUMN not in table.data:
            raise schema.SchemaError(settings.LABEL_COLUMN, "label column missing from the data")
        decision["reasons"].append(note)
        return decision, None

    notes = schema.check(profile, table, args.max_missing_rate, args.range_margin)
    result = data_drift.compare(profile, table, args.psi_threshold, args.ks_pvalue)
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
    if result.label is not None and result.label.drifted:
        reasons.append(f"label {result.label.name!r} class balance changed (PSI {result.label.psi:.3f})")
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
        return outputs.fail(args.output, _reason(error), _base(args), report.validation_page, error)
    outputs.write(args.output, decision, report.validation_page(decision, result))
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
