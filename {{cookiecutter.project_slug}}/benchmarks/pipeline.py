"""Wall time of the whole local pipeline (both executions) per runtime, split by phase.

    python benchmarks/pipeline.py [--runtime process] [--runtime docker] [--repeat 3] [--data PATH]

Targets on 2 cores (issue 12), for both executions together (create path + update path, each with
its endpoint check): under 10 s with the process runtime, under 40 s on Docker with a built image.
Phases: moto start+deploy (data prepared, stack deployed), execution 1, execution 2, checks,
cleanup; with --repeat the median of each. Without --runtime it measures process, and docker when
a daemon answers and the image exists. Exits 1 when a run did not reach its expected outcome (a
fast wrong run is no figure).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from {{ cookiecutter.package_name }}_emulator.control_plane import LOCAL_IMAGE_URI
from {{ cookiecutter.package_name }}_emulator.run import Emulator, run_pipeline
from {{ cookiecutter.package_name }}_emulator.runtimes import docker_daemon_answers, image_exists
from {{ cookiecutter.package_name }}_emulator.terminal import quiet_moto

TARGETS = {"process": 10.0, "docker": 40.0}  # seconds for execution 1 + execution 2


def measure(runtime: str, out: Path, image: str, data: Path | None = None) -> dict[str, object]:
    emulator = Emulator(runtime, out / runtime, Console(file=io.StringIO()), image, data_source=data)
    started = time.monotonic()
    try:
        result = run_pipeline(emulator, stamp=f"bench-{runtime}")
    finally:
        cleanup_started = time.monotonic()
        emulator.close()
        cleanup = time.monotonic() - cleanup_started
    phases = {**result.phases, "cleanup": cleanup}
    executions = sum(v for k, v in phases.items() if k.startswith("execution"))
    return {
        "runtime": runtime,
        "phases": {**phases, "executions": executions},
        "total": time.monotonic() - started,
        "problems": result.problems,
    }


def median_of(runs: list[dict[str, object]]) -> dict[str, object]:
    names = list(dict.fromkeys(name for r in runs for name in r["phases"]))  # type: ignore[union-attr]
    return {
        "runtime": runs[0]["runtime"],
        "phases": {n: statistics.median(r["phases"].get(n, 0.0) for r in runs) for n in names},  # type: ignore[union-attr]
        "total": statistics.median(float(r["total"]) for r in runs),  # type: ignore[arg-type]
        "problems": [p for r in runs for p in r["problems"]],  # type: ignore[union-attr]
        "runs": len(runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runtime", action="append", choices=sorted(TARGETS), help="repeatable; default: all available"
    )
    parser.add_argument("--image", default=LOCAL_IMAGE_URI)
    parser.add_argument("--out", type=Path, default=Path(".local-pipeline/bench"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per runtime; the table shows medians")
    parser.add_argument("--data", type=Path, default=None, help="your data, as make local-pipeline DATA=")
    args = parser.parse_args()
    quiet_moto()
    runtimes = args.runtime or ["process"] + (
        ["docker"] if docker_daemon_answers() and image_exists(args.image) else []
    )
    results = [
        median_of(
            [measure(runtime, args.out / f"run-{i}", args.image, args.data) for i in range(args.repeat)]
        )
        for runtime in runtimes
    ]

    table = Table(title="Local pipeline wall time (s)")
    phases = list(dict.fromkeys(name for r in results for name in r["phases"]))  # type: ignore[union-attr]
    for column in ("runtime", *phases, "total", "target", "ok"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    for r in results:
        target = TARGETS[str(r["runtime"])]
        ok = not r["problems"] and float(r["phases"]["executions"]) <= target  # type: ignore[index]
        cells = [f"{r['phases'].get(name, 0.0):.1f}" for name in phases]  # type: ignore[union-attr]
        table.add_row(str(r["runtime"]), *cells, f"{r['total']:.1f}", f"{target:.0f}", "yes" if ok else "no")
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(results, indent=2))
    for r in results:
        for problem in r["problems"]:  # type: ignore[union-attr]
            print(f"{r['runtime']}: {problem}", file=sys.stderr)
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
