"""Data-plane cost per step: CPU-seconds and peak memory of reading and encoding, before and after.

    .venv/bin/python benchmarks/data_plane.py [--rows 10000,100000,1000000] [--baseline OLD_SRC]
        [--out DIR] [--steps train,validate,serving] [--serving-calls 300]

Generates ``--rows`` x 52 columns (50 numeric with 1% empty cells, 2 categorical, a binary label)
as CSV under ``--out`` (kept between runs), then runs each step in a fresh child process and reads
its CPU time (all threads) and peak RSS:

- ``train``: ``data.read_csv`` and ``Predictor.fit`` with the estimator replaced by one that
  learns nothing, i.e. everything training does to the data before the library sees it (categories,
  targets, the feature matrix, the example row);
- ``validate``: ``steps.validate.main`` against a reference model trained on the first size;
- ``serving``: ``Predictor.encode`` and ``Predictor.predict`` of a 1-row and a 100-row request as
  the codecs decode it (microseconds per call, best of 5 rounds): the request path must not slow.

Each step runs with this project's ``src`` ("after") and, with ``--baseline``, with another
bake's ``src`` ("before", e.g. a bake of the commit before the Arrow reader: ``git archive`` it,
bake it, pass its ``src``; it runs in this venv). 10M rows need ~4 GB of CSV and, before, ~60 GB of
memory: run the "after" side alone (no ``--baseline``). Peak RSS includes
the interpreter and the imports; ``over imports`` is the growth the data caused, compared with the
data's own float64 size (rows x 52 x 8 bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
NUMERIC, CATEGORICAL = 50, 2
COLUMNS = NUMERIC + CATEGORICAL

# Runs in the child: imports first (their memory and CPU are reported apart), then the step.
CHILD = """
import json, os, resource, sys, time
from pathlib import Path
import numpy as np
step, data, model_dir, output = sys.argv[1:5]
from PACKAGE import data as data_module, model, predictor, settings
from PACKAGE.steps import validate
from PACKAGE.serving import codecs
try:  # the reader's own imports (pyarrow) belong to the imports, not to the data
    from PACKAGE import readers
except ImportError:  # the code before issue 25 had none
    pass

def rss_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

class LearnsNothing:
    def fit(self, X, y):
        self.shape = X.shape

base_cpu, base_rss = time.process_time(), rss_kib()
result = dict()
if step == "train":
    model.build_estimator = lambda *args, **kwargs: LearnsNothing()
    fitted = predictor.Predictor.fit(data_module.read_csv(Path(data)), dict())
    assert fitted.estimator.shape[1] == COLUMNS
elif step == "validate":
    code = validate.main(["--data", data, "--reference-model", model_dir, "--output", output])
    assert code == 0, code
elif step == "serving":
    import timeit
    loaded = predictor.Predictor.load(Path(model_dir))
    schema = codecs.Schema(tuple(loaded.feature_names), tuple(loaded.feature_kinds))
    lines = Path(data).read_text().splitlines()[1:101]
    for rows in (1, 100):
        body = "".join(",".join(line.split(",")[:-1]) + chr(10) for line in lines[:rows]).encode()
        X = codecs.decode(body, codecs.CSV, schema)
        calls = max(1, int(sys.argv[5]) // rows)
        for name, call in (("encode", lambda: loaded.encode(X)), ("predict", lambda: loaded.predict(X))):
            best = min(timeit.repeat(call, number=calls, repeat=5)) / calls
            result[name + "_" + str(rows) + "_us"] = best * 1e6
result.update(cpu=time.process_time() - base_cpu, import_rss_kib=base_rss,
              peak_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(result))
"""


def generate(path: Path, rows: int, seed: int = 0) -> Path:
    """rows x 52 columns and a binary label as CSV, written in blocks (numpy formats the numbers)."""
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [f"x{j:02d}" for j in range(NUMERIC)] + ["colour", "size", "target"]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(",".join(names) + "\n")
        for start in range(0, rows, 50_000):
            n = min(50_000, rows - start)
            numbers = np.round(rng.standard_normal((n, NUMERIC)) * 10, 4).astype(str)
            numbers[rng.random((n, NUMERIC)) < 0.01] = ""
            colour = rng.choice(["red", "green", "blue", "grey", "NA"], n, p=[0.4, 0.3, 0.2, 0.09, 0.01])
            size = rng.choice(["S", "M", "L", "XL"], n)
            target = (numbers[:, 0] != "") & (rng.random(n) < 0.4)
            table = np.column_stack([numbers, colour, size, np.where(target, "1", "0")])
            handle.write("\n".join(",".join(row) for row in table.tolist()) + "\n")
    tmp.rename(path)
    return path


def reference_model(train_csv: Path, folder: Path) -> Path:
    """A model and drift profile trained on ``train_csv`` with this project's code (both versions
    read the same model folder format)."""
    if (folder / "profile.json").is_file():
        return folder
    code = f"""
from pathlib import Path
from {PACKAGE} import data, predictor
from {PACKAGE}.steps import train
table = data.read_csv(Path({str(train_csv)!r}))
fitted = predictor.Predictor.fit(table, dict())
fitted.save(Path({str(folder)!r}))
train.write_profile(table, fitted, fitted.drift_scores(fitted.predict(fitted.features(table))), Path({str(folder)!r}))
"""
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}
    )
    return folder


def run_step(src: Path, step: str, data: Path, model_dir: Path, out: Path, calls: int) -> dict[str, float]:
    child = CHILD.replace("PACKAGE", PACKAGE).replace("COLUMNS", str(COLUMNS))
    argv = [sys.executable, "-c", child, step, str(data), str(model_dir), str(out), str(calls)]
    done = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{step} with {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--baseline", type=Path, help="the src folder of a bake to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / ".benchmarks" / "data_plane")
    parser.add_argument("--steps", default="train,validate,serving")
    parser.add_argument("--serving-calls", type=int, default=300)
    args = parser.parse_args()

    sizes = [int(r) for r in args.rows.split(",")]
    files = {rows: generate(args.out / f"rows-{rows}.csv", rows) for rows in sizes}
    model_dir = reference_model(files[sizes[0]], args.out / f"model-{sizes[0]}")
    versions = {"after": ROOT / "src", **({"before": args.baseline} if args.baseline else {})}
    print(
        f"data-plane benchmark: {COLUMNS} columns, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"{'step':<9}{'rows':>10} {'version':<7}{'CPU s':>9}{'peak RSS MB':>13}{'over imports':>14}{'x data':>8}"
    )
    for step in args.steps.split(","):
        for rows in sizes if step != "serving" else sizes[:1]:
            for version, src in versions.items():
                figures = run_step(
                    src, step, files[rows], model_dir, args.out / "validate-out", args.serving_calls
                )
                peak, base = figures["peak_rss_kib"] / 1024, figures["import_rss_kib"] / 1024
                if step == "serving":
                    timings = "  ".join(
                        f"{k[:-3]} {v:,.0f} us" for k, v in figures.items() if k.endswith("_us")
                    )
                    print(f"{step:<9}{'':>10} {version:<7}{timings}")
                    continue
                ratio = (peak - base) / (rows * COLUMNS * 8 / 2**20)
                print(
                    f"{step:<9}{rows:>10,} {version:<7}{figures['cpu']:>9.2f}{peak:>13.0f}{peak - base:>14.0f}{ratio:>8.2f}"
                )
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
