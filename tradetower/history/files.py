"""The cache's Parquet files: encode, decode and merge one period of bars.

A file holds ``ts`` (int64 ms, sorted, unique), ``open``/``high``/``low``/``close``/``volume``
(float64) and optionally ``trades`` and ``vwap``, compressed with zstd. Prices barely repeat,
so dictionary encoding only costs time: ``ts`` is delta-encoded and the floats byte-stream
split, which makes a month of minutes about 40% smaller and three times faster to read than
the defaults (any Parquet reader since 2023 understands both encodings).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tradetower.domain.bars import OHLCV
from tradetower.errors import DataValidationError
from tradetower.history.validate import OPTIONAL_COLUMNS

COLUMNS = ("ts", *OHLCV)


def encode(frame: pd.DataFrame) -> bytes:
    """Parquet (zstd) bytes of a clean frame."""
    arrays = {"ts": pa.array(frame["ts"].to_numpy(dtype=np.int64))}
    for col in OHLCV:
        arrays[col] = pa.array(frame[col].to_numpy(dtype=np.float64))
    for col in OPTIONAL_COLUMNS:
        if col in frame.columns:
            arrays[col] = pa.array(frame[col].to_numpy(dtype=np.float64))
    encodings = {name: "BYTE_STREAM_SPLIT" for name in arrays if name != "ts"}
    buffer = io.BytesIO()
    pq.write_table(
        pa.table(arrays),
        buffer,
        compression="zstd",
        use_dictionary=False,
        column_encoding={"ts": "DELTA_BINARY_PACKED", **encodings},
    )
    return buffer.getvalue()


def decode_table(data: bytes, where: str, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data), columns=columns)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataValidationError(f"{where}: not a readable Parquet file ({exc})") from None


def shared_columns(tables: list[pa.Table], where: str) -> list[str]:
    """The columns every table has, in file order; refuses tables lacking a required one."""
    for table in tables:
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise DataValidationError(f"{where}: a file lacks column(s) {', '.join(missing)}")
    optional = [c for c in OPTIONAL_COLUMNS if all(c in t.column_names for t in tables)]
    return [*COLUMNS, *optional]


def decode(data: bytes, where: str) -> pd.DataFrame:
    """A cache file's bars as a frame with the file's columns."""
    table = decode_table(data, where)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataValidationError(f"{where}: lacks column(s) {', '.join(missing)}")
    keep = [*COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in table.column_names)]
    return pd.DataFrame({c: table.column(c).to_numpy() for c in keep})


def merge_bars(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` and ``new`` as one sorted frame; on equal ``ts`` the new bar wins. Optional
    columns survive only when both sides have them (a bar never gets a made-up value)."""
    if len(old) == 0:
        return new.reset_index(drop=True)
    if len(new) == 0:
        return old.reset_index(drop=True)
    shared = [c for c in old.columns if c in new.columns]
    both = pd.concat([old[shared], new[shared]], ignore_index=True)
    both = both.sort_values("ts", kind="stable")
    return both.drop_duplicates("ts", keep="last").reset_index(drop=True)
