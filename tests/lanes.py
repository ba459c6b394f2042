"""`make test`: the template's tests in two lanes at once, each a pytest run of its own.

Why (CI time, docs/decisions.md "Two test lanes"): the default bake's whole `make test` is a third
of the run and spends much of it waiting on Docker (image builds, containers starting, endpoint
waits), while the other slow tests bake, install and train. On the 2-core CI machine one lane each
finishes the run in about the time of the longer lane instead of their sum. The lanes share no
state: every test bakes into its own temporary folder, ports are free ports, and only the first lane
builds or runs Docker images.

With PYTEST_ARGS (a selection, e.g. one file or `-k`), one pytest run takes them, as before.
Exit code: the first failing lane's; a lane that collects no test (pytest's 5) is a failure.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "tests/test_generated_project.py"
LANES = {
    "generated project (make install, lint, make test with Docker, cruft update)": [GENERATED],
    "hooks, option matrix, every bake, swaps, per-type pipelines": ["tests", f"--ignore={GENERATED}"],
}


def pytest(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=ROOT, **kwargs)


def verdict(name: str, returncode: int) -> int:
    if returncode == 5:
        print(f"ERROR: lane {name!r}: pytest collected no tests", file=sys.stderr)
        return 1
    if returncode:
        print(f"lane {name!r} failed (pytest exit {returncode})", file=sys.stderr)
    return returncode


def main(extra: list[str]) -> int:
    if extra:
        return verdict("selection", pytest(extra).wait())
    logs = ROOT / "build" / "test-lanes"
    logs.mkdir(parents=True, exist_ok=True)
    # Each lane its own pytest temporary root: neither run's cleanup of old roots sees the other's.
    (first, first_args), (second, second_args) = (
        (name, [*args, f"--basetemp={Path(tempfile.gettempdir()) / f'template-tests-lane-{n}'}"])
        for n, (name, args) in enumerate(LANES.items(), start=1)
    )
    started = time.monotonic()
    log = logs / "generated.log"
    print(f"lane 1, {first}: in the background, its output follows lane 2's ({log})", flush=True)
    with log.open("wb") as sink:
        background = pytest(first_args, stdout=sink, stderr=subprocess.STDOUT)
        print(f"lane 2, {second}:", flush=True)
        second_rc = pytest(second_args).wait()
        first_rc = background.wait()
    print(f"\nlane 1, {first}:\n{log.read_text(errors='replace')}", flush=True)
    print(f"both lanes done in {time.monotonic() - started:.0f} s", flush=True)
    verdicts = [verdict(first, first_rc), verdict(second, second_rc)]
    return next((rc for rc in verdicts if rc), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
