"""Write bytecode, at build time, for exactly the modules the image's entrypoints import.

The model user cannot write ``__pycache__`` at run time, so a module without bytecode is compiled
in memory at every start. Compiling the whole venv (``compileall``) would cost ~50 MB of bytecode
that nothing loads; importing what ``train``, ``serve``, ``validate`` and ``evaluate`` import makes
Python write bytecode for those modules and no others. Run as root in the final build stage with
PYTHONDONTWRITEBYTECODE unset. Imports only: no entrypoint's ``main`` runs.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

PACKAGE = "{{ cookiecutter.package_name }}"
ENTRYPOINTS = ("serving.server", "serving.app", "training", "drift.validate", "drift.evaluate")
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


def main() -> int:
    missing = []
    for name in (f"{PACKAGE}.{module}" for module in ENTRYPOINTS):
        try:
            importlib.import_module(name)
        except Exception as error:  # reported; the image tests fail on a broken entrypoint
            missing.append(f"{name}: {error}")
    for name in LAZY:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.suppress(ImportError):
        import boto3

        boto3.client("s3", region_name="us-east-1")  # loads the client machinery, no request
    for line in missing:
        print(f"precompile: warning: cannot import {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
