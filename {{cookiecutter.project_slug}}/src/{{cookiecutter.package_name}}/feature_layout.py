"""Where each feature lands in the estimator's float64 matrix (issue 23).

Numeric and categorical features come first, one column each, in the feature order; then each text
feature's TF-IDF block, one column per vocabulary word (``text_features``). ``categorical`` holds
the categorical columns' indices in that matrix: what ``model.build_estimator`` and the booster file
checks (``model_files.Expected``) see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Layout:
    plain: tuple[str, ...]  # the numeric and categorical features, in order
    categorical: tuple[int, ...]  # their columns in the matrix
    text: dict[str, tuple[int, int]]  # text feature -> its block's (start, stop)
    width: int

    @classmethod
    def of(cls, names: Sequence[str], kinds: Sequence[str], text_sizes: Mapping[str, int]) -> Layout:
        plain_kinds = [(n, k) for n, k in zip(names, kinds, strict=True) if k != "text"]
        plain = tuple(n for n, _ in plain_kinds)
        categorical = tuple(i for i, (_, k) in enumerate(plain_kinds) if k == "categorical")
        text, start = {}, len(plain)
        for name, kind in zip(names, kinds, strict=True):
            if kind == "text":
                text[name] = (start, start + text_sizes[name])
                start += text_sizes[name]
        return cls(plain, categorical, text, start)

    @classmethod
    def of_metadata(cls, metadata: Mapping[str, Any]) -> Layout:
        """From metadata already checked by ``predictor.read_metadata``."""
        sizes = {name: len(entry["terms"]) for name, entry in metadata.get("text", {}).items()}
        return cls.of(metadata["feature_names"], metadata["feature_kinds"], sizes)
