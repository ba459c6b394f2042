"""Load a crafted model file in a child process under memory and time limits (issue 22's attack tests).

``load_in_child(kind, target)`` runs one of the project's loaders on ``target`` in a fresh Python
whose address space is capped (RLIMIT_AS) and which is killed after ``timeout`` seconds, and returns
an ``Outcome``. ``Outcome.assert_refused(*causes)`` is what every attack test expects: the process
exited on its own (no signal, no hang, no allocation past the cap) with one line naming the file
and each cause. Kinds:

- ``serving``: ``compiled.load`` on a model folder, then one prediction (ONNX Runtime's session is
  made on the first one), as a serving worker does;
- ``native``: ``Predictor.load`` on a model folder (the library's own loader), then one prediction;
- ``archive``: ``tarballs.extract`` of a tarball into ``<target>.out``;
- ``skops``: ``model_files.load_skops`` on one file, with the allowed types and node kinds given
  as ``extra`` (a JSON pair of lists): a swapped estimator's declarations (issue 23).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

MEMORY_BYTES = 1024**3  # ONNX Runtime, XGBoost and LightGBM all import within 1 GiB
TIMEOUT_S = 30.0
REFUSED_EXIT = 3

CHILD = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
kind, target = sys.argv[2], sys.argv[3]
from pathlib import Path
import numpy as np
from {{ cookiecutter.package_name }}.model_files import UnsafeModelError, load_skops
from {{ cookiecutter.package_name }}.predictor import ModelFolderError, Predictor
from {{ cookiecutter.package_name }}.tarballs import ArchiveError, extract
try:
    if kind == "archive":
        extract(Path(target), Path(target + ".out"))
    elif kind == "skops":
        import json
        types, kinds = json.loads(sys.argv[4])
        load_skops(Path(target), frozenset(types), frozenset(kinds))
    else:
        if kind == "serving":
            from {{ cookiecutter.package_name }}.serving import compiled
            predictor = compiled.load(Path(target))
        else:
            predictor = Predictor.load(Path(target))
        answer = predictor.predict(np.array([predictor.example], dtype=object))
        print("ANSWER", [a.tolist() for a in (answer.scores, answer.probabilities, answer.values) if a is not None])
except (UnsafeModelError, ModelFolderError, ArchiveError) as error:
    print("REFUSED", str(error).replace("\\n", " "))
    sys.exit(3)  # REFUSED_EXIT
print("LOADED")
"""


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def refusal(self) -> str:
        return next((line for line in self.stdout.splitlines() if line.startswith("REFUSED ")), "")

    def assert_refused(self, *causes: str) -> None:
        """Exited by itself, not by a signal, a timeout or the memory cap, with a refusal naming each cause."""
        detail = f"rc={self.returncode}\nstdout: {self.stdout[-800:]}\nstderr: {self.stderr[-1500:]}"
        assert self.returncode is not None, f"hung past {TIMEOUT_S} s\n{detail}"
        assert self.returncode >= 0, f"killed by signal {-self.returncode}\n{detail}"
        assert self.returncode == REFUSED_EXIT, f"not refused\n{detail}"
        assert len([line for line in self.stdout.splitlines() if line.startswith("REFUSED")]) == 1, detail
        for cause in causes:
            assert cause in self.refusal, f"{cause!r} not in the refusal\n{detail}"


def load_in_child(
    kind: str, target: object, timeout: float = TIMEOUT_S, memory: int = MEMORY_BYTES, extra: str = ""
) -> Outcome:
    args = [sys.executable, "-c", CHILD, str(memory), kind, str(target), *([extra] if extra else [])]
    # The child imports the project as the test does (pytest's ``pythonpath`` puts src/ first; a
    # venv without the project installed, as the template's lock venvs, has it there only).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as expired:
        return Outcome(None, _text(expired.stdout), _text(expired.stderr))
    return Outcome(done.returncode, done.stdout, done.stderr)


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
