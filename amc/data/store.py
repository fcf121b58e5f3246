"""The one Parquet reader/writer of the project, and the atomic-write helper.

Feature tables: one row per patient, column ``patient_id`` (string) and column
``features`` as ``fixed_size_list<float32>``. Bag-valued modalities may add list columns;
volumes store a flat array with the shape in the key-value metadata under ``shape``.
Every file carries the extractor's name and parameters in metadata (``amc:`` keys, JSON values).
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from amc.data import checks
from amc.errors import InputError

_META_PREFIX = "amc:"


# Temporary names end in TMP_SUFFIX, which .dvcignore lists: a leftover of a killed write inside
# a tracked folder never changes that folder's hash (and so never re-runs downstream stages).
TMP_SUFFIX = ".amc-tmp"


def _leftovers(final: Path) -> list[Path]:
    """Temporaries of earlier, killed writes of ``final`` (also the older ``.tmp`` naming)."""
    stem = glob.escape(f".{final.name}.")
    return [
        p
        for pattern in (f"{stem}*{TMP_SUFFIX}", f"{stem}*.tmp")
        for p in final.parent.glob(pattern)
    ]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _named(exc: OSError, path: Path, tmp: Path | None = None) -> OSError:
    """The same OS error naming ``path``, when the raiser named nothing (pyarrow, buffered
    writes) or only the temporary, whose random name means nothing to the user."""
    if exc.filename is not None and (tmp is None or str(exc.filename) != str(tmp)):
        return exc
    named = OSError(exc.errno, exc.strerror or str(exc), str(path))
    named.__cause__ = exc
    return named


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Works for files and folders. Parent folders are created (DVC does not create them).
    Leftovers of an earlier killed write of the same ``path`` are removed first. An OS error
    (no space, no permission, read-only file system) is re-raised naming ``path``.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in _leftovers(final):
            _remove(stale)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise _named(exc, final) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp_path, final)
    except OSError as exc:
        raise _named(exc, final, tmp_path) from exc
    finally:
        _remove(tmp_path)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write strict JSON atomically (NaN/inf as null), pretty-printed and key-sorted."""
    text = json.dumps(
        to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False, default=_json_default
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def to_jsonable(obj: Any) -> Any:
    """Recursively convert to plain JSON types: NaN / inf -> None, numpy -> Python.

    Parameters
    ----------
    obj : Any
        dicts, lists, tuples, numpy scalars / arrays, floats, ints, str, bool, None.

    Returns
    -------
    Any
        The same structure with only dict / list / str / int / float / bool / None.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _encode_metadata(metadata: Mapping[str, Any] | None) -> dict[bytes, bytes]:
    return {
        f"{_META_PREFIX}{k}".encode(): json.dumps(v, sort_keys=True, default=_json_default).encode()
        for k, v in (metadata or {}).items()
    }


def _decode_metadata(raw: Mapping[bytes, bytes] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (raw or {}).items():
        key = k.decode()
        if key.startswith(_META_PREFIX):
            out[key[len(_META_PREFIX) :]] = json.loads(v.decode())
    return out


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    metadata: Mapping[str, Any] | None = None,
    allow_empty: bool = False,
) -> None:
    """Write a DataFrame to Parquet atomically, with ``amc:`` key-value metadata.

    A table without rows is refused (an InputError naming ``path``) unless ``allow_empty``:
    an empty output would count as valid downstream and hide the cause upstream.
    """
    if df.empty and not allow_empty:
        raise InputError(
            f"{path}: refusing to write a table with no rows",
            hint="the inputs selected no patient: check the raw files and the filters",
        )
    table = pa.Table.from_pandas(df, preserve_index=False)
    _write_arrow(table, path, metadata)


def _write_arrow(table: pa.Table, path: str | os.PathLike, metadata: Mapping[str, Any] | None):
    existing = dict(table.schema.metadata or {})
    existing.update(_encode_metadata(metadata))
    table = table.replace_schema_metadata(existing)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """pq.read_table, with a file that is not Parquet (or truncated) named as bad input."""
    try:
        return pq.read_table(path, columns=columns)
    except OSError as exc:  # no permission, I/O error: pyarrow's errors name no file
        raise _named(exc, path) from exc
    except pa.ArrowInvalid as exc:
        raise InputError(
            f"{path}: not a readable Parquet file ({exc})",
            hint="the file is corrupt or truncated: write it again",
        ) from exc


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_table` (or any Parquet file)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found", hint="run the stage that produces it first")
    if columns is not None:
        missing = [c for c in columns if c not in _read_schema(path).names]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}")
    return _read_parquet(path, columns).to_pandas()


def _read_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except OSError as exc:
        raise _named(exc, path) from exc
    except pa.ArrowInvalid as exc:
        raise InputError(
            f"{path}: not a readable Parquet file ({exc})",
            hint="the file is corrupt or truncated: write it again",
        ) from exc


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``amc:`` key-value metadata of a Parquet file, JSON-decoded."""
    return _decode_metadata(_read_schema(Path(path)).metadata)


def write_features(
    path: str | os.PathLike,
    patient_ids: list[str] | np.ndarray | pd.Series,
    features: np.ndarray,
    metadata: Mapping[str, Any] | None = None,
    extra_columns: Mapping[str, pa.Array | list] | None = None,
) -> None:
    """Write a feature table: ``patient_id`` + ``features`` as ``fixed_size_list<float32>``.

    Parameters
    ----------
    patient_ids
        (P,) unique ids.
    features
        (P, D) float array; (P, *shape) arrays (volumes) are flattened and the shape is recorded
        in metadata under ``shape``.
    metadata
        Extractor name, parameters, encoder name/version, ... (JSON-serialisable).
    extra_columns
        Further columns, e.g. a bag of patch embeddings with coordinates.
    """
    ids = [str(p) for p in patient_ids]
    if not ids:
        raise InputError(
            f"{path}: refusing to write a feature table with no patients",
            hint="no patient has this modality: check the raw files and the cohort",
        )
    feats = np.asarray(features, dtype=np.float32)
    if feats.shape[0] != len(ids):
        raise ValueError(f"{path}: {len(ids)} patient ids but {feats.shape[0]} feature rows")
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise InputError(f"{path}: duplicate patient_id {dup!r}", hint="one row per patient")
    meta = dict(metadata or {})
    if feats.ndim > 2:
        meta["shape"] = list(feats.shape[1:])
    flat = feats.reshape(len(ids), -1)
    dim = flat.shape[1]
    values = pa.array(flat.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, dim)
    arrays: dict[str, Any] = {"patient_id": pa.array(ids, type=pa.string()), "features": column}
    for name, col in (extra_columns or {}).items():
        arrays[name] = col if isinstance(col, pa.Array | pa.ChunkedArray) else pa.array(col)
    _write_arrow(pa.table(arrays), path, meta)


def read_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a feature table.

    Returns
    -------
    patient_ids
        (P,) object array of str.
    features
        (P, D) float32, or (P, *shape) when the metadata records a shape.
    metadata
        The ``amc:`` metadata.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: feature table not found", hint="run its extract stage first")
    schema = _read_schema(path)
    missing = [c for c in ("patient_id", "features") if c not in schema.names]
    if missing:  # checked on the schema, before pyarrow refuses to select the column
        raise InputError(
            f"{path}: missing column(s) {missing} (it has {schema.names[:8]})",
            hint=checks.FEATURE_HINT,
        )
    checks.check_id_type(schema.field("patient_id").type, path)
    table = _read_parquet(path, columns=["patient_id", "features"])
    checks.check_not_empty(table.num_rows, path, "feature")
    meta = _decode_metadata(table.schema.metadata)
    ids = checks.patient_ids(table.column("patient_id").to_pandas(), path).to_numpy(dtype=object)
    feats_col = table.column("features").combine_chunks()
    checks.check_features_column(feats_col, path)
    null_row = checks.first_null_row(feats_col)
    if null_row is not None:
        raise InputError(
            f"{path}: patient {ids[null_row]!r} has no feature vector (null)",
            hint="drop the row: a patient without the modality is simply left out of its table",
        )
    if pa.types.is_fixed_size_list(feats_col.type):
        dim = feats_col.type.list_size
        feats = feats_col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        feats = feats.reshape(len(ids), dim)
    else:  # plain list<float>: accept it if every row has the same length
        lengths = pa.compute.list_value_length(feats_col).to_numpy(zero_copy_only=False)
        if len(set(lengths.tolist())) != 1:
            odd = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InputError(
                f"{path}: column 'features' has rows of different lengths: patient "
                f"{ids[0]!r} has {lengths[0]}, patient {ids[odd]!r} has {lengths[odd]}",
                hint="every patient needs a feature vector of the same length",
            )
        feats = feats_col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        feats = feats.reshape(len(ids), int(lengths[0]))
    if "shape" in meta:
        feats = feats.reshape(len(ids), *meta["shape"])
    return ids, feats, meta
