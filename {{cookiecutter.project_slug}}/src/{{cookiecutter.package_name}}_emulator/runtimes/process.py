"""The process runtime: the image's entrypoints as ``python -m`` subprocesses, no Docker needed.

Each job gets its own folder laid out like the container's /opt/ml (``OPT_ML_ROOT`` re-roots
``paths.py``), with inputs downloaded from moto's S3 and outputs uploaded back the way SageMaker
does it, so the entrypoints cannot tell the difference. Container paths in processing arguments
(``/opt/ml/...``) are rewritten into the job folder.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import requests

from {{ cookiecutter.package_name }} import s3uri, tarballs
from {{ cookiecutter.package_name }}.distributed import HOSTS_ENV
from {{ cookiecutter.package_name }}.settings import PACKAGE_NAME

from .. import forkserver, principals
from . import Endpoint, JobResult, Runtime, aws_environment, free_port, log_tail

# Container entrypoint (on PATH in the image) -> module run with ``python -m`` here.
ENTRYPOINT_MODULES = {
    "train": "steps.train",
    "serve": "steps.serve",
    "validate": "steps.validate",
    "evaluate": "steps.evaluate",
}
CONTAINER_ROOT = "/opt/ml"
DEFAULT_MAX_RUNTIME = 3600
HEALTH_TIMEOUT = 60.0


def split_s3_uri(uri: str) -> tuple[str, str]:
    try:
        return s3uri.split(uri)
    except s3uri.S3UriError as error:
        raise ValueError(str(error)) from None


class S3:
    """The few S3 transfers SageMaker performs around a job, against moto."""

    def __init__(self, endpoint_url: str, region: str, access_key: str = "testing"):
        """``access_key``: who signs, e.g. ``principals.key_for(job role)``: SageMaker moves a job's
        data as the job's execution role."""
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key="testing",  # pragma: allowlist secret (moto dummy)
        )

    def download(self, uri: str, dest: Path) -> int:
        """Copy an S3 prefix (or one object) below ``dest``, keeping key paths relative to the prefix."""
        bucket, prefix = split_s3_uri(uri)
        count = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                relative = key[len(prefix) :].lstrip("/") or Path(key).name
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(bucket, key, str(target))
                count += 1
        if count == 0:
            raise FileNotFoundError(f"no S3 objects under {uri}")
        return count

    def upload_file(self, path: Path, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        self.client.upload_file(str(path), bucket, key)

    def upload_tree(self, folder: Path, uri: str) -> None:
        bucket, prefix = split_s3_uri(uri)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.client.upload_file(
                str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            )


make_tarball = tarballs.create  # model.tar.gz as SageMaker writes it: contents at the archive root


def extract_tarball(archive: Path, dest: Path) -> None:
    tarballs.extract(archive, dest)  # size and member caps, then the "data" filter


def failure_reason(job_root: Path, logs: str, returncode: int) -> str:
    """SageMaker's ``AlgorithmError: <contents of /opt/ml/output/failure>``, else the log tail."""
    failure = job_root / "output" / "failure"
    if failure.is_file() and failure.read_text().strip():
        return f"AlgorithmError: {failure.read_text().strip()[:1024]}"
    tail = " | ".join(logs.strip().splitlines()[-3:])
    return f"AlgorithmError: exit code {returncode}: {tail}"[:1024]


class ProcessRuntime(Runtime):
    name = "process"
    max_parallel_jobs = 2  # jobs spend most of their time importing: two overlap well on 2 cores

    def __init__(
        self, endpoint_url: str, region: str, workdir: Path, package: str = PACKAGE_NAME, warm: bool = True
    ):
        self.endpoint_url = endpoint_url
        self.region = region
        self.workdir = Path(workdir).resolve()  # job folders are cwd and OPT_ML_ROOT of subprocesses
        self.package = package
        self.s3 = S3(endpoint_url, region)
        self._servers: dict[int, subprocess.Popen[bytes]] = {}
        self._jobs: dict[int, Any] = {}
        # Jobs fork from an interpreter that imported numpy, scipy and scikit-learn once: on 2 busy
        # cores those imports take 3-6 s, more than the jobs themselves. Same code, same argv.
        self.warm = warm
        if warm:
            forkserver.warm_up(forkserver.preload_for(package))  # overlaps the deploy

    # -- helpers ---------------------------------------------------------------------------------
    def _as_role(self, request: dict[str, Any]) -> tuple[S3, dict[str, str]]:
        """The S3 transfers and the job's own AWS calls signed as the job's execution role."""
        role = request.get("RoleArn")
        if not role:
            return self.s3, {}
        key = principals.key_for(role)
        return S3(self.endpoint_url, self.region, key), {"AWS_ACCESS_KEY_ID": key}

    def _env(self, job_root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, **(extra or {}), **aws_environment(self.endpoint_url, self.region)}
        env["OPT_ML_ROOT"] = str(job_root)
        env["PYTHONUNBUFFERED"] = "1"
        # The package's own src/ must win over whatever the job folder holds.
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        return env

    def _command(self, argv: list[str]) -> list[str]:
        """Map a container command (``train``, ``validate ...``, ``python -m x``) to this interpreter."""
        if not argv:
            raise ValueError("empty container command")
        head, rest = Path(argv[0]).name, argv[1:]
        if head in ENTRYPOINT_MODULES:
            return [sys.executable, "-m", f"{self.package}.{ENTRYPOINT_MODULES[head]}", *rest]
        if head.startswith("python"):
            return [sys.executable, *rest]
        raise ValueError(
            f"container command {argv[0]!r} is not one of {sorted(ENTRYPOINT_MODULES)} or python"
        )

    @staticmethod
    def _reroot(value: str, job_root: Path) -> str:
        if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
            return str(job_root) + value[len(CONTAINER_ROOT) :]
        return value

    def _job_root(self, kind: str, name: str) -> Path:
        root = self.workdir / kind / name
        if root.exists():
            shutil.rmtree(root)
        (root / "output").mkdir(parents=True)
        return root

    def _start(self, argv: list[str], job_root: Path, env: dict[str, str]) -> Any:
        """Start one job process, logging to job_root/logs.txt, in its own tracked process group
        (close() on Ctrl-C or SIGTERM stops a job still running)."""
        log_file = job_root / "logs.txt"
        log_file.touch()
        if self.warm and argv[1:2] == ["-m"]:
            process: Any = WarmJob(argv[2], argv[3:], env, job_root, log_file)
        else:
            with log_file.open("ab") as log:
                process = subprocess.Popen(
                    argv, env=env, cwd=job_root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        self._jobs[process.pid] = process
        return process

    def _run(self, argv: list[str], job_root: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
        code, logs = self._run_hosts([(argv, job_root, env)], timeout)[0]
        return code, logs

    def _run_hosts(
        self, jobs: list[tuple[list[str], Path, dict[str, str]]], timeout: float
    ) -> list[tuple[int, str]]:
        """Run one process per host and wait for all. The first host to fail stops the others (a
        collective would wait for it until its timeout), as SageMaker ends a job when a host fails."""
        processes = [self._start(argv, root, env) for argv, root, env in jobs]
        deadline = time.monotonic() + timeout
        try:
            while any(p.poll() is None for p in processes):
                failed = any(p.poll() not in (None, 0) for p in processes)
                if failed or time.monotonic() > deadline:
                    for process, (_, root, _) in zip(processes, jobs, strict=True):
                        if process.poll() is None:
                            stop_process_group(process, grace=0)
                            if not failed:
                                with (root / "logs.txt").open("ab") as log:
                                    log.write(
                                        f"\nstopped: MaxRuntimeInSeconds={timeout:.0f} exceeded\n".encode()
                                    )
                    break
                time.sleep(0.1)
        finally:
            for process in processes:
                self._jobs.pop(process.pid, None)
        return [
            (
                process.poll() if process.poll() is not None else -9,
                (root / "logs.txt").read_text(errors="replace"),
            )
            for process, (_, root, _) in zip(processes, jobs, strict=True)
        ]

    # -- training ----------------------------------------------------------------------------------
    def _training_host(
        self, request: dict[str, Any], root: Path, host: str, hosts: list[str], s3: S3
    ) -> None:
        """One host's /opt/ml: its config files (its own current_host) and every channel's data."""
        config = root / "input" / "config"
        config.mkdir(parents=True)
        channels = request.get("InputDataConfig") or []
        (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters") or {}))
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    c["ChannelName"]: {
                        "ContentType": c.get("ContentType", "text/csv"),
                        "TrainingInputMode": request["AlgorithmSpecification"].get(
                            "TrainingInputMode", "File"
                        ),
                        "S3DistributionType": c["DataSource"]["S3DataSource"].get(
                            "S3DataDistributionType", "FullyReplicated"
                        ),
                        "RecordWrapperType": "None",
                    }
                    for c in channels
                }
            )
        )
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": host, "hosts": hosts, "network_interface_name": "eth0"})
        )
        for channel in channels:  # FullyReplicated: every host gets every object, as on SageMaker
            s3.download(
                channel["DataSource"]["S3DataSource"]["S3Uri"],
                root / "input" / "data" / channel["ChannelName"],
            )
        (root / "model").mkdir()

    def run_training(self, request: dict[str, Any]) -> JobResult:
        """One process per host (InstanceCount), each with its own /opt/ml; the leader's (algo-1)
        model and output are uploaded. Hosts reach each other on 127.0.0.1 at the ports of
        ``EMULATED_HOST_ADDRESSES`` (see <package>/distributed.py)."""
        name = request["TrainingJobName"]
        s3, role_env = self._as_role(request)
        root = self._job_root("training", name)
        count = int(request.get("ResourceConfig", {}).get("InstanceCount", 1))
        hosts = [f"algo-{i + 1}" for i in range(count)]
        roots = [root] if count == 1 else [root / host for host in hosts]
        try:
            for host, host_root in zip(hosts, roots, strict=True):
                (host_root / "output").mkdir(parents=True, exist_ok=True)
                self._training_host(request, host_root, host, hosts, s3)
        except (FileNotFoundError, ValueError) as error:
            return JobResult(False, f"ClientError: channel data: {error}")
        command = self._command(request["AlgorithmSpecification"].get("ContainerEntrypoint") or ["train"])
        command += request["AlgorithmSpecification"].get("ContainerArguments") or []
        timeout = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
        extra = {**(request.get("Environment") or {})}
        if count > 1:
            extra[HOSTS_ENV] = json.dumps({host: f"127.0.0.1:{free_port()}" for host in hosts})
            # The hosts share this machine's cores: with every host's OpenMP threads on all of them,
            # a 2-host LightGBM fit of 1,000 rows took 126 s, with one thread each 44 s (2 busy cores).
            extra["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
        results = self._run_hosts(
            [(command, host_root, {**self._env(host_root, extra), **role_env}) for host_root in roots],
            timeout,
        )
        # The leader's log last: metric definitions take the last value of each metric.
        logs = "".join(
            f"==> {hosts[i]} <==\n{results[i][1]}" if count > 1 else results[i][1]
            for i in [*range(1, count), 0]
        )
        leader = root if count == 1 else roots[0]
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output"
        data_dir = leader / "output" / "data"
        if data_dir.is_dir() and any(data_dir.iterdir()):
            s3.upload_file(make_tarball(data_dir, root / "output.tar.gz"), f"{output}/output.tar.gz")
        failed = [
            (code, host_root, text) for (code, text), host_root in zip(results, roots, strict=True) if code
        ]
        if failed:
            code, host_root, text = _first_failure(failed)
            return JobResult(False, failure_reason(host_root, text, code), logs)
        artifact = f"{output}/model.tar.gz"
        s3.upload_file(make_tarball(leader / "model", root / "model.tar.gz"), artifact)
        return JobResult(True, logs=logs, model_artifacts=artifact)

    # -- processing --------------------------------------------------------------------------------
    def run_processing(self, request: dict[str, Any]) -> JobResult:
        name = request["ProcessingJobName"]
        s3, role_env = self._as_role(request)
        root = self._job_root("processing", name)
        try:
            for item in request.get("ProcessingInputs") or []:
                source = item["S3Input"]
                s3.download(source["S3Uri"], Path(self._reroot(source["LocalPath"], root)))
        except (FileNotFoundError, ValueError) as error:
            return JobResult(False, f"ClientError: processing input: {error}")
        outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        for item in outputs:
            Path(self._reroot(item["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
        app = request["AppSpecification"]
        argv = [*(app.get("ContainerEntrypoint") or []), *(app.get("ContainerArguments") or [])]
        command = self._command([self._reroot(a, root) for a in argv])
        timeout = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
        env = {**self._env(root, request.get("Environment")), **role_env}
        code, logs = self._run(command, root, env, timeout)
        # SageMaker uploads EndOfJob outputs whether the job succeeded or not.
        for item in outputs:
            folder = Path(self._reroot(item["S3Output"]["LocalPath"], root))
            s3.upload_tree(folder, item["S3Output"]["S3Uri"])
        if code != 0:
            return JobResult(False, failure_reason(root, logs, code), logs)
        return JobResult(True, logs=logs)

    # -- endpoints ---------------------------------------------------------------------------------
    def start_endpoint(self, name: str, container: dict[str, Any], instance_count: int = 1) -> Endpoint:
        root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._ensure(self.workdir / "endpoints")))
        model_url = container["ModelDataUrl"]
        archive = root / "model.tar.gz"
        bucket, key = split_s3_uri(model_url)
        self.s3.client.download_file(bucket, key, str(archive))
        extract_tarball(archive, root / "model")
        port = free_port()
        # SAGEMAKER_BIND_TO_PORT is how SageMaker tells a container its port when it cannot use 8080.
        extra = {
            **(container.get("Environment") or {}),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_BIND_HOST": "127.0.0.1",
        }
        command = [*self._command(["serve"]), "--no-nginx", "--host", "127.0.0.1", "--port", str(port)]
        log_file = root / "logs.txt"
        log_file.touch()
        if self.warm:  # forked from the warm interpreter, like the jobs: no cold import of the stack
            process: Any = WarmJob(command[2], command[3:], self._env(root, extra), root, log_file)
        else:
            with log_file.open("wb") as log:
                process = subprocess.Popen(
                    command,
                    env=self._env(root, extra),
                    cwd=root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stop_endpoint ends its workers too
                )
        endpoint = Endpoint(name, f"http://127.0.0.1:{port}", model_url, {"process": process, "root": root})
        self._servers[process.pid] = process
        try:
            wait_healthy(endpoint.url, process, HEALTH_TIMEOUT)
        except RuntimeError as error:
            logs = self.endpoint_logs(endpoint)
            self.stop_endpoint(endpoint)
            raise RuntimeError(f"{error}; serving log tail: {log_tail(logs, 8)}") from None
        return endpoint

    def stop_endpoint(self, endpoint: Endpoint) -> None:
        process: subprocess.Popen[bytes] = endpoint.details["process"]
        stop_process_group(process)
        self._servers.pop(process.pid, None)
        shutil.rmtree(endpoint.details["root"], ignore_errors=True)

    def endpoint_logs(self, endpoint: Endpoint) -> str:
        log = Path(endpoint.details["root"]) / "logs.txt"
        return log.read_text(errors="replace") if log.is_file() else ""

    def close(self) -> None:
        for process in [*self._jobs.values(), *self._servers.values()]:
            stop_process_group(process)
        self._servers.clear()

    @staticmethod
    def _ensure(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path


def _first_failure(failed: list[tuple[int, Path, str]]) -> tuple[int, Path, str]:
    """The host that failed on its own: hosts the runtime stopped after it were killed by a signal."""
    return next((f for f in failed if f[0] > 0), failed[0])


def _run_module(module: str, args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become ``python -m module args`` with this environment and log file."""
    os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(fd, stream.fileno())
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)  # SystemExit(code) sets the exit code


class WarmJob:
    """A job forked from the fork server, with the little of Popen that ``_run`` and ``close`` use."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], cwd: Path, log: Path):
        self.process = forkserver.start(_run_module, (module, args, env, str(cwd), str(log)))
        self.pid: int = self.process.pid  # type: ignore[assignment]

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(self.process.name, timeout or 0)
        return self.process.exitcode


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Poll GET /ping until 200, as SageMaker's health check does; fail fast if the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"serving process exited with code {process.returncode} before /ping answered")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}/ping did not answer 200 within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        process.wait(grace or None)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
