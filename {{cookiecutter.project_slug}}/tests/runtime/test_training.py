"""The training contract: config files and channels in, model + metrics out, or a failure file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import hyperparameters, model
from {{ cookiecutter.package_name }}.data import read_csv
from {{ cookiecutter.package_name }}.metrics import METRICS
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.settings import COLUMN_ROLES, LABEL_COLUMN, PROBLEM_TYPE
from {{ cookiecutter.package_name }}.steps import train

METRIC_LINE = re.compile(
    r"^(train|validation):" + r" \1:".join(f"{name}=-?[0-9.]+;" for name in METRICS[PROBLEM_TYPE]) + "$"
)
# The first numeric hyperparameter of model.py, whatever the library.
NUMERIC = next(p for p in model.HYPERPARAMETERS if p.kind != "categorical")
KNOWN = ", ".join(p.name for p in hyperparameters.all_params())


@pytest.fixture
def opt_ml(tmp_path, monkeypatch, sample_data) -> Path:
    """An /opt/ml tree with the sample training data in the train channel."""
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    shutil.copytree(sample_data["train"].parent, root / "input" / "data" / "train")
    monkeypatch.setenv("OPT_ML_ROOT", str(root))
    return root


def write_config(root: Path, name: str, content: object) -> None:
    (root / "input" / "config" / f"{name}.json").write_text(json.dumps(content))


def write_channel(root: Path, channel: str, text: str) -> None:
    header, *rows = text.splitlines()
    # A ranker needs each row's query: well-formed a,b,target tables get one (two rows per query).
    if PROBLEM_TYPE == "ranking" and header == "a,b,target" and all(r.count(",") == 2 for r in rows):
        text = "\n".join([f"{header},query_id", *(f"{r},q{i // 2}" for i, r in enumerate(rows))]) + "\n"
    directory = root / "input" / "data" / channel
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    (directory / "part.csv").write_text(text)


def fail(root: Path, capsys) -> str:
    """Run training, expect exit 1 with a traceback on stderr; return the failure file's first line."""
    assert train.main() == 1
    assert "Traceback" in capsys.readouterr().err
    return (root / "output" / "failure").read_text().splitlines()[0]


def test_success_writes_model_metadata_profile_and_metrics(opt_ml, sample_data, capsys):
    shutil.copytree(sample_data["holdout"].parent, opt_ml / "input" / "data" / "validation")
    value = NUMERIC.high if NUMERIC.default != NUMERIC.high else NUMERIC.low
    write_config(opt_ml, "hyperparameters", {NUMERIC.name: str(value), "sagemaker_program": "ignored"})

    assert train.main() == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["train", "validation"]
    assert all(METRIC_LINE.match(line) for line in lines), lines
    model_dir = opt_ml / "model"
    predictor = Predictor.load(model_dir)
    assert predictor.hyperparameters[NUMERIC.name] == value
    table = read_csv(sample_data["train"])
    assert predictor.feature_names == [c for c in table.columns if c not in (LABEL_COLUMN, *COLUMN_ROLES)]
    assert predictor.problem_type == PROBLEM_TYPE and predictor.library == model.LIBRARY
    # Exactly the model's files, and the compiled copy when it verified (one log line says which).
    log = captured.err
    written = "compiled predictor: model.onnx written" in log
    assert written or "compiled predictor: not " in log
    assert {p.name for p in model_dir.iterdir()} == {
        "metadata.json",
        "profile.json",
        model.MODEL_FILE,
        *(["model.onnx"] if written else []),
    }
    assert set(predictor.metrics) == {
        f"{s}_{m}" for s in ("train", "validation") for m in METRICS[PROBLEM_TYPE]
    }
    assert not (opt_ml / "output" / "failure").exists()
    holdout = read_csv(sample_data["holdout"])
    predictions = predictor.predict(predictor.features(holdout))
    if PROBLEM_TYPE in ("regression", "ranking"):
        assert predictions.values.shape == (holdout.n_rows,) and predictions.labels is None
    else:
        assert predictions.probabilities.shape == (holdout.n_rows, len(predictor.classes))
    profile = json.loads((model_dir / "profile.json").read_text())
    assert profile["label"]["type"] == (
        "numeric" if PROBLEM_TYPE in ("regression", "ranking") else "categorical"
    )
    assert profile["prediction"]["n"] == table.n_rows


def test_missing_train_channel(opt_ml, capsys):
    shutil.rmtree(opt_ml / "input" / "data" / "train")
    assert fail(opt_ml, capsys).startswith("channel 'train' is missing: no directory ")


def test_empty_train_channel(opt_ml, capsys):
    shutil.rmtree(opt_ml / "input" / "data" / "train")
    (opt_ml / "input" / "data" / "train").mkdir()
    assert fail(opt_ml, capsys).endswith("train: no .csv files found")


def test_job_without_a_train_channel(opt_ml, capsys):
    write_config(opt_ml, "inputdataconfig", {"training": {"TrainingInputMode": "File"}})
    assert fail(opt_ml, capsys) == "channel 'train' is required but the job declares only ['training']"


def test_declared_validation_channel_must_exist(opt_ml, capsys):
    write_config(opt_ml, "inputdataconfig", {"train": {}, "validation": {}})
    assert fail(opt_ml, capsys).startswith("channel 'validation' is missing")


def test_pipe_mode_is_refused(opt_ml, capsys):
    write_config(opt_ml, "inputdataconfig", {"train": {"TrainingInputMode": "Pipe"}})
    assert (
        fail(opt_ml, capsys)
        == "channel 'train' uses Pipe input mode; this algorithm supports File and FastFile"
    )


def test_malformed_csv(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,2,0\n3,4\n")
    assert re.fullmatch(r"channel 'train': .*part\.csv:3: expected 3 fields, got 2", fail(opt_ml, capsys))


def test_text_feature_is_categorical(opt_ml):
    write_channel(opt_ml, "train", "a,b,target\n1,x,0\n3,y,1\n2,x,0\n4,,1\n")
    assert train.main() == 0
    predictor = Predictor.load(opt_ml / "model")
    assert predictor.feature_kinds == ["numeric", "categorical"]
    assert predictor.categories == {"b": ["x", "y"]}


def test_infinite_feature(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,2,0\n3,inf,1\n")
    assert fail(opt_ml, capsys) == "channel 'train': column 'b' has an infinite value (data row 2)"


def test_missing_label_column(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,label\n1,2,0\n3,4,1\n")
    assert fail(opt_ml, capsys) == "channel 'train' has no label column 'target' (columns: a, b, label)"


def test_missing_label_value(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,2,0\n3,4,\n5,6,1\n")
    assert (
        fail(opt_ml, capsys)
        == "channel 'train': label column 'target' has 1 missing value(s), first in data row 2"
    )


@pytest.mark.skipif(PROBLEM_TYPE in ("regression", "ranking"), reason="a numeric target has no classes")
def test_one_class_label(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,2,1\n3,4,1\n")
    needs = "exactly two" if PROBLEM_TYPE == "binary" else "at least two"
    assert fail(opt_ml, capsys) == (
        f"channel 'train': label column 'target' has 1 class(es) ['1']; a {PROBLEM_TYPE} model needs {needs}"
    )


@pytest.mark.skipif(PROBLEM_TYPE != "regression", reason="one class is test_one_class_label")
def test_constant_regression_target(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,2,7.5\n3,4,7.5\n")
    assert fail(opt_ml, capsys) == (
        "channel 'train': label column 'target' has one value (7.5) in every row; regression needs targets that vary"
    )


@pytest.mark.skipif(PROBLEM_TYPE != "regression", reason="classification labels may be text")
def test_text_regression_target(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,2,high\n3,4,1\n")
    assert fail(opt_ml, capsys) == (
        "channel 'train': label column 'target' is not numeric (value 'high'); regression needs numbers"
    )


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        (
            {NUMERIC.name: str(NUMERIC.low - 1)},
            f"hyperparameter {NUMERIC.name}={NUMERIC.low - 1!r}: must be between {NUMERIC.low:g} and {NUMERIC.high:g}",
        ),
        ({"no_such_name": "3"}, f"unknown hyperparameter 'no_such_name' (known: {KNOWN})"),
    ],
)
def test_bad_hyperparameter(opt_ml, capsys, hyperparameters, reason):
    write_config(opt_ml, "hyperparameters", hyperparameters)
    assert fail(opt_ml, capsys) == reason


@pytest.mark.skipif(PROBLEM_TYPE != "binary", reason="positive class and threshold are binary settings")
def test_positive_class_and_threshold_are_recorded(opt_ml, sample_data, capsys):
    write_config(opt_ml, "hyperparameters", {"positive_class": "0", "threshold": "0.7"})
    assert train.main() == 0
    predictor = Predictor.load(opt_ml / "model")
    assert (predictor.positive_class, predictor.threshold) == (0, 0.7)
    predictions = predictor.predict(predictor.features(read_csv(sample_data["holdout"])))
    assert ((predictions.scores >= 0.7) == (predictions.labels == 0)).all()
    write_config(opt_ml, "hyperparameters", {"positive_class": "maybe"})
    assert (
        fail(opt_ml, capsys)
        == "hyperparameter positive_class='maybe': not a class of the label (classes: 0, 1)"
    )


def test_missing_cells_are_imputed(opt_ml, capsys):
    write_channel(opt_ml, "train", "a,b,target\n1,,0\n2,5,0\n8,,1\n9,7,1\n")
    assert train.main() == 0
    assert Predictor.load(opt_ml / "model").feature_names == ["a", "b"]


@pytest.mark.parametrize("n_hosts", [2, 3])
def test_hosts_share_every_row_once(sample_data, n_hosts):
    table = read_csv(sample_data["train"])
    hosts = [f"algo-{i + 1}" for i in range(n_hosts)]
    shares = train.host_rows(table, train.Cluster("algo-2", hosts), {})
    assert len(shares) == n_hosts and all(len(part) > 0 for part in shares)
    assert sorted(np.concatenate(shares).tolist()) == list(range(table.n_rows))


@pytest.mark.skipif(PROBLEM_TYPE != "ranking", reason="query groups: the ranking bakes")
def test_no_query_is_split_across_hosts(sample_data):
    table = read_csv(sample_data["train"])
    group = next(name for name, role in COLUMN_ROLES.items() if role == "group")
    shares = train.host_rows(table, train.Cluster("algo-1", ["algo-1", "algo-2", "algo-3"]), {})
    owners = [{str(g) for g in table.data[group][part]} for part in shares]
    assert all(owners) and not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sum(len(part) for part in shares) == table.n_rows


@pytest.mark.skipif(PROBLEM_TYPE not in ("binary", "multiclass"), reason="classes: classification bakes")
def test_a_host_without_a_class_is_refused(opt_ml):
    # Rows 0, 2, 4 go to algo-1: class 1 sits only in rows 1 and 3, all on algo-2.
    write_channel(opt_ml, "train", "a,b,target\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,1,0\n")
    table = read_csv(opt_ml / "input" / "data" / "train")
    with pytest.raises(train.TrainingError, match="host algo-1's share of the rows has no row of class '1'"):
        train.host_rows(table, train.Cluster("algo-1", ["algo-1", "algo-2"]), {})


def test_sharded_by_s3_key_channels_are_refused_on_several_hosts(sample_data):
    # Each host would fit its own category levels and vocabularies on different files.
    with pytest.raises(train.TrainingError, match="FullyReplicated"):
        train.host_rows(
            read_csv(sample_data["train"]),
            train.Cluster("algo-1", ["algo-1", "algo-2"]),
            {"S3DistributionType": "ShardedByS3Key"},
        )


@pytest.mark.skipif(model.DISTRIBUTED_TRAINING, reason="a library that trains on one host only")
def test_several_hosts_are_refused_in_one_line(opt_ml, capsys):
    write_config(opt_ml, "resourceconfig", {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    assert fail(opt_ml, capsys) == (
        f"{model.LIBRARY} trains on one host only (model.DISTRIBUTED_TRAINING is False): "
        "set training_instance_count to 1 (this job has 2 hosts)"
    )
    assert not (opt_ml / "model" / "metadata.json").exists()


def test_one_host_records_every_row_seen(opt_ml, sample_data):
    assert train.main() == 0
    seen = json.loads((opt_ml / "model" / "metadata.json").read_text())["training"]
    n_rows = read_csv(sample_data["train"]).n_rows
    assert seen == {"rows": n_rows, "rows_per_host": {"algo-1": n_rows}}


def test_unexpected_errors_still_write_a_reason(opt_ml, capsys, monkeypatch):
    monkeypatch.setattr(Predictor, "save", lambda self, path: (_ for _ in ()).throw(OSError("disk full")))
    assert fail(opt_ml, capsys) == "unexpected OSError: disk full"


def test_no_compiled_copy_when_switched_off(opt_ml, sample_data, monkeypatch, capsys):
    shutil.copytree(sample_data["holdout"].parent, opt_ml / "input" / "data" / "validation")
    monkeypatch.setattr(train.settings, "COMPILED_PREDICTOR", False)
    assert train.main() == 0
    assert not (opt_ml / "model" / "model.onnx").exists()
    assert "compiled predictor" not in capsys.readouterr().err
