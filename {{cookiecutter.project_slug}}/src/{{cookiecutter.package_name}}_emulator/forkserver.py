"""The emulator's one fork server: jobs, endpoints and Lambda invocations start as forks of it.

multiprocessing's fork server is a single-threaded process that imported ``PRELOAD`` once and
forks a child per request (forking the emulator itself, which runs moto's threads, would be
unsafe). A child then costs about 20 ms instead of a cold interpreter's seconds of imports.

One correction to multiprocessing: every child it starts first re-imports the *parent's* main
module (``spawn.prepare``, so that functions defined in ``__main__`` unpickle). For
``python -m <package>_emulator.run`` that is the whole emulator (moto, rich, botocore): 0.4 s per
child on an idle machine, more than a Lambda invocation itself. The targets started here live
in modules of their own, so ``Process`` sends the preparation data without the main module.

``warm_up`` starts the server in the background (the emulator calls it first thing, so the
imports overlap moto's start and the stack deploy); the first ``Process`` waits for it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import ForkServerProcess
from typing import Any

# What a job imports (the process runtime forks jobs from here) and what a Lambda imports; the
# ONNX converters and runtime are what training's compiled predictor uses (absent ones are skipped).
PRELOAD = (
    "numpy",
    "scipy.stats",
    "sklearn.linear_model",
    "sklearn.metrics",
    "skops.io",
    "boto3",
    "skl2onnx",
    "onnxruntime",
)
JOB_MODULES = ("steps.train", "steps.validate", "steps.evaluate")
LAMBDA_PRELOAD = ("boto3",)
_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")
_lock = threading.Lock()


def preload_for(package: str, jobs: bool = True) -> list[str]:
    """The modules the server imports once: the ML stack and the entrypoints, or only boto3."""
    names = [*PRELOAD, *(f"{package}.{m}" for m in JOB_MODULES)] if jobs else list(LAMBDA_PRELOAD)
    return [name for name in names if _installed(name.split(".")[0])]


def _installed(name: str) -> bool:
    # A process that served already refuses a name it found missing (serving/imports.py) by
    # raising from its finder, where find_spec would return None: both mean "not installed".
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def configure(modules: Iterable[str]) -> None:
    """Set what the server preloads; only before it runs (later calls cannot change a running one)."""
    with _lock:
        if forkserver._forkserver._forkserver_pid is None:
            multiprocessing.get_context("forkserver").set_forkserver_preload(list(modules))


class _Popen(popen_forkserver.Popen):
    def _launch(self, process_obj: Any) -> None:
        # popen_forkserver.Popen._launch (CPython 3.11 and 3.12, the versions this project
        # supports), with the main module left out of the preparation data.
        prep_data = spawn.get_preparation_data(process_obj._name)
        for key in _MAIN_KEYS:
            prep_data.pop(key, None)
        buf = io.BytesIO()
        popen_forkserver.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            popen_forkserver.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class Process(ForkServerProcess):
    """A fork-server child that does not re-import the parent's ``__main__``."""

    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:  # type: ignore[override]
        return _Popen(process_obj)


def start(target: Callable[..., object], args: tuple[Any, ...], *, daemon: bool = False) -> Process:
    child = Process(target=target, args=args, daemon=daemon)
    child.start()
    return child


def warm_up(modules: Iterable[str]) -> threading.Thread:
    """Start the server in a background thread (its imports take seconds); returns the thread."""

    def run() -> None:
        configure(modules)
        with contextlib.suppress(Exception):  # a failure shows again, with its message, at first use
            start(int, ()).join()

    thread = threading.Thread(target=run, name="forkserver-warm-up", daemon=True)
    thread.start()
    return thread
