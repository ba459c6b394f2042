"""The ``serve`` entrypoint: nginx on the public port in front of gunicorn on a unix socket.

    python -m <package>.serving.server [--no-nginx] [--host H] [--port P] [--workers N] [--timeout S]

Settings come from SageMaker's environment: SAGEMAKER_BIND_TO_PORT (default 8080),
MODEL_SERVER_WORKERS (default: CPU count), MODEL_SERVER_TIMEOUT (default 60 s). Without nginx on
PATH, or with --no-nginx / SERVE_NO_NGINX=1, gunicorn binds the TCP port itself (the process
runtime on a laptop). gunicorn --preload loads the model once, before it opens its socket, so
/ping cannot succeed before the model is in memory, and workers share it copy-on-write.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gunicorn import config as gunicorn_config

from . import MAX_PAYLOAD_BYTES

APP = f"{__package__}.app:create_app()"
NGINX_CONF = Path(os.environ.get("NGINX_CONF_TEMPLATE", "/opt/program/nginx.conf"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="Serve the model on SageMaker's inference contract.")
    parser.add_argument("--no-nginx", action="store_true", default=env.get("SERVE_NO_NGINX") == "1")
    # All interfaces by default, as a container must; the process runtime passes 127.0.0.1.
    parser.add_argument("--host", default=env.get("SAGEMAKER_BIND_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument(
        "--workers", type=int, default=int(env.get("MODEL_SERVER_WORKERS") or os.cpu_count() or 1)
    )
    parser.add_argument("--timeout", type=int, default=int(env.get("MODEL_SERVER_TIMEOUT", "60")))
    return parser.parse_args(argv)


def gunicorn_command(bind: str, workers: int, timeout: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--preload",
        "--bind", bind,
        "--workers", str(workers),
        "--timeout", str(timeout),
        "--graceful-timeout", "10",
        # The heartbeat file on tmpfs: a container's overlay file system can stall it.
        "--worker-tmp-dir", "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir(),
        "--error-logfile", "-",
        "--log-level", "info",
        # gunicorn >= 27 opens a control socket under $HOME by default; nothing here uses it.
        *(["--no-control-socket"] if hasattr(gunicorn_config, "ControlSocketDisable") else []),
        APP,
    ]  # fmt: skip


def render_nginx(template: Path, run_dir: Path, port: int, socket: Path, timeout: int) -> Path:
    values = {
        "__RUN_DIR__": str(run_dir),
        "__SOCKET__": str(socket),
        "__PORT__": str(port),
        "__TIMEOUT__": str(timeout),
        "__MAX_BODY__": str(MAX_PAYLOAD_BYTES),
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
    config = render_nginx(NGINX_CONF, run_dir, args.port, socket, args.timeout)
    env = {**os.environ, "MODEL_SERVER_WORKERS": str(args.workers)}
    children = [subprocess.Popen(gunicorn_command(f"unix:{socket}", args.workers, args.timeout), env=env)]
    children.append(subprocess.Popen([nginx, "-c", str(config), "-p", str(run_dir), "-e", "stderr"]))

    def stop(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGQUIT if child is children[1] else signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop()
    codes = [child.wait() for child in children]
    shutil.rmtree(run_dir, ignore_errors=True)
    return next((code for code in codes if code), 0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nginx = None if args.no_nginx else shutil.which("nginx")
    if nginx and NGINX_CONF.is_file():
        print(
            f"serve: nginx :{args.port} -> gunicorn ({args.workers} workers, timeout {args.timeout}s)",
            file=sys.stderr,
        )
        return serve_with_nginx(args, nginx)
    print(f"serve: gunicorn on {args.host}:{args.port} ({args.workers} workers, no nginx)", file=sys.stderr)
    os.environ["MODEL_SERVER_WORKERS"] = str(args.workers)
    command = gunicorn_command(f"{args.host}:{args.port}", args.workers, args.timeout)
    os.execv(command[0], command)  # gunicorn becomes this process and gets SageMaker's signals
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
