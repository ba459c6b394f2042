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

    def __post_init__(self) -> None:
        # Computed once per model: transform runs per request.
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.terms)})
        object.__setattr__(self, "_idf", list(self.idf))

    def transform(self, texts: Sequence[object]) -> np.ndarray:
        """(rows, len(terms)) sublinear TF-IDF of unit length; a missing or wordless cell is zeros.

        Only the words found are computed (a 20-word text touches 20 of 1,000 columns): a dense
        pass over the whole matrix made 100 rows cost 10 ms instead of under 1."""
        index, idf = self._index, self._idf  # type: ignore[attr-defined]
        out = np.zeros((len(texts), len(self.terms)), dtype=np.float64)
        for row, cell in enumerate(texts):
            text = _text(cell)
            if text is None:
                continue
            found: dict[int, int] = {}
            for word in words(text):
                column = index.get(word)
                if column is not None:
                    found[column] = found.get(column, 0) + 1
            if not found:
                continue
            values = {column: (1.0 + math.log(count)) * idf[column] for column, count in found.items()}
            norm = math.sqrt(sum(v * v for v in values.values()))
            for column, value in values.items():
                out[row, column] = value / norm
        return out
