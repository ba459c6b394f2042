"""The all-numeric CSV fast path (codecs._numeric_csv) answers exactly as the general path: the same
matrix for every body it takes, and it declines (the general path then decides) everything else."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.serving import codecs
from {{ cookiecutter.package_name }}.serving.errors import BadRequest

WIDTH = 3
SCHEMA = codecs.Schema(tuple(f"f{i}" for i in range(WIDTH)), ("numeric",) * WIDTH)


def general(body: bytes, monkeypatch: pytest.MonkeyPatch) -> np.ndarray | str:
    with monkeypatch.context() as patch:
        patch.setattr(codecs, "_numeric_csv", lambda body, width: None)
        try:
            return codecs.decode_csv(body, SCHEMA)
        except BadRequest as error:
            return error.message


def decoded(body: bytes) -> np.ndarray | str:
    try:
        return codecs.decode_csv(body, SCHEMA)
    except BadRequest as error:
        return error.message


def same(a: np.ndarray | str, b: np.ndarray | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize(
    "body",
    [
        b"1,2,3\n",
        b"1,2,3\n4,5,6",
        b"1e5,-0,2.5E-3\r\n4,5,6\r\n",
        b" 1, 2 ,3\n",
        b"+1,2,3\n",  # not JSON: declined, the general path reads it
        b".5,2,3\n",
        b"007,2,3\n",
        b"1,2,3\n\n4,5,6\n",  # a blank line
        b"1,2\n3,4,5,6\n",  # widths that add up
        b"1,2,3,4\n",
        b"1,,3\n",
        b"1,2,1e400\n",
        b"1,2,-\n",
        b"e,2,3\n",
        b"1,2,3e\n",
        b"1,2,3\r4,5,6\r",
    ],
)
def test_known_bodies_decode_as_the_general_path(body, monkeypatch):
    assert same(decoded(body), general(body, monkeypatch))


def test_the_fast_path_takes_the_common_case():
    X = codecs._numeric_csv(b"0.1,2,-3e-7\n4,5,6\n", WIDTH)
    assert X is not None and X.tolist() == [[0.1, 2.0, -3e-7], [4.0, 5.0, 6.0]]


def cell(value: float, style: int) -> str:
    return [repr(value), f"{value:e}", f"{value:.3f}", str(int(value)) if math.isfinite(value) else "x"][
        style
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(0, 3)),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["\n", "\r\n"]),
)
def test_random_numeric_bodies_decode_as_the_general_path(rows, newline):
    body = newline.join(",".join(cell(v, s) for v, s in row) for row in rows).encode()
    with pytest.MonkeyPatch.context() as patch:
        assert same(decoded(body), general(body, patch))
