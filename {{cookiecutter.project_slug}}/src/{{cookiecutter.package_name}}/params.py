"""The hyperparameter spec type that ``model.py`` declares its parameters with.

Imported by ``model.py``; imports nothing of the project, so the user's file is in no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["float", "int", "categorical"]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default, range and search scale.

    ``categorical`` with empty ``values`` takes any text (e.g. a class label). ``tune=False`` keeps
    a parameter out of the tuning job's search space (it is still settable per run).
    """

    name: str
    kind: Kind
    default: Any
    low: float | None = None
    high: float | None = None
    scale: Literal["linear", "log"] = "linear"
    values: tuple[str, ...] = ()
    tune: bool = True
    help: str = ""
