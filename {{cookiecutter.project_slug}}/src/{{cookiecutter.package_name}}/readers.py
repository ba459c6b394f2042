"""CSV and Parquet files to numpy columns through pyarrow, with the csv module's rules (issue 25).

The csv-module reader before this kept a Python string per cell until every row was read (15-19x
the data's size, ~60 CPU-s per million rows). Here pyarrow parses the files (the columns that are
numbers in the first block straight to float64, the others as strings whose type is then decided
once), and the columns move to numpy one at a time. Text columns become object arrays with one
``str`` per distinct value. The rules, which tests/runtime/test_data.py holds against the old
reader's answers:

- a cell is missing when ``cell.strip().lower()`` is in ``data.MISSING``; a column is numeric when
  every other cell is a number to Python's ``float()`` (pyarrow parses the plain ones; the few it
  does not, such as ``1_000`` or a padded cell, take an exact path per distinct value);
- header names are stripped, and an empty or duplicate name is refused; files of one channel must
  share the header; blank lines are skipped; a row of the wrong width, a file that is not UTF-8 or
  that has no header is refused with the csv module's own message naming file and line (when pyarrow
  refuses a file, the csv module scans it again only to name the fault);
- a UTF-8 byte-order mark stays in the first column's name, as the csv module reads it;
- Parquet columns of numbers or text are read (text by the same rules); other types are refused.
"""

from __future__ import annotations

import csv
import itertools
import math
import mmap
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import data
from .data import MISSING, DataError, data_files, header_columns

# Every capitalisation of the missing tokens ("NA", "Null", ...): the first, exact-match test.
_NULL_TOKENS = pa.array(
    sorted({"".join(p) for t in MISSING for p in itertools.product(*({c, c.upper()} for c in t))})
)
_MISSING = pa.array(sorted(MISSING))
# Python's str.strip() set (str.isspace()), for a regex that finds the few text values to strip.
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACE_CLASS = "[" + "".join("\\x{" + format(ord(c), "x") + "}" for c in PY_WHITESPACE) + "]"
_EDGE_SPACE = f"^{_SPACE_CLASS}|{_SPACE_CLASS}$"  # RE2 syntax, for pc.match_substring_regex
_NUMERIC_TYPES = (pa.types.is_floating, pa.types.is_integer, pa.types.is_null, pa.types.is_decimal)
_BLOCK_BYTES = 1 << 20  # pyarrow's unit of parsing (its default; 4 MB parsed 1.3x slower, 16 MB 2.6x: cache)
# The files' Arrow buffers come from the C allocator, which returns each column's buffers to the
# system as soon as the column is in numpy: peak 1.2x the data at 1M rows x 52, against 2.0x with
# pyarrow's default pool (mimalloc), which keeps freed memory for reuse.
pa.set_memory_pool(pa.system_memory_pool())
_POOL = pa.default_memory_pool()
_RELEASES = 16
_SNIFF_BYTES = 1 << 20  # the first block, whose numeric columns are read as float64 at once
_RETRIES = 3
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to double")


def read(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """The header and the columns of one file or of every data file of a directory."""
    columns, pieces = _read_files(path)
    # Column by column, each one's Arrow buffers freed as soon as it is in numpy: the peak is what
    # pyarrow read plus a part of the columns, not that plus every numpy column. The allocator is
    # asked to hand freed memory back 16 times over the data (each ask walks its heap: once per
    # column, 10,000 narrow columns took seconds).
    rows = sum(len(piece) for _, piece in pieces[columns[0]])
    step, freed = max(rows * len(columns) * 8 // _RELEASES, 1 << 20), 0
    arrays = {}
    for position, name in enumerate(columns):
        arrays[name] = _column(position, pieces.pop(name))
        freed += arrays[name].nbytes
        if freed >= step:
            _POOL.release_unused()
            freed = 0
    return columns, arrays


def _read_files(path: Path) -> tuple[list[str], dict[str, list[tuple[Path, pa.ChunkedArray]]]]:
    """The shared header and, per column, its Arrow cells in each file."""
    columns: list[str] | None = None
    tables: list[tuple[Path, pa.Table]] = []
    for file in data_files(path):
        file_columns, table = _read_parquet(file) if file.suffix == ".parquet" else _read_csv(file)
        if columns is None:
            columns = file_columns
        elif file_columns != columns:
            raise DataError(
                f"{file}: header differs from the first file's ({len(file_columns)} vs {len(columns)} columns)"
            )
        tables.append((file, table))
    assert columns is not None
    if sum(t.num_rows for _, t in tables) == 0:
        raise DataError(f"{path}: no data rows")
    return columns, {name: [(f, t.column(i)) for f, t in tables] for i, name in enumerate(columns)}


# ---- CSV ----------------------------------------------------------------------------------------


def _read_csv(file: Path, as_text: int | None = None) -> tuple[list[str], pa.Table]:
    """The header as the csv module reads it, and the cells as pyarrow reads them: the columns whose
    first block holds only plain numbers and missing tokens as float64 (parsed while reading), the
    others as strings, decided by ``_as_numbers``. pyarrow's own type inference is not used: it
    would take "0x10" for 16, "true" for a boolean and "2021-01-01" for a date. ``as_text``: the
    position of a column to read as strings whatever its first block holds."""
    raw = _csv_header(file)
    columns = header_columns(raw, str(file))
    # pyarrow names the columns as written, less a byte-order mark; the csv module's names are kept.
    names = [raw[0].removeprefix("\ufeff"), *raw[1:]]
    quoted = _has_quote(file)
    numbers, block, retries = _sniff(file, names, quoted), _BLOCK_BYTES, 0
    if as_text is not None:
        numbers.discard(names[as_text])
    while True:
        try:
            table = _arrow_csv(file, block, names, numbers, quoted)
            break
        except pa.ArrowInvalid as error:
            failed = _CONVERSION_ERROR.match(str(error))
            if failed and names[int(failed.group(1))] in numbers:  # text after the first block
                retries += 1  # each costs a read: after a few, every column is read as strings
                numbers = numbers - {names[int(failed.group(1))]} if retries < _RETRIES else set()
                continue
            if "straddling" in str(error) and block < file.stat().st_size:
                block *= 4  # a row longer than a block: read bigger blocks
                continue
            _diagnose(file)
            raise DataError(f"{file}: malformed CSV ({str(error).splitlines()[0]})") from None
    if table.column_names != names:
        _diagnose(file)
        raise DataError(f"{file}: malformed CSV (pyarrow read a header of {table.num_columns} names)")
    return columns, table


def _sniff(file: Path, names: list[str], quoted: bool) -> set[str]:
    """The columns whose first block is plain numbers and exact missing tokens (empty if pyarrow
    cannot read that block: the full read then finds and names the fault)."""
    try:
        reader = pacsv.open_csv(
            file,
            read_options=pacsv.ReadOptions(block_size=_SNIFF_BYTES, use_threads=False),
            parse_options=_parse_options(quoted),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
        batch = reader.read_next_batch()
    except (pa.ArrowInvalid, StopIteration):
        return set()
    found = set()
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            _masked(column).cast(pa.float64())
        except pa.ArrowInvalid:
            continue
        found.add(name)
    return found


def _parse_options(quoted: bool) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(
        delimiter=",",
        quote_char='"',
        double_quote=True,
        escape_char=False,
        # A quoted cell may hold line breaks; that makes the split into blocks serial, so it is
        # on only when the file has a quote at all.
        newlines_in_values=quoted,
        ignore_empty_lines=True,  # the csv module yields [] for them, which the old reader skipped
    )


def _arrow_csv(file: Path, block: int, names: list[str], numbers: set[str], quoted: bool) -> pa.Table:
    """pyarrow's reader with every option spelled out (its defaults differ from the csv module's)."""
    return pacsv.read_csv(
        file,
        # One thread: on this project's 2-core instances threads cost more CPU than they saved
        # time (1M rows x 52: 2.0-2.4 CPU-s parsing alone, 2.7-3.3 with threads).
        read_options=pacsv.ReadOptions(block_size=block, use_threads=False, encoding="utf8"),
        parse_options=_parse_options(quoted),
        convert_options=pacsv.ConvertOptions(
            check_utf8=True,  # invalid UTF-8 is a conversion error: the csv module names it
            column_types={n: pa.float64() if n in numbers else pa.string() for n in names},
            # Exact missing tokens are null in float64 columns (the parser is float()'s subset:
            # tests/runtime/test_data.py); string columns keep every cell as written ("NA").
            null_values=_NULL_TOKENS.to_pylist(),
            strings_can_be_null=False,
            quoted_strings_can_be_null=True,
            auto_dict_encode=False,
        ),
    )


def _has_quote(file: Path) -> bool:
    with file.open("rb") as handle:
        if file.stat().st_size == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return view.find(b'"') >= 0


def _csv_header(file: Path) -> list[str]:
    """The header row, unstripped, as the csv module reads it."""
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise DataError(f"{file}: malformed CSV ({error})") from None
    if header is None:
        raise DataError(f"{file}: file is empty (expected a header row)")
    return header


def _diagnose(file: Path) -> None:
    """Scan ``file`` with the csv module and raise its DataError, naming line and cause; returns
    if it finds nothing (then the caller reports pyarrow's reason). Only runs on a refused file."""
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            width = len(next(reader, []))
            for row in reader:
                if row and len(row) != width:
                    raise DataError(f"{file}:{reader.line_num}: expected {width} fields, got {len(row)}")
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise DataError(f"{file}: malformed CSV ({error})") from None


# ---- Parquet ------------------------------------------------------------------------------------


def _read_parquet(file: Path) -> tuple[list[str], pa.Table]:
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{file}: not a readable Parquet file ({str(error).splitlines()[0]})") from None
    columns = header_columns(list(table.column_names), str(file))
    for name, kind in zip(columns, table.schema.types, strict=True):
        if not (_is_numeric(kind) or _is_text(kind)):
            raise DataError(f"{file}: column {name!r} has type {kind}; this reader takes numbers and text")
    return columns, table


# ---- Arrow columns to numpy ---------------------------------------------------------------------


def _is_numeric(kind: pa.DataType) -> bool:
    return any(test(kind) for test in _NUMERIC_TYPES)


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _column(position: int, pieces: list[tuple[Path, pa.ChunkedArray]]) -> np.ndarray:
    """One column of every file: float64 when every cell is a number or missing, else text."""
    numbers = [_as_numbers(piece) for _, piece in pieces]
    if all(n is not None for n in numbers):
        return _float64([n for n in numbers if n is not None])
    texts = []
    for file, piece in pieces:
        if _is_text(piece.type):
            texts.append(piece.cast(pa.string()))
        elif file.suffix == ".csv":  # read as numbers here, text in another file: the cells as written
            texts.append(_read_csv(file, as_text=position)[1].column(position))
        else:  # a Parquet number column: the numbers as pyarrow writes them
            texts.append(piece.cast(pa.string()))
    return _texts(pa.chunked_array([c for t in texts for c in t.chunks], type=pa.string()))


def _as_numbers(piece: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The column as float64 (null = missing), or None when a cell is text.

    pyarrow's string-to-float64 cast takes a subset of what float() takes and gives the same
    values (tests/runtime/test_data.py): when it succeeds, it is float()'s answer. Cells it does not
    take (padded, "1_000", a Unicode digit) fall to the exact path, which calls float() once per
    distinct value and stops at the first text cell.
    """
    if _is_numeric(piece.type):
        return piece.cast(pa.float64(), safe=False)  # int64 beyond 2**53 rounds, as float() does
    text = piece if pa.types.is_string(piece.type) else piece.cast(pa.string())
    try:  # the common case: plain numbers and unpadded missing tokens
        return pa.chunked_array([_masked(c).cast(pa.float64()) for c in text.chunks], pa.float64())
    except pa.ArrowInvalid:
        pass
    nothing = pa.scalar(None, pa.string())
    trimmed = pc.ascii_trim_whitespace(text)  # ASCII spaces: all of them are str.strip()'s too
    missing = pc.or_(pc.is_null(trimmed), pc.is_in(pc.ascii_lower(trimmed), value_set=_MISSING))
    try:
        return pc.if_else(missing, nothing, trimmed).cast(pa.float64())
    except pa.ArrowInvalid:
        pass
    distinct = pc.unique(text)
    values = np.empty(len(distinct), dtype=np.float64)
    for i, cell in enumerate(distinct.to_pylist()):
        number = math.nan if cell is None else data.to_float(cell)
        if number is None:
            return None
        values[i] = number
    codes = pc.index_in(text, value_set=distinct)
    return pa.chunked_array(
        [pa.array(values[c.to_numpy(zero_copy_only=False)]) for c in codes.chunks], pa.float64()
    )


def _masked(chunk: pa.StringArray) -> pa.Array:
    """The chunk with its missing tokens as nulls: the same string buffers under a new validity
    bitmap (pc.if_else would copy every string; the cast skips null slots)."""
    present = pc.invert(pc.is_in(chunk, value_set=_NULL_TOKENS))
    if chunk.offset or present.offset or chunk.null_count:  # sliced or with nulls (Parquet): copy
        return pc.if_else(present, chunk, pa.scalar(None, pa.string()))
    _, offsets, strings = chunk.buffers()
    return pa.StringArray.from_buffers(len(chunk), offsets, strings, present.buffers()[1])


def _float64(parts: list[pa.ChunkedArray]) -> np.ndarray:
    """Float64 chunks into one numpy array, each chunk's values copied once and its nulls set to
    NaN in place (to_numpy would first make a NaN-filled copy of every chunk with a null)."""
    out = np.empty(sum(len(p) for p in parts), dtype=np.float64)
    start = 0
    for part in parts:
        for chunk in part.chunks:
            end = start + len(chunk)
            validity, values = chunk.buffers()
            out[start:end] = np.frombuffer(values, np.float64, len(chunk), chunk.offset * 8)
            if chunk.null_count:
                bits = np.frombuffer(validity, np.uint8)
                present = np.unpackbits(bits, count=chunk.offset + len(chunk), bitorder="little")
                out[start:end][present[chunk.offset :] == 0] = math.nan
            start = end
    return out


def _texts(column: pa.ChunkedArray) -> np.ndarray:
    """Text cells as an object array of stripped strings, one str object per distinct value
    (missing cells of a Parquet string column read as "", as an empty CSV cell does)."""
    distinct = pc.unique(column)
    values = distinct.fill_null("").to_numpy(zero_copy_only=False)
    padded = np.flatnonzero(
        pc.match_substring_regex(distinct.fill_null(""), _EDGE_SPACE).to_numpy(zero_copy_only=False)
    )
    values[padded] = [values[i].strip() for i in padded]
    codes = pc.index_in(column, value_set=distinct)
    out = np.empty(len(column), dtype=object)
    start = 0
    for chunk in codes.chunks:
        out[start : start + len(chunk)] = values[chunk.to_numpy(zero_copy_only=False)]
        start += len(chunk)
    return out
