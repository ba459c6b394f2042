"""The numeric CSV fast path (codecs._numeric_csv) answers exactly as the general path: the same
matrix for every body it takes, and it declines (the general path then decides) everything else.
Bodies of numbers and missing values, in every spelling the general path reads as missing, stay on
it (issue 22: a 6 MB body of "nan" went cell by cell for 2.5-5 s)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.data import MISSING
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
        b"1\r,2,3\n",  # a lone CR is a line break to the general path: the old fast path read 1,2,3
        b"nan,NA,Null\nNONE, , \t\n",
        b",,\n,,\n",
        b"1,,\n,2,\n,,3",
        b"-nan,+NaN,1\n",
        b"nana,1,2\n",
        b"nanull,1,2\n",
        b"nanull,,\n",  # two spellings in one cell, no digit in the body
        b"NaNNone,nan,\n",
        b"n a,1,2\n",
        b"+na,1,2\n",
        b"-,1,2\n",
        b"1nan,1,2\n",
        b"nan1,1,2\n",
        b"null null,1,2\n",
        b"nan,nan,nan\n\n \n\t\nnan,nan,nan\n",
        b"nan,nan\n",
        b"nan,nan,nan,nan\n",
        b",,,\n",
        b"e,,\n",
        b"inf,,\n",
        b"1e400,nan,\n",
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


def test_an_all_missing_body_takes_the_fast_path():
    for body in (b"nan,nan,nan\n" * 1000, b",,\n" * 1000, b"NA, none ,\tNULL\r\n" * 1000):
        X = codecs._numeric_csv(body, WIDTH)
        assert X is not None and X.shape == (1000, WIDTH) and np.isnan(X).all()


# Every spelling the general path reads as missing (data.MISSING, any case, float()'s signed NaN).
SPELLINGS = sorted(MISSING | {"+nan", "-nan"})
PADDING = st.text(alphabet=" \t", max_size=2)


@st.composite
def missing_cell(draw) -> str:
    spelling = draw(st.sampled_from(SPELLINGS))
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in spelling)
    return draw(PADDING) + cased + draw(PADDING)


@st.composite
def number_cell(draw) -> str:
    value = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    return draw(PADDING) + cell(value, draw(st.integers(0, 2))) + draw(PADDING)


def body_of(rows: list[list[str]], newline: str, blank: str, end: str) -> bytes:
    lines = [",".join(row) for row in rows]
    return (newline.join(lines[:1] + [blank + line for line in lines[1:]]) + end).encode()


def schema_of(width: int) -> codecs.Schema:
    return codecs.Schema(tuple(f"f{i}" for i in range(width)), ("numeric",) * width)


def general_answer(body: bytes, schema: codecs.Schema) -> np.ndarray | str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codecs, "_numeric_csv", lambda body, width: None)
        try:
            return codecs.decode_csv(body, schema)
        except BadRequest as error:
            return error.message


@settings(max_examples=400, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda width: st.lists(
            st.lists(st.one_of(missing_cell(), number_cell()), min_size=width, max_size=width),
            min_size=1,
            max_size=4,
        )
    ),
    st.sampled_from(["\n", "\r\n"]),
    st.sampled_from(["", "\n", " \n", "\t\n"]),  # blank lines, which both paths skip
    st.sampled_from(["", "\n", "\r\n", " \n\n"]),
)
def test_numbers_and_missing_values_stay_on_the_fast_path(rows, newline, blank, end):
    width = len(rows[0])
    # One row of one empty cell is a blank line (skipped): some row must have a cell or a comma.
    assume(any(",".join(row).strip() for row in rows))
    body = body_of(rows, newline, blank, end)
    fast = codecs._numeric_csv(body, width)
    assert fast is not None, body
    assert same(fast, general_answer(body, schema_of(width))), body


# Cells the general path refuses (or that only look like a missing value or a number), mixed in.
ODD = ["nana", "nanull", "nanone", "n a", "+na", "-", "+", "", " ", "1 2", "nan1", "1nan", "NN", "N", "e",
       "inf", "-Infinity", "1e400", "nul", "+1", ".5", "5.", "007", "--1", "+-1", "1e5e5", "1,5"]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(missing_cell(), number_cell(), st.sampled_from(ODD)), min_size=1, max_size=5),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\n \n"]),
    st.sampled_from(["", "\n", " "]),
    st.sampled_from([1, WIDTH, 5]),
)
def test_any_mixed_body_decodes_as_the_general_path(rows, newline, end, width):
    schema = schema_of(width)
    body = body_of(rows, newline, "", end)
    try:
        got: np.ndarray | str = codecs.decode_csv(body, schema)
    except BadRequest as error:
        got = error.message
    assert same(got, general_answer(body, schema)), body


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(missing_cell(), st.sampled_from([c for c in ODD if not any(d.isdigit() for d in c)])),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["\n", "\r\n", "\n \n"]),
    st.sampled_from([1, WIDTH, 5]),
)
def test_bodies_without_a_digit_decode_as_the_general_path(rows, newline, width):
    """Such a body is all missing or refused: checked without orjson (codecs._all_missing)."""
    schema = schema_of(width)
    body = body_of(rows, newline, "", "\n")
    try:
        got: np.ndarray | str = codecs.decode_csv(body, schema)
    except BadRequest as error:
        got = error.message
    assert same(got, general_answer(body, schema)), body
