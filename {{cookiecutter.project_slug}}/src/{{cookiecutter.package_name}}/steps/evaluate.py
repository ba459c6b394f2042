"""The model gate: score the candidate and the production model on the same labelled holdout.

    python -m {{ cookiecutter.package_name }}.steps.evaluate --model DIR --holdout DIR --production-model URI|none --output DIR

Writes ``decision.json`` (shape in docs/architecture.md) and ``report.html`` to ``--output``.
Exit 0 whether or not the candidate is promoted; exit 1 with ``/opt/ml/output/failure`` when a
model or the holdout cannot be read. Both models are read as serving reads them (``compiled.load``:
the digest-verified ONNX copy when there is one, else ``Predictor.load``, checked before any
library reads them) and scored with the problem type's metrics only.

``candidate_sha256`` is the SHA-256 of the candidate ``model.tar.gz`` exactly as this step read
it, so the state machine can verify that the copy it promotes is the archive that was gated.
``model_files`` (path -> SHA-256) and ``model_files_sha256`` (their manifest digest,
``model_digest``) describe the folder this step scored, as extracted from that archive, hashed
before any library read it: the state machine hands the manifest digest to the model
(``MODEL_FILES_SHA256``) and the serving launcher refuses other files (issue 22).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from .. import data, gate, metrics, model_digest, settings
from ..artifacts import ARCHIVE, ArtifactError, _download, open_model
from ..drift.profile import PROFILE_FILE, ProfileError, load_profile
from ..predictor import Predictions, Predictor
from ..reports import pages
from ..serving import compiled
from . import outputs


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
    parser.add_argument(
        "--metric", choices=metrics.METRICS[settings.PROBLEM_TYPE], default=settings.GATE_METRIC
    )
    parser.add_argument(
        "--minimum", type=float, default=settings.GATE_MINIMUM, help="a maximum when lower is better"
    )
    parser.add_argument("--tolerance", type=float, default=settings.GATE_TOLERANCE)
    return parser.parse_args(argv)


def _base(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "step": "evaluate",
        "decision": "block",
        "promote": False,
        "problem_type": settings.PROBLEM_TYPE,
        "metric": args.metric,
        "higher_is_better": metrics.higher_is_better(args.metric),
        "minimum": args.minimum,
        "tolerance": args.tolerance,
        "candidate": None,
        "production": None,
        "candidate_artifact": str(args.model),
        "candidate_sha256": None,
        "model_files": None,
        "model_files_sha256": None,
        "reasons": [],
        "prediction_drift": None,
    }


def _load(model_dir: Path, source: str) -> Predictor:
    """The predictor serving would build from this folder (serving/compiled.py): the verified
    compiled copy when training recorded one, so the gate scores what the endpoint answers with
    and the native file is not parsed; else the library's, checked first (issue 22)."""
    try:
        return compiled.load(model_dir)
    except (OSError, KeyError, ValueError) as error:
        raise ArtifactError(f"{source}: cannot load the model ({type(error).__name__}: {error})") from None


def _candidate_files(model_dir: Path) -> tuple[dict[str, str], str]:
    """The digests of the folder the gate scores: what serving must find in /opt/ml/model."""
    try:
        return model_digest.folder_manifest(model_dir)
    except model_digest.ModelDigestError as error:
        raise ArtifactError(f"the candidate: {error}") from None


def _score(predictor: Predictor, holdout: data.Table, source: str) -> tuple[Predictions, dict[str, float]]:
    """The predictions and all metrics of ``predictor`` on the holdout."""
    labels = holdout.data[settings.LABEL_COLUMN]
    try:
        predictions = predictor.predict(predictor.features(holdout))
        values = metrics.compute(
            settings.PROBLEM_TYPE,
            labels,
            predictions,
            predictor.classes,
            predictor.positive_class,
            groups=_groups(predictor, holdout),
        )
    except ValueError as error:
        raise data.DataError(f"holdout scored by {source}: {error}") from None
    return predictions, values


def _groups(predictor: Predictor, holdout: data.Table) -> np.ndarray | None:
    """Ranking: each holdout row's group (query), by the group role in the model's metadata
    (``columns.group``); None for the other problem types."""
    if settings.PROBLEM_TYPE != "ranking":
        return None
    group = (predictor.columns or {}).get("group")
    if not group:
        raise data.DataError("the model's metadata names no group column (columns.group); ranking needs one")
    if group not in holdout.data:
        raise data.DataError(f"group column {group!r} missing from the holdout")
    return holdout.data[group]


# The worst queries the decision and the report list (by the gate metric, per query).
WORST_QUERIES = 5


def query_summary(
    predictor: Predictor, predictions: Predictions, holdout: data.Table, metric: str
) -> dict[str, Any]:
    """Ranking: the gate metric per query, summarised (count, skipped, worst queries)."""
    assert predictions.values is not None
    per_query = metrics.per_query(
        holdout.data[settings.LABEL_COLUMN], predictions.values, _groups(predictor, holdout)
    )
    scored = {q: v[metric] for q, v in per_query.items() if not np.isnan(v[metric])}
    worst = sorted(scored, key=lambda q: (scored[q], q))[:WORST_QUERIES]
    return {
        "metric": metric,
        "group_column": predictor.columns["group"],
        "count": len(per_query),
        "scored": len(scored),
        "skipped": len(per_query) - len(scored),  # no relevant row: the metric is undefined there
        "worst": [{"group": q, metric: round(scored[q], 6)} for q in worst],
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local_candidate(uri: str, scratch: Path) -> tuple[Path, Path | None]:
    """A local path to read the candidate from, and the archive whose bytes are gated (if any)."""
    local = _download(uri, scratch) if uri.startswith("s3://") else Path(uri)
    if local.is_dir() and (local / ARCHIVE).is_file():
        return local, local / ARCHIVE
    return local, local if local.is_file() else None


def details(predictor: Predictor, predictions: Predictions, holdout: data.Table) -> dict[str, Any]:
    """What the report draws: a confusion matrix (classification) or predicted vs actual values."""
    truth = holdout.data[settings.LABEL_COLUMN]
    if settings.PROBLEM_TYPE in ("regression", "ranking"):
        assert predictions.values is not None
        return {
            "actual": np.asarray(truth, dtype=np.float64).tolist(),
            "predicted": predictions.values.tolist(),
        }
    assert predictions.labels is not None
    actual = metrics.class_indices(truth, predictor.classes)
    predicted = metrics.class_indices(predictions.labels, predictor.classes)
    k = len(predictor.classes)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (actual, predicted), 1)
    return {"classes": [str(c) for c in predictor.classes], "confusion_matrix": matrix.tolist()}


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The decision and the candidate's plot data for the pages."""
    decision = _base(args)
    holdout = data.read_csv(args.holdout)
    if settings.LABEL_COLUMN not in holdout.data:
        raise data.DataError(
            f"{args.holdout}: label column {settings.LABEL_COLUMN!r} missing from the holdout"
        )
    with ExitStack() as stack:
        if str(args.model).strip().lower() in ("", "none"):
            raise ArtifactError("--model none: the candidate model is required")
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="candidate-")))
        local, archive = _local_candidate(str(args.model).strip(), scratch)
        if archive is not None:
            decision["candidate_sha256"] = sha256(archive)
        model_dir = stack.enter_context(open_model(archive or local))
        # Before the load: these digests are of the bytes the loaders below then read.
        decision["model_files"], decision["model_files_sha256"] = _candidate_files(model_dir)
        candidate_model = _load(model_dir, "the candidate")
        predictions, candidate = _score(candidate_model, holdout, "the candidate")
        plot = details(candidate_model, predictions, holdout)
        if settings.PROBLEM_TYPE == "ranking":
            plot["queries"] = query_summary(candidate_model, predictions, holdout, args.metric)
    production = drift = None
    drift_note = "prediction drift not measured: the production profile has no score reference"
    with open_model(args.production_model) as production_dir:
        if production_dir is not None:
            production_model = _load(production_dir, args.production_model)
            scored, production = _score(production_model, holdout, "the production model")
            scores = production_model.drift_scores(scored)
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
    if "confusion_matrix" in plot:
        decision["confusion_matrix"] = {"classes": plot["classes"], "counts": plot["confusion_matrix"]}
    if "queries" in plot:
        queries = plot["queries"]
        decision["queries"] = queries
        decision["reasons"].append(
            f"{args.metric} averaged over {queries['scored']} of {queries['count']} queries "
            f"({queries['skipped']} without a relevant row skipped)"
        )
    if drift is None and production is not None:
        decision["reasons"].append(drift_note)
    return decision, plot


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
        decision, plot = run(args)
    except Exception as error:  # every failure must reach the failure file, not just a traceback
        reason = f"{'unreadable input' if isinstance(error, ValueError) else 'evaluation crashed'}: {error}"
        return outputs.fail(args.output, reason, _base(args), pages.evaluation_page, error)
    outputs.write(args.output, decision, pages.evaluation_page(decision, plot))
    print(f"evaluate: {'promote' if decision['promote'] else 'block'} ({'; '.join(decision['reasons'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
