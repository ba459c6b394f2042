"""The moto server the emulator runs: its lifecycle, the environment it needs, and its clients.

``MotoServer`` starts moto in this process (``ThreadedMotoServer`` on a free port) or uses the
server at ``MOTO_ENDPOINT_URL``, installs the emulator's corrections of moto (``integrations``,
``jsonata``, ``map_state``, ``shapes``) and turns on moto's ASL interpreter. ``control_plane.ControlPlane`` adds the stack.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from typing import Any, Self

import boto3
import requests
from botocore.config import Config

from {{ cookiecutter.package_name }} import settings

from . import integrations, jsonata, map_state, patches, shapes

LOG = logging.getLogger(__name__)
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class ControlPlaneError(RuntimeError):
    """The offline control plane cannot do what was asked; the message says why."""


class MotoServer:
    # moto keeps its state in module globals: two in-process servers would share (and reset) it.
    _active: MotoServer | None = None

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        region: str = settings.AWS_REGION,
        endpoint_url: str | None = None,
    ) -> None:
        """``host``: where an in-process server binds. 127.0.0.1 serves host processes only;
        containers (SageMaker local mode) need "0.0.0.0" and ``container_endpoint_url``. moto's own
        clients always call ``localhost:$MOTO_PORT``, so binding only the bridge address would
        break them."""
        self.host = host
        self.region = region
        self._external_url = endpoint_url or os.environ.get("MOTO_ENDPOINT_URL") or None
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.port: int | None = None
        # One boto3 session for this control plane (sessions are not thread-safe: creation is
        # locked) and one client per service: creating a client reads its service model, which
        # costs 5-150 ms, and the emulator asks for a client at every step.
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Self:
        if self.port is not None:
            return self
        if self._external_url:
            parsed = urllib.parse.urlsplit(self._external_url)
            if not parsed.port:
                raise ControlPlaneError(f"MOTO_ENDPOINT_URL={self._external_url!r} has no port")
            self.port = parsed.port
            LOG.info(
                "using the moto server at %s (hooks must be installed in that process)", self._external_url
            )
        else:
            from moto.server import ThreadedMotoServer

            other = MotoServer._active
            if other is not None:
                raise ControlPlaneError(
                    f"another {type(other).__name__} (port {other.port}) runs in this process and moto's state is "
                    "per process: reuse that instance or stop it first"
                )
            # Port 0: the OS picks a free port at bind time (no probe-then-bind race).
            self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._server.start()
            MotoServer._active = self
            self.port = self._server.get_host_and_port()[1]
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
        try:
            # moto's ASL interpreter and Lambda hook reach the server through MOTO_PORT. Dummy
            # credentials: the deploy CLI's clients use the default chain, which must never find real ones.
            self._set_env("MOTO_PORT", str(self.port))
            for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
                self._set_env(name, value)
            self._set_env("AWS_EC2_METADATA_DISABLED", "true")
            self._set_env("AWS_SESSION_TOKEN", None)
            for component in patch_components():
                patches.install(component)
            self.configure(execute_state_machine=True)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the in-process server (frees the port), reset its state, restore the environment."""
        if self.port is None:
            return
        if self._server is not None:
            try:
                self.configure(execute_state_machine=False)
                requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=30)
            finally:
                self._server.stop()
                self._server = None
                MotoServer._active = None
                patches.uninstall_all()  # moto as it was: the next ControlPlane installs afresh
        with self._clients_lock:
            self._clients.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, name: str, value: str | None) -> None:
        """Set (or with None, remove) a variable until stop() restores it."""
        self._saved_env.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

    def configure(self, **stepfunctions: bool) -> dict[str, Any]:
        """Set moto's Step Functions options, e.g. ``execute_state_machine=True``."""
        response = requests.post(
            f"{self.endpoint_url}/moto-api/config", json={"stepfunctions": stepfunctions}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    # -- addresses and clients ------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise ControlPlaneError(
                "the control plane is not started: call start() or use it as a context manager"
            )
        if self._external_url:
            return self._external_url.rstrip("/")
        return f"http://127.0.0.1:{self.port}"

    @property
    def container_endpoint_url(self) -> str:
        """The URL a container on the default Docker bridge uses to reach this server."""
        if self._external_url or self.host not in ("0.0.0.0", docker_host_address()):
            raise ControlPlaneError(
                f"moto listens on {self.host}, which containers cannot reach: start ControlPlane(host='0.0.0.0')"
            )
        return f"http://{docker_host_address()}:{self.port}"

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client of the moto server: the same one per service, a new one for a given ``config``."""
        endpoint_url = self.endpoint_url
        with self._clients_lock:
            client = None if config is not None else self._clients.get(service)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                client = self._session.client(
                    service,
                    endpoint_url=endpoint_url,
                    region_name=self.region,
                    config=config or Config(retries={"max_attempts": 2}),
                    **DUMMY_CREDENTIALS,
                )
                if config is None:
                    self._clients[service] = client
        return client


def patch_components() -> list[Any]:
    """Every module that patches moto, in install order (each has install() and uninstall())."""
    return [integrations, jsonata, map_state, shapes]


def docker_host_address() -> str:
    """The host's address on Docker's default bridge (the gateway containers route through)."""
    import ipaddress

    import docker

    try:
        client = docker.from_env()
        ipam = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    except Exception as error:
        raise ControlPlaneError(f"cannot read Docker's bridge network: {error}") from error
    if ipam.get("Gateway"):
        return ipam["Gateway"]
    # Docker leaves Gateway out of IPAM when it is the default: the subnet's first address.
    return str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))
