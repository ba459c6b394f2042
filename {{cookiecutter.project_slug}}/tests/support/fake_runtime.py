"""A fake data-plane runtime for the emulator's tests: jobs finish when released, endpoints are
tiny Flask servers that answer with their model URL (or fail as told)."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, request
from werkzeug.serving import make_server

from {{ cookiecutter.package_name }}_emulator.runtimes import Endpoint, JobResult, Runtime, free_port


class FakeRuntime(Runtime):
    """Jobs finish when released; endpoints are tiny Flask servers that answer with their model URL."""

    name = "fake"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.training_requests: list[dict[str, Any]] = []
        self.fail_training = False
        self.fail_models: set[str] = set()  # never answer /ping: start_endpoint raises
        self.erroring_models: set[str] = set()  # answer every /invocations with HTTP 500
        self.missing_images: set[str] = set()
        self.servers: dict[str, Any] = {}
        self.stopped: list[str] = []
        self.processing_logs = ""

    def run_training(self, request: dict[str, Any]) -> JobResult:
        self.training_requests.append(request)
        self.release.wait(10)
        if self.fail_training:
            return JobResult(False, "AlgorithmError: bad hyperparameter C", "train:roc_auc=0.5;")
        c = float(request["HyperParameters"].get("C", "1"))
        logs = f"epoch 1\nvalidation:roc_auc={min(c, 10) / 10:.6f}; validation:accuracy=0.9;\n"
        output = (
            request["OutputDataConfig"]["S3OutputPath"] + f"/{request['TrainingJobName']}/output/model.tar.gz"
        )
        return JobResult(True, logs=logs, model_artifacts=output)

    def run_processing(self, request: dict[str, Any]) -> JobResult:
        self.release.wait(10)
        ok = request["Environment"]["OUTCOME"] == "ok"
        return JobResult(ok, "" if ok else "AlgorithmError: schema violation", self.processing_logs)

    def start_endpoint(self, name: str, container: dict[str, Any], instance_count: int = 1) -> Endpoint:
        model = container["ModelDataUrl"]
        if model in self.fail_models:
            raise RuntimeError("/ping did not answer 200")
        app = Flask("fake")

        @app.post("/invocations")
        def invocations() -> Any:
            if model in self.erroring_models:
                return "model crashed", 500
            if request.data == b"bad":
                return "bad input", 400
            if request.data == b"hang":
                time.sleep(4)  # longer than the 1 s invocation timeout of the test
            return {"model": model, "echo": request.data.decode()}

        port = free_port()
        server = make_server("127.0.0.1", port, app)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers[f"{model}@{port}"] = server
        return Endpoint(name, f"http://127.0.0.1:{port}", model, {"key": f"{model}@{port}"})

    def image_problem(self, image: str) -> str | None:
        return f"Failed to pull the image {image}: not found." if image in self.missing_images else None

    def stop_endpoint(self, endpoint: Endpoint) -> None:
        server = self.servers.pop(endpoint.details["key"], None)
        if server is not None:
            server.shutdown()
            self.stopped.append(endpoint.model_data_url)
