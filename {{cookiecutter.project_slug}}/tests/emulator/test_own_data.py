"""End to end on data the emulator has never seen (process runtime): other column names, string
labels, a categorical column, a label column named by --label-column, an id column and a free-text
column (issue 23: detected, the id never a feature, the text as TF-IDF). Create path, update path,
then drifted data blocked by the gate; then a failing endpoint shows its own reason."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
import pytest
from rich.console import Console

from {{ cookiecutter.package_name }} import data, settings
from {{ cookiecutter.package_name }}.data import Table
from {{ cookiecutter.package_name }}_emulator import scenarios
from {{ cookiecutter.package_name }}_emulator.observe import PipelineResult
from {{ cookiecutter.package_name }}_emulator.run import Emulator, run_pipeline, run_step

PROBLEM = getattr(settings, "PROBLEM_TYPE", "binary")
LABEL = "diagnosis_outcome"


def renamed(table: Table) -> Table:
    columns = [LABEL if c == settings.LABEL_COLUMN else c for c in table.columns]
    return Table(columns, {LABEL if c == settings.LABEL_COLUMN else c: v for c, v in table.data.items()})


def with_ids_and_notes(table: Table, first_id: int, seed: int) -> Table:
    """A distinct ``case_ref`` per row and a ``notes`` text of 6-20 words, some of them telling."""
    rng = np.random.default_rng(seed)
    labels = [str(v) for v in table.data[settings.LABEL_COLUMN].tolist()]
    classes = sorted(set(labels))
    notes = []
    for label in labels:
        words = [f"word{int(i)}" for i in rng.integers(0, 400, rng.integers(6, 21))]
        words[0] = f"sign{classes.index(label)}x{int(rng.integers(0, 15))}"
        notes.append(" ".join(words))
    extra = {
        "case_ref": np.arange(first_id, first_id + table.n_rows, dtype=np.float64),
        "notes": np.asarray(notes, dtype=object),
    }
    return Table(["case_ref", *table.columns, "notes"], {**extra, **table.data})


def own_tables() -> tuple[Table, Table]:
    train, holdout = datasets.for_problem(PROBLEM)
    return with_ids_and_notes(train, 5000, 1), with_ids_and_notes(holdout, 9000, 2)


@pytest.fixture(scope="module")
def own_data(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Emulator, PipelineResult, io.StringIO]]:
    folder = tmp_path_factory.mktemp("own-data")
    train, holdout = own_tables()
    data.write_csv(folder / "train" / "part-1.csv", renamed(train))
    data.write_csv(folder / "holdout" / "recent.csv", renamed(holdout))
    screen = io.StringIO()
    emulator = Emulator(
        "process",
        tmp_path_factory.mktemp("own-run"),
        Console(file=screen, width=200),
        data_source=folder,
        label_column=LABEL,
    )
    try:
        yield emulator, run_pipeline(emulator, stamp="own"), screen
    finally:
        emulator.close()


@pytest.mark.slow
def test_create_then_update_on_data_it_has_never_seen(
    own_data: tuple[Emulator, PipelineResult, io.StringIO],
) -> None:
    emulator, result, screen = own_data
    assert result.problems == []
    assert [e.status for e in result.executions] == ["SUCCEEDED", "SUCCEEDED"]
    assert [c.matches for c in result.invocations] == [True, True]
    assert result.data_source == str(emulator.data_source)
    s3 = emulator.cp.client("s3")
    uploaded = s3.get_object(Bucket=settings.S3_BUCKET, Key="data/train/train.csv")
    header = uploaded["Body"].read().decode().splitlines()[0].split(",")
    train, _ = own_tables()
    assert header == train.columns  # the user's columns, the label under the project's name
    shown = screen.getvalue()
    assert "column 'case_ref': id (" in shown and "column 'notes': text (" in shown
    # The model in production: the id is not a feature, the notes are TF-IDF over their words.
    _, model_url = emulator.endpoint_state()
    bucket, key = model_url.removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        metadata = json.loads(member.read())
    assert "case_ref" not in metadata["feature_names"] and metadata["columns"]["id"] == ["case_ref"]
    assert metadata["feature_kinds"][metadata["feature_names"].index("notes")] == "text"
    assert any(term.startswith("sign") for term in metadata["text"]["notes"]["terms"])


@pytest.mark.slow
def test_drift_injected_into_that_data_is_blocked(
    own_data: tuple[Emulator, PipelineResult, io.StringIO],
) -> None:
    emulator, _, _ = own_data
    step = scenarios.SCENARIOS["inject-drift"].steps[1]
    assert emulator.dataset is not None
    observed = run_step(emulator, step, "own-drift", emulator.dataset.drifted)
    emulator.upload_training_file(emulator.dataset.train)
    assert scenarios.run_checks(step, observed) == []
    assert observed.new_configs == set() and observed.after == observed.before
    # An expected block is judged by its own checks; and the same refusal, had the step meant to
    # deploy your data, is the run's outcome (exit 3) with the gate's reasons, nothing broken.
    assert scenarios.judge(step, observed, own_data=True) == ([], None)
    if settings.DRIFT_POLICY == "retrain":  # the gate refused (under "block", validation did)
        reasons = "; ".join((observed.evaluation or {})["reasons"])
        assert scenarios.judge(scenarios.CREATE, observed, own_data=True) == ([], reasons)


@pytest.mark.slow
def test_a_failing_endpoint_shows_the_containers_reason(
    own_data: tuple[Emulator, PipelineResult, io.StringIO], tmp_path: Path
) -> None:
    """The production model with a damaged metadata.json: the serving process refuses it at start-up,
    the update fails, the old model keeps serving, and the console names the endpoint and the
    serving process's own error (not an emulator traceback)."""
    import json
    import time

    from {{ cookiecutter.package_name }} import tarballs

    emulator, _, screen = own_data
    sm, s3 = emulator.cp.client("sagemaker"), emulator.cp.client("s3")
    config, model_url = emulator.endpoint_state()
    bucket, key = model_url.removeprefix("s3://").split("/", 1)
    s3.download_file(bucket, key, str(tmp_path / "model.tar.gz"))
    folder = tarballs.extract(tmp_path / "model.tar.gz", tmp_path / "model")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["feature_names"] = metadata.get("feature_names", [])[:1]  # no longer matches the model
    (folder / "metadata.json").write_text(json.dumps(metadata))
    s3.upload_file(str(tarballs.create(folder, tmp_path / "broken.tar.gz")), bucket, "broken/model.tar.gz")
    model = sm.describe_model(
        ModelName=sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    )
    sm.create_model(
        ModelName="broken-own",
        ExecutionRoleArn=model["ExecutionRoleArn"],
        PrimaryContainer={**model["PrimaryContainer"], "ModelDataUrl": f"s3://{bucket}/broken/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="broken-own",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "broken-own",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    started = time.monotonic()
    sm.update_endpoint(EndpointName=settings.ENDPOINT_NAME, EndpointConfigName="broken-own")
    while sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)["EndpointStatus"] == "Updating":
        assert time.monotonic() - started < 90, "the failed update did not settle"
        time.sleep(0.2)
    failures = emulator.failures()
    from {{ cookiecutter.package_name }}_emulator import terminal

    terminal.render_failures(emulator.console, failures)
    shown = screen.getvalue()
    assert f"endpoint {settings.ENDPOINT_NAME} failed: Update to broken-own failed:" in shown
    assert (
        "serving" in shown
        and "Traceback (most recent call last)" not in shown.split("failed: Update")[-1][:200]
    )
    assert emulator.endpoint_state() == (config, model_url)  # the previous model keeps serving
