"""Identity and type checks applied wherever a table enters the pipeline.

Explicit rules (each violation is an :class:`~amc.errors.InputError` naming the file, and the
patient id or column):

- a table has at least one row;
- ``patient_id`` holds strings or integers (integers are read as their decimal text); a float
  column is refused because ``1.0`` would never match the id ``1`` of another table;
- no id is null, empty, or padded with spaces, and no id appears twice;
- ``features`` is a list of numbers per patient (``fixed_size_list<float32>`` as written by
  :func:`amc.data.store.write_features`), never a scalar, text, or a null row;
- a numeric column is never coerced silently: a value that does not parse as a number is an
  error naming the patient, with the count of such values.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa

from amc.errors import InputError

FEATURE_HINT = (
    "a feature table has one row per patient: column 'patient_id' (string) and column "
    "'features' (a list of numbers of the same length for every patient); see "
    "amc.data.store.write_features"
)


def check_not_empty(n_rows: int, path: str | os.PathLike, what: str) -> None:
    """An empty table is an error, never an empty output downstream."""
    if n_rows == 0:
        raise InputError(
            f"{path}: the {what} table has no rows", hint="check the file, or the step producing it"
        )


def check_id_type(id_type: pa.DataType, path: str | os.PathLike) -> None:
    """``patient_id`` must be text or integers (see the module rules)."""
    if pa.types.is_string(id_type) or pa.types.is_large_string(id_type):
        return
    if pa.types.is_integer(id_type):
        return
    raise InputError(
        f"{path}: column 'patient_id' has type {id_type}, not text",
        hint="store patient ids as strings (floats such as 1.0 never match an id '1')",
    )


def patient_ids(values: pd.Series, path: str | os.PathLike) -> pd.Series:
    """Validated ids as str: no null, empty, space-padded or duplicated id.

    Args:
        values: (P,) the ``patient_id`` column as read (str, int, or object).
    Returns:
        (P,) str Series with the same index.
    """
    if pd.api.types.is_float_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise InputError(
            f"{path}: column 'patient_id' has type {values.dtype}, not text",
            hint="store patient ids as strings (floats such as 1.0 never match an id '1')",
        )
    null = values.isna().to_numpy()
    if null.any():
        raise InputError(
            f"{path}: patient_id is missing in {int(null.sum())} row(s), first at row "
            f"{int(np.flatnonzero(null)[0])}",
            hint="every row needs a patient id",
        )
    bad_type = values.map(lambda v: isinstance(v, float | bool | bytes)).to_numpy(dtype=bool)
    if bad_type.any():
        raise InputError(
            f"{path}: patient_id {values[bad_type].iloc[0]!r} is not text",
            hint="store patient ids as strings",
        )
    ids = values.astype(str)
    stripped = ids.str.strip()
    if (stripped == "").any():
        row = int(np.flatnonzero((stripped == "").to_numpy())[0])
        raise InputError(f"{path}: empty patient_id at row {row}", hint="every row needs an id")
    padded = (stripped != ids).to_numpy()
    if padded.any():
        raise InputError(
            f"{path}: patient_id {ids[padded].iloc[0]!r} has leading or trailing spaces",
            hint="strip the ids: they must match the other tables exactly",
        )
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(
            f"{path}: duplicate patient_id {ids[dup].iloc[0]!r} "
            f"({int(ids[dup].nunique())} id(s) appear more than once)",
            hint="one row per patient: drop or merge the duplicated rows",
        )
    return ids


def check_features_column(column: pa.ChunkedArray, path: str | os.PathLike) -> None:
    """``features`` must be a numeric list per patient, with no null row."""
    kind = column.type
    is_list = (
        pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)
    )
    if not is_list:
        raise InputError(
            f"{path}: column 'features' has type {kind}, not a list of numbers per patient",
            hint=FEATURE_HINT,
        )
    value = kind.value_type
    if not (pa.types.is_floating(value) or pa.types.is_integer(value)):
        raise InputError(
            f"{path}: column 'features' holds {value} values, not numbers", hint=FEATURE_HINT
        )


def first_null_row(column: pa.ChunkedArray) -> int | None:
    """Row of the first null entry of ``column``, or None."""
    if column.null_count == 0:
        return None
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])


def numeric_column(
    frame: pd.DataFrame, column: str, path: str | os.PathLike, hint: str
) -> pd.Series:
    """``frame[column]`` as float; any value that does not parse is an error with its count."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = (values.isna() | ~np.isfinite(values.fillna(0))).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: column {column!r} is missing or not a finite number for "
            f"{int(bad.sum())} of {len(frame)} patient(s), e.g. patient "
            f"{frame['patient_id'].iloc[first]!r} ({frame[column].iloc[first]!r})",
            hint=hint,
        )
    return values
