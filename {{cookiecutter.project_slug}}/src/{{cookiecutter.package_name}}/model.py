"""The algorithm behind a small interface: fit, predict, save, load.

# ---- REPLACE THIS WITH YOUR OWN MODEL ----
Swap the estimator in ``_build`` and the ``Hyperparameters`` fields; training, serving, drift and
the gate only use the methods of ``Model``. Models are stored with skops, not pickle: loading
refuses any type outside scikit-learn, numpy and scipy, so a tampered artifact cannot run code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


@dataclass(frozen=True)
class Hyperparameters:
    """Typed hyperparameters with defaults; ``hyperparameters.parse`` fills them from strings."""

    C: float = 1.0  # inverse regularisation strength, > 0
    max_iter: int = 1000  # solver iterations, 10..100000
    class_weight: str = "none"  # "none" or "balanced"


# Valid ranges, checked by hyperparameters.parse: name -> (min, max) or allowed values.
HYPERPARAMETER_RULES: dict[str, tuple[float, float] | tuple[str, ...]] = {
    "C": (1e-6, 1e6),
    "max_iter": (10, 100_000),
    "class_weight": ("none", "balanced"),
}


class Model:
    """A binary classifier over a fixed, ordered list of numeric features."""

    def __init__(self, feature_names: list[str], hyperparameters: Hyperparameters | None = None):
        self.feature_names = list(feature_names)
        self.hyperparameters = hyperparameters or Hyperparameters()
        self.estimator: Pipeline | None = None
        self.classes: list[Any] = []
        self.metrics: dict[str, float] = {}

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _build(self) -> Pipeline:
        hp = self.hyperparameters
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                (
                    "classify",
                    LogisticRegression(
                        C=hp.C,
                        max_iter=hp.max_iter,
                        class_weight=None if hp.class_weight == "none" else hp.class_weight,
                    ),
                ),
            ]
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> Model:
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)  # CSV labels arrive as floats; keep 0/1 classes integral
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(
                f"the label must have exactly two classes, found {len(classes)}: {classes[:5].tolist()}"
            )
        self.estimator = self._build().fit(X, y)
        self.classes = [c.item() if hasattr(c, "item") else c for c in classes]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Score of the positive (second) class for each row."""
        if self.estimator is None:
            raise RuntimeError("model is not fitted")
        return self.estimator.predict_proba(X)[:, 1]

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        scores = self.predict_proba(X)
        return np.where(scores >= threshold, self.classes[1], self.classes[0])

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        sio.dump(self.estimator, model_dir / MODEL_FILE)
        metadata = {
            "feature_names": self.feature_names,
            "classes": self.classes,
            "hyperparameters": asdict(self.hyperparameters),
            "metrics": self.metrics,
        }
        (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))

    @classmethod
    def load(cls, model_dir: Path) -> Model:
        model_dir = Path(model_dir)
        metadata = json.loads((model_dir / METADATA_FILE).read_text())
        known = {f.name for f in fields(Hyperparameters)}
        hp = Hyperparameters(**{k: v for k, v in metadata["hyperparameters"].items() if k in known})
        model = cls(metadata["feature_names"], hp)
        path = model_dir / MODEL_FILE
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise ValueError(f"{path}: refusing to load untrusted types {refused}")
        model.estimator = sio.load(path, trusted=untrusted)
        model.classes = metadata["classes"]
        model.metrics = metadata.get("metrics", {})
        return model
