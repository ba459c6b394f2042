"""Write bytecode, at build time, for exactly the modules the image's entrypoints import.

The model user cannot write ``__pycache__`` at run time, so a module without bytecode is compiled
in memory at every start. Compiling the whole venv (``compileall``) would cost ~50 MB of bytecode
that nothing loads; importing what ``train``, ``serve``, ``validate`` and ``evaluate`` import makes
Python write bytecode for those modules and no others. Run as root in the final build stage with
PYTHONDONTWRITEBYTECODE unset. Imports only: no entrypoint's ``main`` runs.

An entrypoint that cannot be imported fails the build (exit 1, with the reason): the image would
only fail later, when SageMaker starts a job or an endpoint with it. A broken native library does
this, e.g. numpy's OpenBLAS after `strip` (docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import importlib
import sys

PACKAGE = "{{ cookiecutter.package_name }}"
ENTRYPOINTS = ("steps.serve", "serving.app", "steps.train", "steps.validate", "steps.evaluate")
# Imported lazily (inside functions) by the entrypoints, or present only for some libraries.
LAZY = (
    "gunicorn.app.wsgiapp",
    "gunicorn.workers.sync",
    "gunicorn.workers.gthread",
    "gunicorn.glogging",
    "boto3",
    "xgboost",
    "lightgbm",
    "onnxruntime",
)


def _reason(error: Exception) -> str:
    """The last line of the message: numpy's import error ends with the loader's own words."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else '(no message)'}"


def main() -> int:
    missing = []
    for name in (f"{PACKAGE}.{module}" for module in ENTRYPOINTS):
        try:
            importlib.import_module(name)
        except Exception as error:  # every broken entrypoint is named before the build fails
            missing.append(f"{name}: {_reason(error)}")
    for name in LAZY:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.suppress(ImportError):
        import boto3

        boto3.client("s3", region_name="us-east-1")  # loads the client machinery, no request
    for line in missing:
        print(f"precompile: error: cannot import {line}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
