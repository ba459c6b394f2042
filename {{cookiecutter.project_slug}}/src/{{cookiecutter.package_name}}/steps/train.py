"""The SageMaker training contract: ``train`` in the image, ``python -m <package>.steps.train`` locally.

Reads /opt/ml/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json and the CSV
channels ``train`` (required) and ``validation`` (optional); writes the model, its metadata and the
drift reference profile to /opt/ml/model and metrics to stdout (``train:<metric>=0.99;``) for
MetricDefinitions and tuning. On any failure the reason goes to /opt/ml/output/failure (SageMaker
shows its start as FailureReason), the traceback to stderr, and the exit code is 1.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html

Several hosts (``training_instance_count`` > 1): SageMaker starts this on every host, each with
the whole (FullyReplicated) channel. Every host fits the encoders (categories, vocabularies,
classes) on all rows, so they are identical, and passes its share of the rows (rows i with
i % n_hosts == host index; whole query groups for ranking) to the library's collective fit
(``distributed.py``): the hosts train ONE model on every row. The leader (first of the sorted host
names) writes it, with the rows each host contributed in metadata.json ``training``. An estimator
that cannot train that way (model.DISTRIBUTED_TRAINING False) refuses several hosts in one line.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paths


def _stopped(signum: int, _frame: object) -> None:
    """SageMaker sends SIGTERM on StopTrainingJob or a spot reclaim: leave a reason, not silence.

    As PID 1 of its container this process ignores SIGTERM until a handler exists, so the handler
    is set here, before the seconds of numpy and scikit-learn imports below.
    """
    reason = f"training was stopped by {signal.Signals(signum).name} before it finished"
    paths.write_failure(reason)
    print(f"training failed: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(1)


signal.signal(signal.SIGTERM, _stopped)

import numpy as np  # noqa: E402

from .. import column_roles, distributed, metrics, settings  # noqa: E402
from ..data import DataError, Table, read_csv  # noqa: E402
from ..drift.profile import PROFILE_FILE, build_profile, save_profile  # noqa: E402
from ..hyperparameters import HyperparameterError, load  # noqa: E402
from ..predictor import Predictor, label_key  # noqa: E402
from ..serving import compiled  # noqa: E402
from ..settings import LABEL_COLUMN, PROBLEM_TYPE  # noqa: E402

REQUIRED_CHANNEL = "train"
OPTIONAL_CHANNEL = "validation"


class TrainingError(Exception):
    """A failure with a reason fit for /opt/ml/output/failure."""


@dataclass
class Cluster:
    current_host: str = "algo-1"
    hosts: list[str] = field(default_factory=lambda: ["algo-1"])

    @property
    def index(self) -> int:
        return sorted(self.hosts).index(self.current_host)

    @property
    def is_leader(self) -> bool:
        return self.index == 0


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TrainingError(f"cannot read {path}: {error}") from None


def read_cluster() -> Cluster:
    path = paths.resource_config_file()
    if not path.exists():
        return Cluster()
    config = _read_json(path)
    hosts, current = config.get("hosts") or [], config.get("current_host")
    if current not in hosts:
        raise TrainingError(f"{path}: current_host {current!r} is not in hosts {hosts}")
    return Cluster(current, list(hosts))


def read_channel_config() -> dict[str, dict[str, Any]]:
    """Channels SageMaker declared (name -> settings); empty when run outside SageMaker."""
    path = paths.input_data_config_file()
    config = _read_json(path) if path.exists() else {}
    if REQUIRED_CHANNEL not in config and config:
        raise TrainingError(
            f"channel {REQUIRED_CHANNEL!r} is required but the job declares only {sorted(config)}"
        )
    for name, channel in config.items():
        # Pipe mode streams bytes through a FIFO; this algorithm reads files (File or FastFile).
        if channel.get("TrainingInputMode", "File") == "Pipe":
            raise TrainingError(
                f"channel {name!r} uses Pipe input mode; this algorithm supports File and FastFile"
            )
    return config


def read_channel(name: str) -> Table:
    directory = paths.channel(name)
    if not directory.is_dir():
        raise TrainingError(f"channel {name!r} is missing: no directory {directory}")
    try:
        return read_csv(directory)
    except DataError as error:
        raise TrainingError(f"channel {name!r}: {error}") from None


def check_table(table: Table, channel: str, feature_names: list[str] | None = None) -> None:
    """The label is present and complete; numeric features hold no infinity.

    Missing feature cells (empty, NaN) are imputed or routed by the model, in training and serving
    alike; an infinite value is a broken upstream computation, so it is refused in both.
    """
    if LABEL_COLUMN not in table.data:
        raise TrainingError(
            f"channel {channel!r} has no label column {LABEL_COLUMN!r} (columns: {', '.join(table.columns)})"
        )
    absent = [c for c in feature_names or [] if c not in table.data]
    if absent:
        raise TrainingError(f"channel {channel!r}: missing column(s): {', '.join(absent)}")
    for name in feature_names or [c for c in table.columns if c != LABEL_COLUMN]:
        column = table.data[name]
        if column.dtype.kind == "f" and np.isinf(column).any():
            row = int(np.flatnonzero(np.isinf(column))[0])
            raise TrainingError(
                f"channel {channel!r}: column {name!r} has an infinite value (data row {row + 1})"
            )
    y = table.data[LABEL_COLUMN]
    missing = np.flatnonzero(np.isnan(y)) if y.dtype.kind == "f" else np.flatnonzero(y == "")
    if len(missing):
        raise TrainingError(
            f"channel {channel!r}: label column {LABEL_COLUMN!r} has {len(missing)} missing value(s), first in data row {missing[0] + 1}"
        )


def host_rows(table: Table, cluster: Cluster, channel_config: dict[str, Any]) -> list[np.ndarray]:
    """Each host's rows, in sorted host order: row i to host i % n, or for ranking whole query
    groups (group j, in order of first appearance, to host j % n): a query is never split."""
    n = len(cluster.hosts)
    if n == 1:
        return [np.arange(table.n_rows)]
    if channel_config.get("S3DistributionType") == "ShardedByS3Key":
        # Each host would fit its own encoders on its own files: codes and classes would disagree.
        raise TrainingError(
            "several hosts need the train channel FullyReplicated (ShardedByS3Key gives each host "
            "different category levels and vocabularies; docs/decisions.md)"
        )
    owner = np.arange(table.n_rows) % n
    group = column_roles.resolve(table, LABEL_COLUMN).group if PROBLEM_TYPE == "ranking" else None
    if group is not None:
        _, first, codes = np.unique(table.data[group].astype(str), return_index=True, return_inverse=True)
        appearance = np.argsort(np.argsort(first))  # group code -> its rank by first appearance
        owner = appearance[codes] % n
    rows = [np.flatnonzero(owner == i) for i in range(n)]
    for host, part in zip(sorted(cluster.hosts), rows, strict=True):
        if len(part) == 0:
            raise TrainingError(
                f"host {host} got no rows: {table.n_rows} rows for {n} hosts (use fewer hosts)"
            )
        if PROBLEM_TYPE in ("binary", "multiclass"):
            # The libraries' classifiers number the classes they see: a host without one would
            # train a different number of class outputs than the others.
            labels = np.asarray([label_key(v) for v in table.data[LABEL_COLUMN].tolist()])
            absent = sorted(set(labels.tolist()) - set(labels[part].tolist()))
            if absent:
                raise TrainingError(
                    f"host {host}'s share of the rows has no row of class {absent[0]!r}: "
                    f"every host needs every class (use fewer hosts)"
                )
    return rows


def _groups(predictor: Predictor, table: Table) -> np.ndarray | None:
    """Each row's group (query) for ranking metrics; None for the other problem types."""
    group = (predictor.columns or {}).get("group")
    if PROBLEM_TYPE != "ranking":
        return None
    if not group or group not in table.data:
        raise DataError(f"ranking metrics need the group column {group!r} in every channel")
    return table.data[group]


def score(predictor: Predictor, table: Table, channel: str) -> tuple[dict[str, float], np.ndarray]:
    """All metrics of the problem type on a channel, and the per-row drift scores."""
    try:
        predictions = predictor.predict(predictor.features(table))
        values = metrics.compute(
            PROBLEM_TYPE,
            table.data[LABEL_COLUMN],
            predictions,
            predictor.classes,
            predictor.positive_class,
            groups=_groups(predictor, table),
        )
    except ValueError as error:  # DataError, unknown labels
        raise TrainingError(f"channel {channel!r}: {error}") from None
    return values, predictor.drift_scores(predictions)


def train() -> Predictor:
    hyperparameters = load(paths.hyperparameters_file())
    channels = read_channel_config()
    cluster = read_cluster()

    distributed.check_hosts(cluster.hosts)  # before reading data: one line, not a hung collective
    table = read_channel(REQUIRED_CHANNEL)
    check_table(table, REQUIRED_CHANNEL)
    try:
        shares = host_rows(table, cluster, channels.get(REQUIRED_CHANNEL, {}))
        with distributed.collective(cluster.hosts, cluster.current_host) as joined:
            predictor = Predictor.fit(table, hyperparameters, shares[cluster.index], joined)
    except DataError as error:
        raise TrainingError(f"channel {REQUIRED_CHANNEL!r}: {error}") from None
    if len(cluster.hosts) > 1:
        print(
            f"host {cluster.current_host} joined {len(cluster.hosts)} hosts: {len(shares[cluster.index])} "
            f"of {table.n_rows} rows into one {predictor.library} model",
            file=sys.stderr,
            flush=True,
        )
    predictor.training = {
        "rows": int(sum(len(part) for part in shares)),
        "rows_per_host": {h: len(part) for h, part in zip(sorted(cluster.hosts), shares, strict=True)},
    }
    # Scored once: the train metrics and the prediction-drift reference.
    train_metrics, drift_scores = score(predictor, table, REQUIRED_CHANNEL)
    results = {"train": train_metrics}
    if OPTIONAL_CHANNEL in channels or paths.channel(OPTIONAL_CHANNEL).is_dir():
        validation = read_channel(OPTIONAL_CHANNEL)
        check_table(validation, OPTIONAL_CHANNEL, predictor.feature_names)
        results["validation"] = score(predictor, validation, OPTIONAL_CHANNEL)[0]
    for prefix, values in results.items():
        print(metrics.format_for_logs(values, prefix), flush=True)
    predictor.metrics = {
        f"{prefix}_{name}": value for prefix, values in results.items() for name, value in values.items()
    }

    if cluster.is_leader:
        predictor.save(paths.model_dir())
        if settings.COMPILED_PREDICTOR:  # model.onnx only when it answers as the library (see settings)
            compiled.export(predictor, validation if "validation" in results else table, paths.model_dir())
        write_profile(table, predictor, drift_scores, paths.model_dir())
    else:
        print(
            f"host {cluster.current_host} is not the leader; {sorted(cluster.hosts)[0]} writes the model",
            file=sys.stderr,
        )
    return predictor


def write_profile(table: Table, predictor: Predictor, scores: np.ndarray, model_dir: Path) -> None:
    """The drift reference next to the model: the data profile, and the model's own scores on it
    (the reference for prediction drift when this model is production and new data arrives)."""
    profile = build_profile(
        table,
        predictor.feature_names,
        kinds=predictor.feature_kinds,
        roles=predictor.columns or None,
        scores=scores,
    )
    save_profile(profile, model_dir / PROFILE_FILE)


def reason(error: BaseException) -> str:
    """One sentence for the failure file: our own errors as they are, others with their type."""
    if isinstance(error, TrainingError | HyperparameterError | DataError | distributed.DistributedError):
        text = str(error)
    else:
        text = f"unexpected {type(error).__name__}: {error}"
    return text.replace("\n", " ").strip() or type(error).__name__


def main() -> int:
    try:
        train()
    except Exception as error:
        text = reason(error)
        paths.write_failure(text)
        traceback.print_exc()
        print(f"training failed: {text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
