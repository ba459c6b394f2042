"""The ``serve`` entrypoint: nginx on the public port in front of gunicorn on a unix socket.

    python -m <package>.steps.serve [--host H] [--port P] [--workers N] [--timeout S]
    python -m <package>.steps.serve --no-nginx [--host 127.0.0.1] [--port P]   (process runtime)

Settings come from SageMaker's environment: SAGEMAKER_BIND_TO_PORT (default 8080),
MODEL_SERVER_WORKERS (default: CPU count), MODEL_SERVER_TIMEOUT (default 60 s).
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html

The image always serves through nginx: nginx reads whole requests (headers and body) before it
hands them to a gunicorn worker, so a slow or lying client holds an nginx connection, never a
worker. nginx also answers /ping itself, from the ready file a worker writes after its warm-up
prediction, and answers 429 beyond a bounded number of requests in flight (container/nginx.conf,
issue 22). Without nginx the launcher refuses to start, unless ``--no-nginx`` asks for the process
runtime's server: waitress on loopback only, which also buffers whole requests in its event loop
before a thread sees them and drops a connection idle for ``--client-timeout`` seconds
(issue 15: two slow-header clients blocked every bare gunicorn sync worker).

gunicorn runs with --preload: the master imports the app and loads the model once, and the
workers share it copy-on-write. Anything that may start a library thread pool runs after fork:
the ``post_worker_init`` hook below (this module is also gunicorn's config module) calls the app's
``warm_up()`` in each worker before that worker accepts a connection, so /ping cannot answer
before the model has made one prediction. BLAS/OpenMP pools are pinned to one thread per worker.

Before either server starts, the launcher checks the model folder against the gate's record
(issue 22): with ``MODEL_FILES_SHA256`` set (CreateModel sets it from the execution's
decision.json), the manifest digest of every file in /opt/ml/model (``model_digest``) must equal
it, or the launcher exits 2 with one line naming both digests and the files it found, before
gunicorn or waitress imports the app, so before any loader reads a byte and before any worker
forks. It runs here, in the one launcher process per container, not in ``create_app``: there it
would run after nginx had started and the model stack had been imported, once per app built (tests
and benchmarks build many), and a refusal would reach the log as a traceback from gunicorn's
start-up rather than one line. Without the variable (``make serve``, tests) it serves as before
and logs one line saying the files are not verified.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import model_digest, paths
from ..serving import MAX_PAYLOAD_BYTES

APP = f"{__package__.rpartition('.')[0]}.serving.app:create_app()"
NGINX_CONF = Path(os.environ.get("NGINX_CONF_TEMPLATE", "/opt/program/nginx.conf"))
# One prediction at a time per worker process: library thread pools would only oversubscribe the
# CPUs the workers already share (and a pool started before fork would not survive it).
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Exit status gunicorn's arbiter reads as "the worker cannot boot": it stops instead of respawning.
WORKER_BOOT_ERROR = 3
# Where a worker marks "my warm-up prediction succeeded"; nginx's /ping answers 200 once it exists.
READY_FILE_ENV = "SERVE_READY_FILE"
# Requests nginx lets in flight per worker before it answers 429 (container/nginx.conf): any, and
# those with a body of 1,000,000 bytes or more. With one request at a time per worker, a heavy one
# waits behind at most one other heavy one per worker; the total leaves room for concurrent clients
# of small requests (benchmarks/load.py runs 32 against 2 workers) without letting them pile up.
IN_FLIGHT_PER_WORKER = 16
HEAVY_IN_FLIGHT_PER_WORKER = 2
# Exit status of a worker whose request ran past the timeout: gunicorn starts a new one.
WORKER_HUNG = 1
# The files a refusal lists by name and digest; a model folder has a handful.
LISTED_FILES = 20


class LaunchError(Exception):
    """A configuration the launcher refuses, with a one-line reason."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="Serve the model on SageMaker's inference contract.")
    parser.add_argument(
        "--no-nginx",
        action="store_true",
        default=env.get("SERVE_NO_NGINX") == "1",
        help="process runtime only: waitress on loopback instead of nginx + gunicorn",
    )
    parser.add_argument("--host", default=None, help="nginx: 0.0.0.0; --no-nginx: 127.0.0.1 (loopback only)")
    parser.add_argument("--port", type=int, default=int(env.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument(
        "--workers", type=int, default=int(env.get("MODEL_SERVER_WORKERS") or os.cpu_count() or 1)
    )
    parser.add_argument("--timeout", type=int, default=int(env.get("MODEL_SERVER_TIMEOUT", "60")))
    parser.add_argument(
        "--client-timeout",
        type=int,
        default=10,
        help="--no-nginx: seconds a connection may send nothing before it is closed",
    )
    # The WSGI app gunicorn loads; benchmarks/ceiling swaps in a constant handler on the same stack.
    parser.add_argument("--app", default=APP, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gunicorn_command(bind: str, workers: int, timeout: int, app: str = APP) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        # This module is the config module too: it holds the post_worker_init hook.
        "--config", f"python:{__package__}.serve",
        "--preload",
        "--bind", bind,
        # gthread with one thread: one prediction at a time per process, as with sync workers, but
        # the worker keeps nginx's upstream connections alive (sync closes after every response).
        # nginx has already read each whole request, so no slow client ever reaches a worker.
        # Measured on this stack (docs/decisions.md): the ceiling gains 15-60% in rps.
        "--worker-class", "gthread",
        "--threads", "1",
        "--workers", str(workers),
        # nginx keeps at most `keepalive` idle connections per nginx worker; idle ones close here.
        "--keep-alive", "75",
        "--timeout", str(timeout),
        "--graceful-timeout", "10",
        # The heartbeat file on tmpfs: a container's overlay file system can stall it.
        "--worker-tmp-dir", "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir(),
        "--error-logfile", "-",
        "--log-level", "info",
        app,
    ]  # fmt: skip


# gunicorn reads this module's names that are settings (--config python:...) and skips the others.
# gunicorn >= 27 opens a control socket under $HOME by default; nothing here uses it. A setting here
# rather than --no-control-socket: older gunicorns ignore it, and the launcher need not import
# gunicorn to find out which it has (~55 ms of start-up in the image).
control_socket_disable = True


def post_worker_init(worker) -> None:  # gunicorn hook: the name is gunicorn's
    """In each worker, after fork and before it accepts: the app's warm-up prediction, then the
    ready file nginx's /ping reads (when the launcher set one), then the request watchdog."""
    try:
        warm_up(worker.wsgi)
        ready = os.environ.get(READY_FILE_ENV)
        if ready:
            Path(ready).touch()
    except Exception as error:  # a model that cannot predict its own example row must not serve
        worker.log.exception("warm-up failed: %s", error)
        sys.exit(WORKER_BOOT_ERROR)
    worker.busy_since = None
    threading.Thread(target=watchdog, args=(worker, worker.cfg.timeout), name="watchdog", daemon=True).start()


def pre_request(worker, req) -> None:  # gunicorn hook
    worker.busy_since = time.monotonic()


def post_request(worker, req, environ, resp) -> None:  # gunicorn hook
    worker.busy_since = None


def watchdog(worker, limit: float, every: float = 1.0) -> None:
    """Stop the worker when one request has run for more than ``limit`` seconds.

    nginx answers /ping without the workers, so a worker stuck in a request would never show in
    health; and gthread's main thread keeps gunicorn's heartbeat going while the request thread is
    stuck, so gunicorn's --timeout never stops it (it did for sync workers). nginx has answered that
    client with a 504 at the same timeout; gunicorn replaces the worker, which warms up again. Code
    that holds the GIL stops this thread and the heartbeat alike, and then gunicorn stops the worker.
    """
    while True:
        time.sleep(every)
        started = worker.busy_since
        if started is not None and time.monotonic() - started > limit:
            worker.log.critical("a request has run for more than %s s: stopping this worker", limit)
            os._exit(WORKER_HUNG)


def warm_up(app: object) -> None:
    """Call the app's ``warm_up()`` when it has one (app.py defines it; the ceiling has none)."""
    hook = getattr(app, "warm_up", None)
    if callable(hook):
        hook()


def ready_file(run_dir: Path) -> Path:
    return run_dir / "ready"


def render_nginx(template: Path, run_dir: Path, port: int, socket: Path, timeout: int, workers: int) -> Path:
    """nginx.conf for this run, written into ``run_dir``: the template's __NAME__ placeholders filled."""
    values = {
        "__RUN_DIR__": str(run_dir),
        "__SOCKET__": str(socket),
        "__PORT__": str(port),
        "__TIMEOUT__": str(timeout),
        "__MAX_BODY__": str(MAX_PAYLOAD_BYTES),
        "__READY_FILE__": str(ready_file(run_dir)),
        "__MAX_IN_FLIGHT__": str(IN_FLIGHT_PER_WORKER * workers),
        "__MAX_HEAVY_IN_FLIGHT__": str(HEAVY_IN_FLIGHT_PER_WORKER * workers),
    }
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    config = run_dir / "nginx.conf"
    config.write_text(text)
    return config


def serve_with_nginx(args: argparse.Namespace, nginx: str) -> int:
    """Start gunicorn and nginx, stop both when either exits or SageMaker sends SIGTERM."""
    run_dir = Path(tempfile.mkdtemp(prefix="serve-"))
    socket = run_dir / "gunicorn.sock"
    config = render_nginx(NGINX_CONF, run_dir, args.port, socket, args.timeout, args.workers)
    env = {**SINGLE_THREADED, **os.environ, "MODEL_SERVER_WORKERS": str(args.workers)}
    env[READY_FILE_ENV] = str(ready_file(run_dir))
    command = gunicorn_command(f"unix:{socket}", args.workers, args.timeout, args.app)
    children = [subprocess.Popen(command, env=env)]
    children.append(subprocess.Popen([nginx, "-c", str(config), "-p", str(run_dir), "-e", "stderr"]))

    def stop(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGQUIT if child is children[1] else signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.05)
    stop()
    codes = [child.wait() for child in children]
    shutil.rmtree(run_dir, ignore_errors=True)
    return next((code for code in codes if code), 0)


def serve_without_nginx(args: argparse.Namespace) -> int:
    """The process runtime's server: waitress, loopback only, whole requests before any thread."""
    import waitress

    from ..serving.app import create_app

    os.environ["MODEL_SERVER_WORKERS"] = str(args.workers)
    app = create_app()
    warm_up(app)
    server = waitress.create_server(
        app,
        host=args.host,
        port=args.port,
        threads=args.workers,
        # Idle connections (a stalled header or a body shorter than its Content-Length) are closed
        # after this many seconds; until then they hold a socket in the event loop, not a thread.
        channel_timeout=args.client_timeout,
        cleanup_interval=max(1, args.client_timeout // 2),
        # The app refuses bodies over SageMaker's limit itself; this bounds what waitress buffers.
        max_request_body_size=MAX_PAYLOAD_BYTES + 1,
        ident=None,
    )

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)  # waitress's run() ends its loop and its threads on SystemExit

    signal.signal(signal.SIGTERM, stop)  # what SageMaker (and the process runtime) send to stop
    server.run()
    return 0


def check(args: argparse.Namespace) -> str | None:
    """The nginx binary to use, or None for the no-nginx server; LaunchError for what is refused."""
    if args.no_nginx:
        args.host = args.host or "127.0.0.1"
        if not is_loopback(args.host):
            raise LaunchError(
                f"--no-nginx serves on loopback only (got --host {args.host}); "
                "anything reachable from outside must go through nginx"
            )
        return None
    args.host = args.host or "0.0.0.0"
    nginx = shutil.which("nginx")
    if nginx is None or not NGINX_CONF.is_file():
        raise LaunchError(
            f"nginx or its config template ({NGINX_CONF}) is missing: the image always serves through "
            "nginx; for a local process use --no-nginx (loopback only)"
        )
    return nginx


def _listing(files: dict[str, str]) -> str:
    shown = [f"{path} {sha}" for path, sha in list(files.items())[:LISTED_FILES]]
    more = len(files) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "") if files else "no files"


def verify_model_files(folder: Path, expected: str | None) -> str:
    """The line to log once ``folder`` matches the gate's manifest digest ``expected`` (or when
    there is none to match); LaunchError naming both digests and the files found otherwise."""
    if expected is None:
        return (
            f"the model files in {folder} are not verified against a gate record "
            f"({model_digest.MANIFEST_ENV} is not set)"
        )
    if not model_digest.SHA256_HEX.match(expected):
        raise LaunchError(
            f"{model_digest.MANIFEST_ENV}={expected[:80]!r} is not 64 lowercase hex characters: "
            "refusing to serve files nothing vouches for"
        )
    try:
        files, actual = model_digest.folder_manifest(folder)
    except model_digest.ModelDigestError as error:
        raise LaunchError(f"{error}: refusing to serve") from None
    if actual != expected:
        raise LaunchError(
            f"the model files in {folder} have manifest sha256 {actual}, not {expected} "
            f"({model_digest.MANIFEST_ENV}, what the gate scored): refusing to serve; "
            f"found {_listing(files)}"
        )
    return f"the {len(files)} model files in {folder} match {model_digest.MANIFEST_ENV} {expected}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        nginx = check(args)
        # Before any server imports the app: no loader has read a byte yet (issue 22).
        print(
            f"serve: {verify_model_files(paths.model_dir(), os.environ.get(model_digest.MANIFEST_ENV))}",
            file=sys.stderr,
        )
    except LaunchError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    if nginx is None:
        print(
            f"serve: waitress on {args.host}:{args.port} ({args.workers} threads, no nginx, "
            f"client timeout {args.client_timeout}s)",
            file=sys.stderr,
        )
        return serve_without_nginx(args)
    print(
        f"serve: nginx :{args.port} -> gunicorn ({args.workers} workers, timeout {args.timeout}s)",
        file=sys.stderr,
    )
    return serve_with_nginx(args, nginx)


if __name__ == "__main__":
    sys.exit(main())
