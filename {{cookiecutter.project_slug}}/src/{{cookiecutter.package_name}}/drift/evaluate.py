"""The model gate: score the candidate and the production model on the same labelled holdout.

    python -m {{ cookiecutter.package_name }}.drift.evaluate --model DIR --holdout DIR --production-model URI|none --output DIR

Writes ``decision.json`` (shape in docs/architecture.md) and ``report.html`` to ``--output``.
Exit 0 whether or not the candidate is promoted; exit 1 with ``/opt/ml/output/failure`` when a
model or the holdout cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import data, metrics, settings
from ..model import Model
from . import gate, outputs, report
from .artifacts import ArtifactError, open_model
from .profile import PROFILE_FILE, ProfileError, category_key, load_profile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Gate a candidate model against production.")
    parser.add_argument(
        "--model", required=True, help="candidate: folder with model.tar.gz or the unpacked model"
    )
    parser.add_argument(
        "--holdout", type=Path, required=True, help="CSV file or folder of the labelled holdout"
    )
    parser.add_argument(
        "--production-model", default="none", help="s3://.../model.tar.gz, a local model, or none"
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for decision.json and report.html")
    parser.add_argument("--metric", choices=metrics.METRICS, default=settings.GATE_METRIC)
    parser.add_argument("--minimum", type=float, default=settings.GATE_MINIMUM)
    parser.add_argument("--tolerance", type=float, default=settings.GATE_TOLERANCE)
    return parser.parse_args(argv)


def _base(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "step": "evaluate",
        "decision": "block",
        "promote": False,
        "metric": args.metric,
        "minimum": args.minimum,
        "tolerance": args.tolerance,
        "candidate": None,
        "production": None,
        "reasons": [],
        "prediction_drift": None,
    }


def _load(model_dir: Path, source: str) -> Model:
    try:
        return Model.load(model_dir)
    except (OSError, KeyError, ValueError) as error:
        raise ArtifactError(f"{source}: cannot load the model ({type(error).__name__}: {error})") from None


def _score(model: Model, holdout: data.Table, source: str) -> tuple[np.ndarray, dict[str, float]]:
    """Positive-class scores and all metrics of ``model`` on the holdout."""
    labels = holdout.data[settings.LABEL_COLUMN]
    keys = np.asarray([category_key(v) for v in labels])
    classes = [category_key(c) for c in model.classes]
    unknown = sorted(set(keys.tolist()) - set(classes))
    if unknown:
        raise data.DataError(
            f"holdout column {settings.LABEL_COLUMN!r} has value(s) {', '.join(unknown[:5])} "
            f"that {source} does not know (classes {', '.join(classes)})"
        )
    scores = model.predict_proba(holdout.matrix(model.feature_names))
    return scores, metrics.compute_all((keys == classes[1]).astype(int), scores)


def run(args: argparse.Namespace) -> dict[str, Any]:
    decision = _base(args)
    holdout = data.read_csv(args.holdout)
    if settings.LABEL_COLUMN not in holdout.data:
        raise data.DataError(
            f"{args.holdout}: label column {settings.LABEL_COLUMN!r} missing from the holdout"
        )
    with open_model(args.model) as model_dir:
        if model_dir is None:
            raise ArtifactError("--model none: the candidate model is required")
        _, candidate = _score(_load(model_dir, "the candidate"), holdout, "the candidate")
    production = drift = None
    drift_note = "prediction drift not measured: the production profile has no score reference"
    with open_model(args.production_model) as production_dir:
        if production_dir is not None:
            scores, production = _score(
                _load(production_dir, args.production_model), holdout, "the production model"
            )
            drift, drift_note = _prediction_drift(production_dir / PROFILE_FILE, scores, drift_note)
    result = gate.decide(candidate, production, args.metric, args.minimum, args.tolerance)
    decision.update(
        decision="promote" if result.promote else "block",
        promote=result.promote,
        candidate=_clean(candidate),
        production=None if production is None else _clean(production),
        reasons=result.reasons,
        prediction_drift=drift,
        n_holdout_rows=holdout.n_rows,
    )
    if drift is None and production is not None:
        decision["reasons"].append(drift_note)
    return decision


def _prediction_drift(profile_path: Path, scores: np.ndarray, note: str) -> tuple[dict[str, Any] | None, str]:
    """Informational only: an old or broken production profile must not fail the gate."""
    if not profile_path.is_file():
        return None, note
    try:
        reference = load_profile(profile_path).get("prediction")
    except ProfileError as error:
        return None, f"prediction drift not measured: {error}"
    return gate.prediction_drift(reference, scores), note


def _clean(values: dict[str, float]) -> dict[str, float | None]:
    return {name: None if np.isnan(value) else round(value, 6) for name, value in values.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        decision = run(args)
    except Exception as error:  # every failure must reach the failure file, not just a traceback
        reason = f"{'unreadable input' if isinstance(error, ValueError) else 'evaluation crashed'}: {error}"
        return outputs.fail(args.output, reason, _base(args), report.evaluation_page, error)
    outputs.write(args.output, decision, report.evaluation_page(decision))
    print(f"evaluate: {'promote' if decision['promote'] else 'block'} ({'; '.join(decision['reasons'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
