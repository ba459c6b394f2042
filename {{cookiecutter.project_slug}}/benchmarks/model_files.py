"""What the model-file checks of issue 22 cost: the digest at serving start, the booster checks.

    .venv/bin/python benchmarks/model_files.py [--starts 7] [--repeats 20]

On tests/support/datasets.py's numeric set for this project's problem type and library:
- ``model.onnx``: its size, ``onnx_file.read_verified`` (size, type and SHA-256 against
  metadata.json) in microseconds, and a serving worker's start (a fresh Python: ``create_app``
  then the warm-up prediction, median of ``--starts``, the two alternating) with the digest check
  and with it replaced by a plain read;
- the native file (XGBoost JSON, LightGBM text; skipped for skops): the structural check and
  canonical rewrite (``xgboost_json`` / ``lightgbm_text``) alone, then with the library's load of
  the rewrite (what ``load_native`` does), against the library loading the file unchecked, in
  milliseconds (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "support")]

from datasets import for_problem  # noqa: E402

from {{ cookiecutter.package_name }} import model, model_files, settings  # noqa: E402
from {{ cookiecutter.package_name }}.predictor import Predictor  # noqa: E402
from {{ cookiecutter.package_name }}.serving import compiled, onnx_file  # noqa: E402

START = """
import sys, time
started = time.perf_counter()
from {{ cookiecutter.package_name }}.serving import onnx_file
if sys.argv[2] == "plain":  # the same start without the check: read the bytes as they are
    onnx_file.read_verified = lambda path, sha256, max_bytes: open(path, "rb").read()
from {{ cookiecutter.package_name }}.serving.app import create_app
app = create_app(sys.argv[1])
app.warm_up()
print(time.perf_counter() - started)
"""


def _median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def worker_starts_s(folder: Path, starts: int) -> dict[str, float]:
    """Median start per mode, the two modes alternating so that load on the machine hits both alike."""
    times: dict[str, list[float]] = {"verified": [], "plain": []}
    for _ in range(starts):
        for mode, samples in times.items():
            done = subprocess.run([sys.executable, "-c", START, str(folder), mode], capture_output=True,
                                  text=True, check=True)  # fmt: skip
            samples.append(float(done.stdout.split()[-1]))
    return {mode: statistics.median(samples) for mode, samples in times.items()}


def onnx_figures(folder: Path, starts: int, repeats: int) -> dict[str, object]:
    path = folder / compiled.COMPILED_FILE
    sha256 = json.loads((folder / "metadata.json").read_text())["compiled"]["sha256"]
    verify_ms = _median_ms(
        lambda: onnx_file.read_verified(path, sha256, model_files.MAX_MODEL_BYTES), repeats
    )
    starts_s = worker_starts_s(folder, starts)
    return {
        "model.onnx bytes": path.stat().st_size,
        "read_verified us": round(verify_ms * 1000, 1),
        "worker start s (digest checked)": round(starts_s["verified"], 3),
        "worker start s (plain read)": round(starts_s["plain"], 3),
    }


def native_figures(folder: Path, repeats: int) -> dict[str, object]:
    if model.LIBRARY not in ("xgboost", "lightgbm"):
        return {}
    metadata = json.loads((folder / "metadata.json").read_text())
    expected = model_files.Expected.of(metadata)
    path = folder / model.MODEL_FILE
    if model.LIBRARY == "xgboost":
        import xgboost as xgb

        from {{ cookiecutter.package_name }} import xgboost_json as checker

        def raw() -> object:
            return xgb.Booster(model_file=str(path))

        def checked() -> object:
            booster = xgb.Booster()
            booster.load_model(bytearray(checker.canonical(path, expected)))
            return booster
    else:
        import lightgbm as lgb

        from {{ cookiecutter.package_name }} import lightgbm_text as checker  # type: ignore[no-redef]

        def raw() -> object:
            return lgb.Booster(model_file=str(path))

        def checked() -> object:
            return lgb.Booster(model_str=checker.canonical(path, expected))

    return {
        "native bytes": path.stat().st_size,
        "check + rewrite ms": round(_median_ms(lambda: checker.canonical(path, expected), repeats), 2),
        "check, rewrite and library load ms": round(_median_ms(checked, repeats), 2),
        "library load of the unchecked file ms": round(_median_ms(raw, repeats), 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    train, holdout = for_problem(settings.PROBLEM_TYPE, categorical=False)  # every converter applies
    predictor = Predictor.fit(train, {})
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        predictor.save(folder)
        figures: dict[str, object] = {"problem_type": settings.PROBLEM_TYPE, "library": model.LIBRARY}
        figures |= native_figures(folder, args.repeats)
        if compiled.export(predictor, holdout, folder):
            figures |= onnx_figures(folder, args.starts, args.repeats)
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
