"""What a free-text column costs (issue 23): training, the model folder, start-up and answers.

    .venv/bin/python benchmarks/text_columns.py [--rows 3000] [--repeats 300]
    .venv/bin/python benchmarks/text_columns.py --rows 87500 --repeats 20   # 70,000 training texts

Two models of the same listings (``tests/support/datasets.listings``: an id, a time, a
description of 5-30 words, two numbers): one with the description (TF-IDF over its 1,000 most
frequent words), one without it. Each is trained by ``Predictor.fit``, exported (compiled where it
verifies) and served in process through the app with the default service functions: the start-up
(``create_app``, the model loaded and warmed up) and the median time of a 1-row and a 100-row JSON
request, interleaved between the two models, with the holdout metric of each and the load average.
In process, not the image: the image's figures come from ``make bench`` (benchmarks/serving.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "support")]

import datasets  # noqa: E402
import numpy as np  # noqa: E402

from {{ cookiecutter.package_name }} import metrics  # noqa: E402
from {{ cookiecutter.package_name }}.data import Table  # noqa: E402
from {{ cookiecutter.package_name }}.predictor import Predictor  # noqa: E402
from {{ cookiecutter.package_name }}.serving import compiled  # noqa: E402
from {{ cookiecutter.package_name }}.serving.app import create_app  # noqa: E402
from {{ cookiecutter.package_name }}.settings import GATE_METRIC, LABEL_COLUMN, PROBLEM_TYPE  # noqa: E402


def without(table: Table, column: str) -> Table:
    return Table(
        [c for c in table.columns if c != column], {c: v for c, v in table.data.items() if c != column}
    )


def records(table: Table, rows: int) -> list[dict]:
    names = [c for c in table.columns if c != LABEL_COLUMN]
    return [
        {c: (v if isinstance(v, str) else float(v)) for c, v in zip(names, row, strict=True)}
        for row in zip(*(table.data[c][:rows].tolist() for c in names), strict=True)
    ]


def build(train: Table, holdout: Table, folder: Path) -> tuple[float, float, bool]:
    started = time.perf_counter()
    predictor = Predictor.fit(train, {})
    fit_s = time.perf_counter() - started
    predictor.save(folder)
    exported = compiled.export(predictor, holdout, folder)
    answers = predictor.predict(predictor.features(holdout))
    positive = predictor.classes[1] if PROBLEM_TYPE == "binary" else None
    score = metrics.compute(PROBLEM_TYPE, holdout.data[LABEL_COLUMN], answers, predictor.classes, positive)
    return fit_s, score[GATE_METRIC], exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    data = datasets.listings(args.rows, seed=0)
    cut = int(0.8 * args.rows)
    train, holdout = data.take(np.arange(cut)), data.take(np.arange(cut, args.rows))
    work = Path(tempfile.mkdtemp(prefix="text-bench-"))
    cases = {
        "with text": (train, holdout),
        "without text": (without(train, "description"), without(holdout, "description")),
    }
    clients, bodies = {}, {}
    for name, (tr, ho) in cases.items():
        folder = work / name.replace(" ", "-")
        fit_s, score, exported = build(tr, ho, folder)
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        started = time.perf_counter()
        clients[name] = create_app(folder, inference=types.SimpleNamespace()).test_client()
        start_s = time.perf_counter() - started
        print(f"{name}: fit {fit_s:.2f} s, holdout {GATE_METRIC} {score:.3f}, compiled {exported}, "
              f"start-up {start_s * 1000:.0f} ms, files {sizes}")  # fmt: skip
        bodies[name] = {n: {"instances": records(ho, n)} for n in (1, 100)}
    for rows in (1, 100):
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):  # interleaved: both models see the same machine
            for name, client in clients.items():
                started = time.perf_counter()
                reply = client.post("/invocations", json=bodies[name][rows])
                times[name].append(time.perf_counter() - started)
                assert reply.status_code == 200, reply.get_data(as_text=True)
        medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
        ratio = medians["with text"] / medians["without text"]
        print(f"{rows} row(s): with text {medians['with text']:.3f} ms, without {medians['without text']:.3f} ms, "
              f"ratio {ratio:.2f}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
