"""The one way the emulator patches someone else's internals: reversible, registered, version-pinned.

Every change to a moto (or SageMaker SDK) symbol goes through a ``Patches`` object: ``replace``
records the original before setting the new value, ``undo`` puts every original back in reverse
order. A component that patches (``integrations``, ``wire``, ``jsonata``, the docker runtime) is
any object with ``install()`` and ``uninstall()``; ``install(component)`` runs it once per
process, checks its pins first, and ``uninstall_all()`` (ControlPlane.stop) reverses all of them,
so a test that stops the control plane leaves moto as it found it.

    PATCHES = Patches("integrations", pins={"moto": "5.2.5"})

    def install() -> None:
        PATCHES.replace(SomeMotoClass, "method", fixed_method)

    def uninstall() -> None:
        PATCHES.undo()

Private names are looked up with ``private(module, name)``, which fails with a message naming the
symbol and the pinned version when an upgrade moved it, not deep inside an execution.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import threading
from collections.abc import MutableMapping
from typing import Any, Protocol

LOG = logging.getLogger(__name__)
MOTO_PINS = {"moto": "5.2.5"}
_MISSING = object()


class MotoInternalsChanged(RuntimeError):
    """A private name the emulator patches is missing: the library was upgraded past its pin."""


class Component(Protocol):
    def install(self) -> None: ...
    def uninstall(self) -> None: ...


def private(module: str, name: str, pins: dict[str, str] = MOTO_PINS) -> Any:
    """``module.name`` or MotoInternalsChanged naming it and the version the emulator is written for."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        package = module.split(".")[0]
        raise MotoInternalsChanged(
            f"{module}.{name} is missing in {package} {_version(package)}: the offline emulator patches "
            f"its internals and is written for {package}=={pins.get(package, '?')} (pyproject.toml, extra 'local')"
        ) from error


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


class Patches:
    """Reversible replacements of attributes (and mapping items) of other libraries."""

    def __init__(self, name: str, pins: dict[str, str] | None = None) -> None:
        self.name = name
        self.pins = dict(MOTO_PINS if pins is None else pins)
        self._undo: list[tuple[Any, str, Any, bool]] = []  # owner, key, original, is_mapping

    def check_pins(self) -> None:
        """Warn (not fail) when an installed version differs from the pin: the tests of the patch say more."""
        for package, pinned in self.pins.items():
            installed = _version(package)
            if installed != pinned:
                LOG.warning(
                    "%s: %s %s installed, patches written for %s", self.name, package, installed, pinned
                )

    def replace(self, owner: Any, attribute: str, value: Any, *, must_exist: bool = True) -> Any:
        """Set ``owner.attribute = value``; return the value it had (inherited or own)."""
        effective = getattr(owner, attribute, _MISSING)
        if must_exist and effective is _MISSING:
            raise MotoInternalsChanged(f"{self.name}: {owner!r} has no attribute {attribute!r} to patch")
        # A class's inherited attribute is restored by deleting the override, not by copying it down.
        own = vars(owner).get(attribute, _MISSING) if hasattr(owner, "__dict__") else effective
        self._undo.append((owner, attribute, own, False))
        setattr(owner, attribute, value)
        return None if effective is _MISSING else effective

    def replace_item(self, mapping: MutableMapping[str, Any], key: str, value: Any) -> None:
        """``mapping[key] = value``, reversibly (e.g. moto's table of AWS service spellings)."""
        self._undo.append((mapping, key, mapping.get(key, _MISSING), True))
        mapping[key] = value

    def undo(self) -> None:
        while self._undo:
            owner, key, original, is_mapping = self._undo.pop()
            if is_mapping:
                if original is _MISSING:
                    owner.pop(key, None)
                else:
                    owner[key] = original
            elif original is _MISSING:
                if key in vars(owner):
                    delattr(owner, key)
            else:
                setattr(owner, key, original)

    @property
    def active(self) -> bool:
        return bool(self._undo)


_lock = threading.Lock()
_installed: list[Component] = []


def install(component: Component) -> None:
    """Install ``component`` once per process (thread-safe); undone by ``uninstall_all``."""
    with _lock:
        if any(c is component for c in _installed):
            return
        try:
            component.install()
        except BaseException:
            component.uninstall()  # a half-installed component leaves nothing behind
            raise
        _installed.append(component)


def uninstall_all() -> None:
    """Reverse every installed component, last installed first."""
    with _lock:
        while _installed:
            component = _installed.pop()
            try:
                component.uninstall()
            except Exception:  # one broken uninstall must not keep the others patched
                LOG.exception("uninstalling %r failed", component)


def installed() -> list[str]:
    return [getattr(c, "__name__", type(c).__name__) for c in _installed]
