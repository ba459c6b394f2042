"""Wall time of the whole local pipeline (both executions) per runtime, split by phase.

    python benchmarks/pipeline.py [--runtime process] [--runtime docker] [--out .local-pipeline/bench]

Targets on 2 cores: under 20 s with the process runtime, under 120 s on Docker with a built image.
Phases: moto start+deploy, execution 1 (create path), invoke, execution 2 (update path), checks,
cleanup. Without --runtime it measures process, and docker when a daemon answers and the image
exists. Exits 1 when a run did not reach its expected outcome (a fast wrong run is no figure).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from {{ cookiecutter.package_name }}.local.control_plane import LOCAL_IMAGE_URI
from {{ cookiecutter.package_name }}.local.run import Harness, quiet_moto, run_pipeline
from {{ cookiecutter.package_name }}.local.runtimes import docker_daemon_answers, image_exists

TARGETS = {"process": 20.0, "docker": 120.0}


def measure(runtime: str, out: Path, image: str) -> dict[str, object]:
    harness = Harness(runtime, out / runtime, Console(file=io.StringIO()), image)
    started = time.monotonic()
    try:
        result = run_pipeline(harness, stamp=f"bench-{runtime}")
    finally:
        cleanup_started = time.monotonic()
        harness.close()
        cleanup = time.monotonic() - cleanup_started
    phases = {**result.phases, "cleanup": cleanup}
    return {
        "runtime": runtime,
        "phases": phases,
        "total": time.monotonic() - started,
        "problems": result.problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runtime", action="append", choices=sorted(TARGETS), help="repeatable; default: all available"
    )
    parser.add_argument("--image", default=LOCAL_IMAGE_URI)
    parser.add_argument("--out", type=Path, default=Path(".local-pipeline/bench"))
    args = parser.parse_args()
    quiet_moto()
    runtimes = args.runtime or ["process"] + (
        ["docker"] if docker_daemon_answers() and image_exists(args.image) else []
    )
    results = [measure(runtime, args.out, args.image) for runtime in runtimes]

    table = Table(title="Local pipeline wall time (s)")
    phases = list(dict.fromkeys(name for r in results for name in r["phases"]))  # type: ignore[union-attr]
    for column in ("runtime", *phases, "total", "target", "ok"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    for r in results:
        target = TARGETS[str(r["runtime"])]
        ok = not r["problems"] and float(r["total"]) <= target  # type: ignore[arg-type]
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
