"""The data reader (pyarrow underneath) keeps the csv module's rules, and its cost grows with the data.

The expected tables and messages below are what the csv-module reader (before issue 25) returned
for the same bytes: refusals name file and line, missing tokens, quoting, blank lines, BOM.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from {{ cookiecutter.package_name }} import data, predictor, readers
from {{ cookiecutter.package_name }}.data import DataError, read_csv
from {{ cookiecutter.package_name }}.predictor import Predictor


def read_bytes(tmp_path: Path, body: bytes, name: str = "part.csv") -> data.Table:
    path = tmp_path / name
    path.write_bytes(body)
    return read_csv(path)


def cells(table: data.Table) -> dict[str, list[object]]:
    return {c: [repr(v) for v in table.data[c].tolist()] for c in table.columns}


NAN = repr(math.nan)

# bytes -> {column: [repr of each cell]} as the csv-module reader returned them.
READS = {
    "lone CR line ends": (b"a,b\r1,x\r2,y\r", {"a": ["1.0", "2.0"], "b": ["'x'", "'y'"]}),
    "a NUL byte in a cell": (b"a,b\n1,x\x00y\n2,y\n", {"a": ["1.0", "2.0"], "b": ["'x\\x00y'", "'y'"]}),
    "a quote inside a cell": (b'a,b\n1,x"y\n2,y\n', {"a": ["1.0", "2.0"], "b": ["'x\"y'", "'y'"]}),
    "text after a closing quote": (b'a,b\n1,"x"y\n2,y\n', {"a": ["1.0", "2.0"], "b": ["'xy'", "'y'"]}),
    "a line break in quotes": (b'a,b\n1,"x\ny"\n2,y\n', {"a": ["1.0", "2.0"], "b": ["'x\\ny'", "'y'"]}),
    "blank lines": (b"a,b\n\n1,x\n\n\n2,y\n", {"a": ["1.0", "2.0"], "b": ["'x'", "'y'"]}),
    "a quoted empty cell": (b'a,b\n1,""\n2,y\n', {"a": ["1.0", "2.0"], "b": ["''", "'y'"]}),
    "an unterminated quote": (b'a,b\n1,"x\n2,y\n', {"a": ["1.0"], "b": ["'x\\n2,y'"]}),
    "a byte-order mark": (b"\xef\xbb\xbfa,b\n1,x\n", {"\ufeffa": ["1.0"], "b": ["'x'"]}),
    "missing tokens": (
        b"a,b,c\n1, NA ,x\nnull,Nan,NA\n NONE ,2,y\n",
        {"a": ["1.0", NAN, NAN], "b": [NAN, NAN, "2.0"], "c": ["'x'", "'NA'", "'y'"]},
    ),
    "numbers only float() reads": (
        b"a,b\n 1.5 ,\xc2\xa02\n1_000,+3\n",
        {"a": ["1.5", "1000.0"], "b": ["2.0", "3.0"]},
    ),
    "infinities": (b"a,b\ninf,-Infinity\n1,2\n", {"a": ["inf", "1.0"], "b": ["-inf", "2.0"]}),
    "dates and booleans are text": (
        b"a,b\n2021-01-01,true\n2021-01-02,false\n",
        {"a": ["'2021-01-01'", "'2021-01-02'"], "b": ["'true'", "'false'"]},
    ),
    "negative zero": (b"a,b\n-0,1\n5,2\n", {"a": ["-0.0", "5.0"], "b": ["1.0", "2.0"]}),
    "Unicode digits": (b"a\n\xd9\xa1\xd9\xa2\n3\n", {"a": ["12.0", "3.0"]}),
    "hexadecimal is text": (b"a\n0x10\n", {"a": ["'0x10'"]}),
    "padded text is stripped": (
        b"a,b\n x ,1\n\xe3\x80\x80y\xe3\x80\x80,2\nx,3\n",
        {"a": ["'x'", "'y'", "'x'"], "b": ["1.0", "2.0", "3.0"]},
    ),
    "every cell missing": (b"a,b\n,NA\n,\n", {"a": [NAN, NAN], "b": [NAN, NAN]}),
    "quoted numbers": (b'a,b\n"1.5","x"\n"",y\n', {"a": ["1.5", NAN], "b": ["'x'", "'y'"]}),
}

REFUSALS = {
    "a row of spaces": (b"a,b\n1,x\n  \n2,y\n", "F:3: expected 2 fields, got 1"),
    "a short row": (b"a,b,c\n1,2,3\n3,4\n", "F:3: expected 3 fields, got 2"),
    "a long row": (b"a,b\n1,2\n3,4,5\n", "F:3: expected 2 fields, got 3"),
    "a header and no rows": (b"a,b\n", "F: no data rows"),
    "an empty file": (b"", "F: file is empty (expected a header row)"),
    "a blank first line": (b"\na,b\n1,2\n", "F: header row has an empty column name"),
    "a duplicate name": (b"a, a ,b\n1,2,3\n", "F: duplicate column(s) a"),
    "an empty name": (b"a,,b\n1,2,3\n", "F: header row has an empty column name"),
    "Latin-1 text": (b"a,b\n1,caf\xe9\n", "F: not UTF-8 text (invalid continuation byte at byte 9)"),
    "a Latin-1 header": (b"a,caf\xe9\n1,x\n", "F: not UTF-8 text (invalid continuation byte at byte 5)"),
    "binary garbage": (
        b"\x89PNG\r\n\x1a\n\x00\x00binary garbage\xff\xfe",
        "F: not UTF-8 text (invalid start byte at byte 0)",
    ),
}


@pytest.mark.parametrize("case", READS)
def test_reads_as_the_csv_module_did(tmp_path: Path, case: str) -> None:
    body, expected = READS[case]
    assert cells(read_bytes(tmp_path, body)) == {c: v for c, v in expected.items()}


@pytest.mark.parametrize("case", REFUSALS)
def test_refuses_as_the_csv_module_did(tmp_path: Path, case: str) -> None:
    body, message = REFUSALS[case]
    with pytest.raises(DataError) as error:
        read_bytes(tmp_path, body)
    assert str(error.value).replace(str(tmp_path / "part.csv"), "F") == message


def _candidates() -> list[str]:
    """Short strings of number-like characters, plus long decimals that test correct rounding."""
    rng = random.Random(7)
    alphabet = "0123456789" * 3 + ".eE+-_ xXabdfinINFtyT\u0661\u00a0"
    found = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(3000)}
    for _ in range(1000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22)))
        cut = rng.randint(0, len(digits))
        found.add(f"{digits[:cut]}.{digits[cut:]}e{rng.randint(-330, 310)}")
    return sorted(found)


def test_a_column_is_numeric_exactly_when_float_reads_every_cell(tmp_path: Path) -> None:
    """pyarrow parses the plain numbers; the rest must still get float()'s answer (one column per
    candidate, so every column's type is decided on its one cell)."""
    candidates = _candidates()
    header = ",".join(f"c{i}" for i in range(len(candidates)))
    row = ",".join('"' + c + '"' for c in candidates)
    table = read_bytes(tmp_path, f"{header}\n{row}\n".encode())
    for i, text in enumerate(candidates):
        column = table.data[f"c{i}"]
        try:
            expected: float | None = math.nan if text.strip().lower() in data.MISSING else float(text)
        except ValueError:
            expected = None
        if expected is None:
            assert column.dtype == object and column[0] == text.strip(), text
        else:
            value = float(column[0])
            assert column.dtype == np.float64, text
            assert (value == expected or (math.isnan(value) and math.isnan(expected))) and (
                math.copysign(1, value) == math.copysign(1, expected)
            ), text


def test_parquet_files_and_csv_files_share_a_channel(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("n,k,t\n1.5,x,2\n,NA,3\n")
    pq.write_table(
        pa.table(
            {
                "n": pa.array([2, None], pa.int32()),
                "k": pa.array(["y", None]).dictionary_encode(),
                "t": pa.array(["4", " 5 "]),
            }
        ),
        tmp_path / "b.parquet",
    )
    table = read_csv(tmp_path)
    assert cells(table) == {
        "n": ["1.5", NAN, "2.0", NAN],
        "k": ["'x'", "'NA'", "'y'", "''"],
        "t": ["2.0", "3.0", "4.0", "5.0"],
    }


def test_text_in_one_file_makes_the_column_text_in_all(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("n,t\n1.50,x\n")
    (tmp_path / "b.csv").write_text("n,t\nlow,y\n")
    assert cells(read_csv(tmp_path))["n"] == ["'1.50'", "'low'"]


def test_parquet_refusals_name_the_file_and_column(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"when": pa.array([1, 2], pa.timestamp("s")), "y": [1, 2]}), tmp_path / "t.parquet"
    )
    with pytest.raises(
        DataError,
        match=r"t\.parquet: column 'when' has type timestamp\[ms\]; this reader takes numbers and text",
    ):
        read_csv(tmp_path / "t.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable Parquet file \("):
        read_csv(tmp_path / "bad.parquet")


def test_files_of_a_channel_must_share_the_header(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,y,z\n1,2,3\n")
    with pytest.raises(DataError, match=r"b\.csv: header differs from the first file's \(3 vs 2 columns\)"):
        read_csv(tmp_path)


@pytest.mark.parametrize("columns", [1, 5])
def test_text_after_the_first_block_makes_a_text_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    """Columns that look numeric in the first block are parsed as numbers; text further down is
    read again as strings, cells as written (5 columns: past the retries, all as strings)."""
    monkeypatch.setattr(readers, "_SNIFF_BYTES", 64)
    header = ",".join(f"n{i}" for i in range(columns)) + ",m"
    rows = [",".join(["1.50"] * columns) + ",2" for _ in range(50)] + [",".join(["x"] * columns) + ",NA"]
    table = read_bytes(tmp_path, ("\n".join([header, *rows]) + "\n").encode())
    assert all(table.data[f"n{i}"].tolist() == ["1.50"] * 50 + ["x"] for i in range(columns))
    m = table.data["m"]
    assert m.dtype == np.float64 and m[-2] == 2.0 and np.isnan(m[-1])


def test_a_row_longer_than_a_block_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_BLOCK_BYTES", 64)
    long_text = "w" * 1000
    table = read_bytes(tmp_path, f"a,b\n1,{long_text}\n2,{long_text}\n".encode())
    assert table.data["b"].tolist() == [long_text, long_text]


def test_a_wide_csv_reads_in_linear_time(tmp_path: Path) -> None:
    """10,000 columns: the header checks count names once (they were quadratic: 6.7 s here)."""
    width = 10_000
    header = ",".join(f"c{i}" for i in range(width))
    rows = "\n".join(",".join(str(r + i) for i in range(width)) for r in range(5))
    started = time.process_time()
    table = read_bytes(tmp_path, f"{header}\n{rows}\n".encode())
    assert time.process_time() - started < 5
    assert table.n_rows == 5 and table.data["c9999"].tolist() == [9999.0, 10000.0, 10001.0, 10002.0, 10003.0]
    # The header check alone at 50,000 names (list.count per name took 127 s): a Counter, once.
    names = [f"c{i}" for i in range(50_000)] + [" c7 "]
    started = time.process_time()
    with pytest.raises(DataError, match=r"^f: duplicate column\(s\) c7$"):
        data.header_columns(names, "f")
    assert time.process_time() - started < 1


# ---- cost per row --------------------------------------------------------------------------------


def _csv(path: Path, rows: int, distinct: int = 3) -> Path:
    """rows x (8 numeric + 2 text + label); the text columns and one numeric column that only
    float() reads ("1_0") have ``distinct`` values, so Python's share (per distinct value) is the
    same at every row count."""
    rng = np.random.default_rng(0)
    numbers = np.round(rng.standard_normal((rows, 8)), 3).astype(str)
    numbers[rng.random((rows, 8)) < 0.05] = ""
    spelled = np.array([f"{i}_0" for i in range(distinct)])[np.arange(rows) % distinct]  # float() only
    colour = np.array(["red", "green", " blue", "NA"][:distinct])[np.arange(rows) % distinct]
    size = np.array(["S", "M", "L"][:distinct])[(np.arange(rows) // 7) % distinct]
    label = np.where(np.arange(rows) % 3 == 0, "yes", "no")
    lines = [",".join(r) for r in np.column_stack([numbers, spelled, colour, size, label]).tolist()]
    path.write_text(
        "\n".join([",".join([*(f"x{i}" for i in range(9)), "colour", "size", "target"]), *lines]) + "\n"
    )
    return path


def _counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count calls of the per-cell-capable Python functions of the reader and the encoder."""
    calls = {"to_float": 0, "label_key": 0, "_is_missing": 0}
    for module, name in ((data, "to_float"), (predictor, "label_key"), (predictor, "_is_missing")):
        original = getattr(module, name)

        def counting(*args: object, _name: str = name, _original=original) -> object:
            calls[_name] += 1
            return _original(*args)

        monkeypatch.setattr(module, name, counting)
    return calls


def _encoder(table: data.Table) -> Predictor:
    names = [c for c in table.columns if c != "target"]
    kinds = ["numeric" if table.is_numeric(c) else "categorical" for c in names]
    return Predictor(
        "binary",
        "test",
        names,
        kinds,
        ["no", "yes"],
        "yes",
        0.5,
        None,
        categories={"colour": ["blue", "green", "red"], "size": ["L", "M", "S"]},
    )


def test_python_runs_per_distinct_value_not_per_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = []
    for rows in (1_000, 20_000):
        calls = _counted(monkeypatch)
        table = read_csv(_csv(tmp_path / f"{rows}.csv", rows))
        X = _encoder(table).features(table)
        assert X.shape == (rows, 11)
        counts.append(dict(calls))
        monkeypatch.undo()
    # float() runs on the "1_0" column's 3 values, and once per text column (its first value ends it).
    assert counts[0] == counts[1] and counts[0]["to_float"] == 3 + 3


def test_categories_map_to_codes_as_before(tmp_path: Path) -> None:
    table = read_csv(_csv(tmp_path / "t.csv", 30))
    encoder = _encoder(table)
    X = encoder.features(table)
    colour = [c for c in table.data["colour"].tolist()]
    expected = [{"blue": 0.0, "green": 1.0, "red": 2.0}.get(c, math.nan) for c in colour]  # "NA": missing
    assert np.array_equal(X[:, encoder.feature_names.index("colour")], expected, equal_nan=True)
    # The serving path: object rows (None for missing) encode to the same matrix.
    rows = np.array([[table.data[n][i] for n in encoder.feature_names] for i in range(30)], dtype=object)
    rows[rows == "NA"] = None
    assert np.array_equal(encoder.encode(rows), X, equal_nan=True)


def _peak_bytes(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_python_memory_per_row_is_the_columns_own(tmp_path: Path) -> None:
    """tracemalloc sees every Python object and numpy array: per row, reading holds its 9 float64
    and 3 object cells (8 bytes each) plus the float64 matrix of features, not a str per cell."""
    small, large = _csv(tmp_path / "s.csv", 2_000), _csv(tmp_path / "l.csv", 40_000)
    read_csv(small)  # first-call imports and caches
    per_row = (_peak_bytes(lambda: read_csv(large)) - _peak_bytes(lambda: read_csv(small))) / 38_000
    assert per_row < 2 * 12 * 8, per_row
    tables = read_csv(small), read_csv(large)
    encoder = _encoder(tables[0])
    per_row = (
        _peak_bytes(lambda: encoder.features(tables[1])) - _peak_bytes(lambda: encoder.features(tables[0]))
    ) / 38_000
    assert per_row < 2 * 11 * 8, per_row


def test_peak_memory_of_read_and_encode_is_under_three_times_the_data(tmp_path: Path) -> None:
    """The whole process, Arrow's buffers included (tracemalloc does not see them): RSS growth."""
    rows = 200_000
    path = _csv(tmp_path / "big.csv", rows)
    code = f"""
import resource
from pathlib import Path
from {{ cookiecutter.package_name }}.data import read_csv
from {{ cookiecutter.package_name }}.predictor import Predictor
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_data import _encoder
read_csv(Path({str(_csv(tmp_path / "warm.csv", 100))!r}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
table = read_csv(Path({str(path)!r}))
X = _encoder(table).features(table)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    growth = int(done.stdout.split()[-1])
    data_bytes = rows * 12 * 8  # the data as float64
    assert growth < 3 * data_bytes, (growth, data_bytes)


def test_serving_never_loads_pyarrow() -> None:
    """pyarrow costs ~70 MB and ~0.5 s per process; the request path does not need it."""
    code = """
import sys
import numpy as np
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.serving import app, codecs
names, kinds = ("x", "colour"), ("numeric", "categorical")
encoder = Predictor("binary", "test", list(names), list(kinds), ["no", "yes"], "yes", 0.5, None,
                    categories={"colour": ["blue", "red"]})
X = codecs.decode(b"1.5,red\\n,pink\\n2,\\n", codecs.CSV, codecs.Schema(names, kinds))
print(encoder.encode(X).tolist(), "pyarrow" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("] ")[-1].strip() == "False"
    assert done.stdout.startswith("[[1.5, 1.0], [nan, nan], [2.0, nan]]")
