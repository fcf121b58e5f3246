"""Shared helpers of the synthetic MIMIC-IV writers: time conversion and the gzip CSV writer."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from amc.data.store import atomic_path


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _write_csv_gz(df: pd.DataFrame, path: Path) -> None:
    """gzip CSV as MIMIC-IV ships it (unquoted unless needed, empty field = missing), with
    mtime 0 and no file name in the gzip header: same data, same bytes.

    Tables whose strings never need quoting go through pyarrow's fast writer; the others
    (discharge texts, lab labels with commas) through pandas.
    """
    df = df.copy()
    quote = False
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].where(df[col] != "", None)
            quote = quote or bool(df[col].dropna().astype(str).str.contains('[,"\n\r]').any())
    if quote:
        for col in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[col]):
                df[col] = df[col].dt.strftime("%Y-%m-%d %H:%M:%S")
        text = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    else:
        buf = io.BytesIO()
        buf.write((",".join(df.columns) + "\n").encode())
        table = pa.Table.from_pandas(df, preserve_index=False)
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        text = buf.getvalue()
    data = gzip.compress(text, compresslevel=5, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _to_dt(seconds: np.ndarray) -> pd.Series:
    """Seconds since 1970 (float, NaN = missing) -> datetime64 rounded down to the minute."""
    s = np.asarray(seconds, dtype=np.float64)
    out = np.full(s.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    ok = np.isfinite(s)
    out[ok] = ((s[ok] // 60) * 60).astype(np.int64).astype("datetime64[s]")
    return pd.Series(out)
