"""Production clients, offline: InvokeEndpoint at a steady rate while the endpoint is being updated.

On AWS the rollback alarms judge a new fleet by the traffic it gets during the baking period; the
template's 5xx alarm needs at least ``ErrorRateMinInvocations`` (20) invocations a minute, so with
no traffic a model that fails every request is never rolled back (true on AWS too). The run
therefore plays the production clients: ``per_minute`` requests a minute of AWS time (one holdout
row each), sent while DescribeEndpoint says Updating or RollingBack, so the alarms see a realistic
load during baking and nothing else pays for it.

    with ProductionTraffic(client, endpoint, body, per_minute=60, clock=plane.clock):
        ...  # the update execution runs
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .blue_green import EndpointClock

CHANGING = ("Updating", "RollingBack")
WORKERS = 2  # one blocked request must not stall the rate


class ProductionTraffic:
    def __init__(
        self,
        client: Callable[[str], Any],
        endpoint_name: str,
        body: bytes,
        *,
        per_minute: float,
        clock: EndpointClock,
        poll_s: float = 0.25,
    ) -> None:
        """``client(service)``: a boto3 client of the control plane; ``body``: one request (CSV)."""
        self.client, self.endpoint_name, self.body = client, endpoint_name, body
        self.interval = clock.real(60.0 / per_minute) * WORKERS  # real seconds between a worker's requests
        self.poll_s = poll_s
        self.answers: Counter[int] = Counter()  # HTTP status -> requests
        self._lock = threading.Lock()
        self._changing = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, name="traffic-watch", daemon=True)] + [
            threading.Thread(target=self._send, name=f"traffic-{i}", daemon=True) for i in range(WORKERS)
        ]

    def __enter__(self) -> ProductionTraffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._changing.set()  # wake the workers so they see the stop
        for thread in self._threads:
            thread.join(10)

    def _watch(self) -> None:
        sagemaker = self.client("sagemaker")
        while not self._stop.is_set():
            try:
                status = sagemaker.describe_endpoint(EndpointName=self.endpoint_name)["EndpointStatus"]
            except (ClientError, BotoCoreError):
                status = ""
            if status in CHANGING:
                self._changing.set()
            else:
                self._changing.clear()
            self._stop.wait(self.poll_s)

    def _send(self) -> None:
        runtime = self.client("sagemaker-runtime")
        while not self._stop.is_set():
            self._changing.wait()
            started = time.monotonic()
            try:
                runtime.invoke_endpoint(
                    EndpointName=self.endpoint_name, Body=self.body, ContentType="text/csv"
                )
                status = 200
            except ClientError as error:
                status = error.response["ResponseMetadata"]["HTTPStatusCode"]
            except BotoCoreError:
                status = 0
            with self._lock:
                self.answers[status] += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def summary(self) -> str:
        total = sum(self.answers.values())
        if not total:
            return "no production traffic was sent (no endpoint update)"
        errors = total - self.answers[200]
        return f"{total} InvokeEndpoint requests during endpoint updates, {errors} answered with an error"
