"""Model figures for this project's problem type and library: training time, model size, latency.

    .venv/bin/python benchmarks/models.py [--repeats 3] [--calls 2000]

On the sample data set (numeric features) and on tests/support/datasets.py's set (text labels and
categorical columns): ``Predictor.fit`` wall time (median of ``--repeats``, after one warm-up fit
so imports are not counted; the library's default threads), the native model file and model.tar.gz sizes, and the in-process
latency of ``Predictor.predict`` on one row (median and p99 of ``--calls`` calls, one thread, as a
serving worker runs it after ``Predictor.load``). Serving through gunicorn is measured by
benchmarks/serving.py; this is the model's share of it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "support")]

from datasets import for_problem  # noqa: E402

from {{ cookiecutter.package_name }} import data, model, settings  # noqa: E402
from {{ cookiecutter.package_name }}.predictor import Predictor  # noqa: E402
from {{ cookiecutter.package_name }}.serving import codecs  # noqa: E402
from {{ cookiecutter.package_name }}_emulator import sample_data  # noqa: E402


def _fit_seconds(table: data.Table, repeats: int) -> tuple[float, Predictor]:
    Predictor.fit(table, {})  # warm-up: imports and first-call costs
    times, predictor = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        predictor = Predictor.fit(table, {})
        times.append(time.perf_counter() - start)
    assert predictor is not None
    return statistics.median(times), predictor


def _sizes(predictor: Predictor, folder: Path) -> tuple[int, int]:
    predictor.save(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return (folder / model.MODEL_FILE).stat().st_size, len(buffer.getvalue())


def _latency_us(predictor: Predictor, table: data.Table, calls: int) -> tuple[float, float]:
    # One request row as the serving codecs decode it (features() would hand predict the encoded
    # matrix and leave the categorical lookup out of the latency).
    schema = codecs.Schema(tuple(predictor.feature_names), tuple(predictor.feature_kinds))
    row = codecs.decode(orjson.dumps([predictor.example]), codecs.JSON, schema)
    for _ in range(50):
        predictor.predict(row)
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        predictor.predict(row)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def measure(name: str, train: data.Table, seconds: float, fitted: Predictor, calls: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as scratch:
        model_bytes, archive_bytes = _sizes(fitted, Path(scratch) / "model")
        loaded = Predictor.load(Path(scratch) / "model")  # threads pinned as in serving
    median, p99 = _latency_us(loaded, train, calls)
    return {
        "data": name,
        "rows": train.n_rows,
        "features": len(fitted.feature_names),
        "fit_s": seconds,
        "model_kb": model_bytes / 1024,
        "tar_kb": archive_bytes / 1024,
        "predict_1row_median_us": median,
        "predict_1row_p99_us": p99,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        paths = sample_data.write(Path(scratch))
        sample = data.read_csv(paths["train"])
    tables = {"sample": sample, "text+categorical": for_problem(settings.PROBLEM_TYPE)[0]}
    # Every fit before any load: loading pins the thread pools to one thread for the process.
    fits = {name: _fit_seconds(table, args.repeats) for name, table in tables.items()}
    rows = [measure(name, tables[name], *fits[name], args.calls) for name in tables]
    print(f"problem_type={settings.PROBLEM_TYPE} library={model.LIBRARY}")
    header = f"{'data':<18}{'rows':>6}{'feat':>6}{'fit s':>9}{'model KB':>10}{'tar KB':>9}{'1-row p50 us':>14}{'p99 us':>9}"
    print(header)
    for r in rows:
        print(
            f"{r['data']:<18}{r['rows']:>6}{r['features']:>6}{r['fit_s']:>9.3f}{r['model_kb']:>10.1f}"
            f"{r['tar_kb']:>9.1f}{r['predict_1row_median_us']:>14.1f}{r['predict_1row_p99_us']:>9.1f}"
        )


if __name__ == "__main__":
    main()
