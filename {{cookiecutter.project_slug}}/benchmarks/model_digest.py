"""What the serving launcher's manifest check costs at start-up (issue 22).

    .venv/bin/python benchmarks/model_digest.py [--repeats 5] [--mib 500]

Times ``model_digest.folder_manifest`` (what ``steps/serve.py`` runs once per container before
any server starts) on the model folder the train step writes for this bake (the sample data), and
on that folder plus one synthetic file of ``--mib`` MiB of random bytes: median of ``--repeats``,
with the load average before and after. The files were just written, so they are read from the
page cache, as on an instance where SageMaker has just extracted the archive.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from {{ cookiecutter.package_name }} import model_digest  # noqa: E402
from {{ cookiecutter.package_name }}_emulator import sample_data  # noqa: E402

CHUNK = 16 * 1024 * 1024


def trained_folder(work: Path) -> Path:
    """/opt/ml/model as the train step writes it on the sample data."""
    data = sample_data.write(work / "data")
    channel = work / "opt_ml" / "input" / "data" / "train"
    shutil.copytree(data["train"].parent, channel)
    env = {**os.environ, "OPT_ML_ROOT": str(work / "opt_ml"), "PYTHONPATH": str(ROOT / "src")}
    module = "{{ cookiecutter.package_name }}.steps.train"
    subprocess.run([sys.executable, "-m", module], env=env, check=True, capture_output=True)
    return work / "opt_ml" / "model"


def add_random_file(folder: Path, mebibytes: int) -> None:
    remaining = mebibytes * 1024 * 1024
    with (folder / "large.bin").open("wb") as handle:
        while remaining > 0:
            handle.write(os.urandom(min(CHUNK, remaining)))
            remaining -= min(CHUNK, remaining)


def median_s(folder: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model_digest.folder_manifest(folder)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def report(name: str, folder: Path, repeats: int) -> None:
    count, total = size(folder)
    seconds = median_s(folder, repeats)
    print(
        f"{name}: {count} files, {total / 2**20:.2f} MiB, manifest median of {repeats}: {seconds * 1000:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mib", type=int, default=500)
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="model-digest-") as scratch:
        folder = trained_folder(Path(scratch))
        report("default model folder", folder, args.repeats)
        add_random_file(folder, args.mib)
        report(f"with a {args.mib} MiB file", folder, args.repeats)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
