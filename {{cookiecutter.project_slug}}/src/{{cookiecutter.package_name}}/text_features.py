"""Free text as numbers: TF-IDF over the most frequent words, the same in training, evaluate and
serving (issue 23).

A text column becomes one float column per vocabulary word, computed as scikit-learn's
``TfidfVectorizer(sublinear_tf=True, max_features=MAX_TERMS)`` does: words of two or more letters
or digits, lower-cased; ``(1 + ln count) * idf`` with the smoothed IDF ``ln((1 + n) / (1 + df)) + 1``;
each row scaled to unit length. The vocabulary is the ``MAX_TERMS`` most frequent words over all rows
(ties by word), as scikit-learn's ``max_features``, so the model stores a capped word list and its IDF, never the training texts (a list of
70,000 texts made metadata.json too large to load back). Why a capped vocabulary and not hashing:
docs/decisions.md ("Free text").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_TERMS = 1000
MAX_TERM_CHARS = 64  # longer "words" (hashes, base64) carry no meaning and bloat the vocabulary
WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if len(w) <= MAX_TERM_CHARS]


def _text(cell: object) -> str | None:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    return str(cell)


@dataclass(frozen=True)
class Vocabulary:
    terms: tuple[str, ...]
    idf: tuple[float, ...]

    @classmethod
    def fit(cls, texts: Sequence[object], max_terms: int = MAX_TERMS) -> Vocabulary:
        total: Counter[str] = Counter()
        df: Counter[str] = Counter()
        for cell in texts:
            text = _text(cell)
            if text is not None:
                found = words(text)
                total.update(found)
                df.update(set(found))
        top = sorted(total, key=lambda term: (-total[term], term))[:max_terms]
        n = len(texts)
        return cls(
            terms=tuple(top),
            idf=tuple(math.log((1.0 + n) / (1.0 + df[t])) + 1.0 for t in top),
        )

    def to_json(self) -> dict[str, list]:
        return {"terms": list(self.terms), "idf": list(self.idf)}

    @classmethod
    def from_json(cls, record: dict[str, list]) -> Vocabulary:
        return cls(tuple(record["terms"]), tuple(float(v) for v in record["idf"]))

    def transform(self, texts: Sequence[object]) -> np.ndarray:
        """(rows, len(terms)) sublinear TF-IDF of unit length; a missing or wordless cell is zeros."""
        index = getattr(self, "_index", None)
        if index is None:
            index = {t: i for i, t in enumerate(self.terms)}
            object.__setattr__(self, "_index", index)
        out = np.zeros((len(texts), len(self.terms)), dtype=np.float64)
        for row, cell in enumerate(texts):
            text = _text(cell)
            if text is None:
                continue
            found = Counter(i for i in (index.get(w) for w in words(text)) if i is not None)
            for column, count in found.items():
                out[row, column] = 1.0 + math.log(count)
        out *= np.asarray(self.idf, dtype=np.float64)
        norms = np.sqrt((out * out).sum(axis=1, keepdims=True))
        np.divide(out, norms, out=out, where=norms > 0)
        return out
