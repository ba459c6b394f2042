"""The service layer's cost (inference.py, issue 24): the default path against custom functions, in process.

    python benchmarks/service_layer.py [--seconds 1.5] [--rounds 5]

One model trained in process on the sample data, with its verified ONNX export when there is one
(what the endpoint serves), behind serving/app.py's ``Service`` without HTTP: the figures are the
service layer alone (decode, predict, encode and the dispatch around them). Services:

  before       the per-request steps of /invocations before issue 24: the content type check,
               Accept, then ``Service.predict`` (the codecs and ``Predictor.predict`` called straight)
  defaults     ``Service.respond`` with nothing defined in inference.py (the template as shipped):
               what /invocations runs now
  written-out  inference.py's commented defaults, uncommented: the same three calls made through
               the handlers (why the shipped file keeps them as comments)
  output_fn    a custom output_fn that adds a decision field (``Encoder.records`` +
               ``codecs.encode_records``), input_fn and predict_fn the defaults
  example      the README's example: ids, one bare record, a decision (and the top classes)

For 1 and 100 rows, CSV -> JSON and JSON Lines -> JSON Lines: the median microseconds per request
over interleaved rounds (outside load on a shared machine hits every service alike), and the
ratio to ``defaults``. Figures also go to .local-pipeline/bench/service_layer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "support"))

from inference_modules import INFERENCE, commented_defaults, module_from, readme_example  # noqa: E402

from {{ cookiecutter.package_name }} import data, settings  # noqa: E402
from {{ cookiecutter.package_name }}.predictor import Predictor  # noqa: E402
from {{ cookiecutter.package_name }}.serving import codecs, compiled  # noqa: E402
from {{ cookiecutter.package_name }}.serving.app import Service, _accept  # noqa: E402
from {{ cookiecutter.package_name }}.serving.errors import ServingError  # noqa: E402
from {{ cookiecutter.package_name }}.serving.handlers import Handlers  # noqa: E402
from {{ cookiecutter.package_name }}_emulator import endpoint_check, sample_data  # noqa: E402

DECISION = """
from . import settings
from .serving import codecs

def output_fn(prediction, accept, context):
    records = context.encoder.records(prediction)
    for record in records:
        number = record.get("score", record.get("value"))
        if number is None:
            number = max(record["probabilities"].values())
        record["decision"] = "approve" if number >= settings.DECISION_THRESHOLD else "review"
    return codecs.encode_records(records, accept)
"""
CELLS = [(rows, kind) for rows in (1, 100) for kind in ("CSV -> JSON", "JSON Lines -> JSON Lines")]


def model(work: Path) -> Predictor:
    """The sample model as serving loads it (the ONNX export when it verifies, else the library)."""
    paths = sample_data.write(work / "data")
    train, holdout = data.read_csv(paths["train"]), data.read_csv(paths["holdout"])
    predictor = Predictor.fit(train, {})
    predictor.save(work / "model")
    compiled.export(predictor, holdout, work / "model")
    return compiled.load(work / "model")


def requests(work: Path) -> dict[tuple[int, str], endpoint_check.Request]:
    holdout = data.read_csv(work / "data" / "holdout" / "holdout.csv")
    out = {}
    for rows in (1, 100):
        repeated = holdout.take([i % holdout.n_rows for i in range(rows)])
        for request in endpoint_check.requests_for(repeated, rows=rows):
            out[(rows, request.name)] = request
    return out


def services(predictor: Predictor) -> dict[str, Any]:
    defaults = Service(predictor)
    written = commented_defaults(INFERENCE.read_text())

    def before(request: endpoint_check.Request) -> tuple[int, str, bytes]:
        try:
            if request.content_type not in codecs.CONTENT_TYPES:
                raise codecs.unsupported(request.content_type)
            accept = _accept(request.accept, request.content_type)
            return 200, accept, defaults.predict(request.body, request.content_type, accept)
        except ServingError as error:
            return error.status, codecs.JSON, codecs.encode_error(error.message, error.status, codecs.JSON)

    candidates = {
        "before": before,
        "defaults": lambda r: defaults.respond(lambda: r.body, r.content_type, r.accept),
    }
    if written is not None:  # gone once the project's inference.py holds code of its own
        handlers = Handlers.of(module_from(written, "written_out"))
        service = Service(predictor, handlers)
        candidates["written-out"] = lambda r: service.respond(lambda: r.body, r.content_type, r.accept)
    for name, source in (("output_fn", DECISION), ("example", readme_example())):
        custom = Service(predictor, Handlers.of(module_from(source, name.replace("-", "_"))))
        candidates[name] = lambda r, s=custom: s.respond(lambda: r.body, r.content_type, r.accept)
    return candidates


def median_us(call: Any, request: endpoint_check.Request, seconds: float) -> float:
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        call(request)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per service, cell and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        predictor = model(Path(folder))
        bodies = requests(Path(folder))
    calls = services(predictor)
    for (rows, kind), request in bodies.items():  # warm every path once; check they all answer 200
        for name, call in calls.items():
            answer = call(request)
            assert answer[0] == 200, (name, rows, kind, answer)
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in calls}
    for _ in range(args.rounds):
        for rows, kind in CELLS:
            for name, call in calls.items():
                cell = f"{rows} x {kind}"
                figures[name].setdefault(cell, []).append(median_us(call, bodies[(rows, kind)], args.seconds))
    estimator = type(predictor.estimator).__name__
    print(f"{settings.PROBLEM_TYPE} x {settings.MODEL_LIBRARY} ({estimator}), load {os.getloadavg()[0]:.2f}")
    print(f"{'service':<12}" + "".join(f"{f'{r} x {k}':>32}" for r, k in CELLS))
    result = {name: {cell: statistics.median(v) for cell, v in figures[name].items()} for name in calls}
    for name in calls:
        row = ""
        for rows, kind in CELLS:
            cell = f"{rows} x {kind}"
            us, base = result[name][cell], result["defaults"][cell]
            row += f"{us:>20.1f} us ({us / base:4.2f}x)"
        print(f"{name:<12}{row}")
    out = PROJECT_ROOT / ".local-pipeline" / "bench" / "service_layer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"load": os.getloadavg()[0], "median_us": result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
