"""MIMIC-IV lab modality: per-item aggregates of ``labevents`` before the prediction time.

Layout (see :mod:`amc.features.mimic`): for every itemid of ``d_labitems`` with at least one
numeric ``valuenum`` anywhere in ``labevents`` (sorted; depends on the file only), six columns
``mean, min, max, last, count, missing`` over the numeric results of the index admission with
``admittime <= charttime <= min(admittime + window_hours, prediction_time)``. ``last`` is the
result with the latest ``(charttime, labevent_id)``. Absent items: zeros and ``missing = 1``.

Two engines give the same table:

* ``duckdb`` (default): one streaming DuckDB query over the gzip CSV aggregates per (admission,
  item) into a table of a temporary on-disk DuckDB database (capped at 1 GB, spilling to the same
  folder); the table is then read back in batches of a million rows straight into the output
  array. Peak memory is the output array plus a bounded working set, flat in the number of lab
  rows (``benchmarks/mimic_labs.py``: 2.5-20 M rows);
* ``pandas``: chunked ``read_csv`` with partial aggregates merged after every chunk; the
  reference implementation, used to cross-check the DuckDB query in the tests (about twice the
  CPU time of DuckDB, and its aggregate table grows with the number of (admission, item) pairs).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from amc.cores import available_cores
from amc.errors import InputError

logger = logging.getLogger(__name__)

LAB_STATS = ("mean", "min", "max", "last", "count", "missing")
ENGINES = ("duckdb", "pandas")
_AGG_COLUMNS = ["hadm_id", "itemid", "sum", "count", "min", "max", "last"]


def lab_feature_names(itemids: Sequence[int], labels: dict[int, str] | None = None) -> list[str]:
    """``"lab:<itemid>:<label>:<stat>"`` for each item and stat in :data:`LAB_STATS`."""
    labels = labels or {}
    return [f"lab:{i}:{labels.get(int(i), '')}:{s}" for i in itemids for s in LAB_STATS]


def _limits(index: pd.DataFrame, window_hours: float) -> pd.DataFrame:
    """(P rows) ``hadm_id``, ``admittime``, ``limit_time`` = min(admit + window, prediction)."""
    admit = pd.to_datetime(index["admittime"])
    limit = admit + pd.Timedelta(hours=window_hours)
    if "prediction_time" in index:
        limit = limit.where(limit <= index["prediction_time"], index["prediction_time"])
    return pd.DataFrame(
        {
            "hadm_id": index["hadm_id"].astype("int64").to_numpy(),
            "admittime": admit.to_numpy(),
            "limit_time": pd.to_datetime(limit).to_numpy(),
        }
    )


def extract_lab_features(
    raw_dir: Path,
    index: pd.DataFrame,
    window_hours: float = 48.0,
    chunksize: int = 1_000_000,
    engine: str = "duckdb",
    threads: int | None = None,
    max_items: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-item lab aggregates of the index admission, up to the prediction time.

    Parameters
    ----------
    raw_dir:
        MIMIC-IV root.
    index:
        :func:`amc.features.mimic.load_index_admissions` output (P rows).
    window_hours:
        Results with ``admittime <= charttime <= admittime + window_hours`` are used, and never
        after the index table's ``prediction_time`` column when it has one.
    chunksize:
        Rows per chunk of the pandas engine.
    engine:
        ``"duckdb"`` (default) or ``"pandas"`` (same result).
    threads:
        DuckDB threads (default: the CPU count).
    max_items:
        Keep only the ``max_items`` items with the most numeric results in the whole file
        (ties: lower itemid), ``None`` keeps every item. The set still depends on the file
        only. The output is P x 6 x items float32: at MIMIC-IV size (~180,000 index
        admissions, ~900 numeric items) all items make a ~3.9 GB array; 200 items ~0.9 GB.

    Returns
    -------
    ids : (P,) object array of patient_id, in ``index`` order.
    feats : (P, 6 * I) float32: for each of the I items ``mean, min, max, last, count, missing``.
    names : 6 * I feature names (see :func:`lab_feature_names`).
    """
    from amc.features import mimic

    _check_arguments(window_hours, chunksize, engine, max_items)
    raw_dir = Path(raw_dir)
    labels = _item_labels(raw_dir)
    mimic._hadm_set(index)
    path = mimic._path(raw_dir, mimic.LABEVENTS)
    mimic._check_columns(path, ["labevent_id", "subject_id", *_COLS])
    limits = _limits(index, window_hours)
    known = np.array(sorted(labels), dtype=np.int64)
    run = _duckdb_engine if engine == "duckdb" else _pandas_engine
    with run(path, limits, known, chunksize=chunksize, threads=threads) as (stats, batches):
        items = _select_items(stats["numeric_counts"], max_items)
        feats, used = _to_features(index, batches(items), items, path)
    names = lab_feature_names(items, labels)
    no_labs = int((feats[:, 5::6] == 1).all(axis=1).sum()) if names else len(index)
    logger.info(
        "labevents (%s): %d rows read, %d used (%d items, window %.0f h, up to the prediction "
        "time); dropped %d rows of %d itemids not in d_labitems, %d non-numeric rows; "
        "%d of %d index admissions without labs",
        engine,
        stats["rows"],
        used,
        len(items),
        window_hours,
        stats["unknown_rows"],
        stats["unknown_ids"],
        stats["non_numeric"],
        no_labs,
        len(index),
    )
    return index["patient_id"].astype(str).to_numpy(dtype=object), feats, names


_COLS = ["hadm_id", "itemid", "charttime", "valuenum"]


def _check_arguments(
    window_hours: float, chunksize: int, engine: str, max_items: int | None
) -> None:
    if window_hours <= 0:
        raise InputError(f"window_hours={window_hours} must be > 0")
    if chunksize < 1:
        raise InputError(f"chunksize={chunksize} must be >= 1")
    if max_items is not None and max_items < 1:
        raise InputError(f"sources.mimic.lab_max_items={max_items}", hint="null or >= 1")
    if engine not in ENGINES:
        raise InputError(f"sources.mimic.lab_engine={engine!r}", hint=f"one of {ENGINES}")


def _item_labels(raw_dir: Path) -> dict[int, str]:
    """itemid -> label of ``d_labitems`` (the items a lab result may have)."""
    from amc.features import mimic

    items = mimic._read(raw_dir, mimic.D_LABITEMS, ["itemid", "label"])
    return dict(
        zip(items["itemid"].astype("int64"), items["label"].fillna("").astype(str), strict=True)
    )


def _select_items(numeric_counts: pd.Series, max_items: int | None) -> list[int]:
    """Items with numeric results, sorted by itemid; the most frequent ``max_items`` if set."""
    counts = numeric_counts[numeric_counts > 0]
    if max_items is not None and len(counts) > max_items:
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_items]
        counts = counts[[k for k, _ in order]]
    return sorted(int(i) for i in counts.index)


def _to_features(
    index: pd.DataFrame, batches: Iterable[pd.DataFrame], items: Sequence[int], path: Path
) -> tuple[np.ndarray, int]:
    """Scatter aggregate batches into the (P, 6 * I) output; returns it and the results used.

    Batches (``_AGG_COLUMNS``, one row per (admission, item) of ``items``) are consumed one at a
    time, so memory is the output array plus one batch, whatever the number of lab rows.
    """
    n_pat = len(index)
    feats = np.zeros((n_pat, len(items), len(LAB_STATS)), dtype=np.float32)
    feats[:, :, LAB_STATS.index("missing")] = 1.0
    pos = pd.Series(np.arange(n_pat), index=index["hadm_id"].astype("int64").to_numpy())
    col = pd.Series(np.arange(len(items)), index=np.asarray(items, dtype=np.int64))
    used = 0
    for agg in batches:
        if agg.empty:
            continue
        rows = pos.reindex(agg["hadm_id"].to_numpy()).to_numpy()
        cols = col.reindex(agg["itemid"].to_numpy()).to_numpy()
        values = np.stack(
            [agg["sum"] / agg["count"], agg["min"], agg["max"], agg["last"]], axis=1
        ).astype(np.float32)
        if not np.isfinite(values).all():
            raise InputError(
                f"{path}: non-finite valuenum in the window",
                hint="valuenum must be a finite number or empty",
            )
        feats[rows, cols, :4] = values
        feats[rows, cols, 4] = agg["count"].to_numpy()
        feats[rows, cols, 5] = 0.0
        used += int(agg["count"].sum())
    return feats.reshape(n_pat, -1), used


# ------------------------------------------------------------------------------------ DuckDB
_SQL = """
WITH ev AS (
  SELECT TRY_CAST(hadm_id AS BIGINT) AS hadm_id, itemid, labevent_id, valuenum,
         charttime AS charttime_text, TRY_CAST(charttime AS TIMESTAMP) AS t
  FROM read_csv($path, header = true, auto_detect = false, compression = 'gzip',
                quote = '"', escape = '"', null_padding = true, strict_mode = false,
                columns = $columns)
), marked AS (
  SELECT ev.*, itemid IN (SELECT itemid FROM known) AS is_known,
         idx.hadm_id IS NOT NULL AS in_cohort,
         t >= idx.admittime AND t <= idx.limit_time AS in_window
  FROM ev LEFT JOIN idx ON ev.hadm_id = idx.hadm_id
)
SELECT CASE WHEN in_window AND is_known AND valuenum IS NOT NULL THEN hadm_id END AS hadm_id,
       itemid, is_known,
       count(*) AS n_rows, count(valuenum) AS n_numeric,
       count(*) FILTER (in_cohort AND is_known AND valuenum IS NOT NULL
                        AND t IS NULL AND charttime_text IS NOT NULL) AS n_bad_time,
       any_value(charttime_text) FILTER (in_cohort AND is_known AND valuenum IS NOT NULL
                        AND t IS NULL AND charttime_text IS NOT NULL) AS bad_time,
       sum(valuenum) AS sum, count(valuenum) AS count, min(valuenum) AS min,
       max(valuenum) AS max, arg_max(valuenum, (t, labevent_id)) AS last
FROM marked
GROUP BY ALL
"""

# every labevents column as text except the used ones: the file is read as MIMIC ships it
_TEXT = "VARCHAR"
_DUCK_COLUMNS = {
    "labevent_id": "BIGINT", "subject_id": _TEXT, "hadm_id": _TEXT, "specimen_id": _TEXT,
    "itemid": "BIGINT", "order_provider_id": _TEXT, "charttime": _TEXT, "storetime": _TEXT,
    "value": _TEXT, "valuenum": "DOUBLE", "valueuom": _TEXT, "ref_range_lower": _TEXT,
    "ref_range_upper": _TEXT, "flag": _TEXT, "priority": _TEXT, "comments": _TEXT,
}  # fmt: skip


@contextlib.contextmanager
def _duckdb_engine(
    path: Path, limits: pd.DataFrame, known: np.ndarray, **kw: Any
) -> Iterator[tuple[dict, Callable[[Sequence[int]], Iterator[pd.DataFrame]]]]:
    """One pass over the CSV into an on-disk aggregate table; batches of it are read back.

    The aggregate (one row per (admission, item), ~30 M at MIMIC-IV size) lives in a DuckDB
    database file in a temporary folder, not in Python: memory is bounded by ``memory_limit``
    (DuckDB spills to the same folder) plus one batch, flat in the number of lab rows.
    """
    import duckdb

    header = pd.read_csv(path, nrows=0).columns.tolist()
    columns = {c: _DUCK_COLUMNS.get(c, _TEXT) for c in header}
    with tempfile.TemporaryDirectory(prefix="amc-duckdb-") as work:
        threads = kw.get("threads") or available_cores()
        con = duckdb.connect(str(Path(work) / "labs.duckdb"), config={"threads": threads})
        try:
            con.execute(f"SET temp_directory = '{work}'")
            con.execute(f"SET memory_limit = '{_DUCK_MEMORY}'")
            con.execute("SET preserve_insertion_order = false")
            con.register("idx", limits)
            con.register("known", pd.DataFrame({"itemid": known}))
            try:
                con.execute(f"CREATE TABLE agg AS {_SQL}", {"path": str(path), "columns": columns})
            except duckdb.Error as err:
                raise InputError(
                    f"{path}: could not be parsed ({str(err).splitlines()[0]})",
                    hint="labevent_id and itemid must be integers, valuenum a number or empty",
                ) from err
            if _READ_MEMORY:
                # the aggregate is on disk: shrink DuckDB's cache before the output is allocated
                con.execute("CHECKPOINT")
                con.execute(f"SET memory_limit = '{_READ_MEMORY}'")
            yield _duckdb_stats(con, path), functools.partial(_duckdb_batches, con)
        finally:
            con.close()


_DUCK_MEMORY = "1GB"  # DuckDB's own cap; the aggregation spills to disk beyond it
_READ_MEMORY = "256MB"  # DuckDB's cap while the aggregate is read back into the output
_BATCH_ROWS = 1_000_000


def _duckdb_stats(con: Any, path: Path) -> dict:
    """Row counts of the whole file from the aggregate table (one row per item and status)."""
    res = con.execute(
        """SELECT itemid, is_known, sum(n_rows) AS n_rows, sum(n_numeric) AS n_numeric,
                  sum(n_bad_time) AS n_bad_time,
                  any_value(bad_time) FILTER (n_bad_time > 0) AS bad_time
           FROM agg GROUP BY ALL"""
    ).df()
    if res["n_bad_time"].fillna(0).sum():
        example = res.loc[res["n_bad_time"] > 0, "bad_time"].iloc[0]
        raise InputError(
            f"{path}: column 'charttime' has unparseable time {example!r}",
            hint="times must look like 2180-05-06 22:23:00",
        )
    is_known = res["is_known"].astype(bool)
    unknown = res[~is_known]
    return {
        "rows": int(res["n_rows"].sum()),
        "non_numeric": int((res["n_rows"] - res["n_numeric"]).sum()),
        "unknown_rows": int(unknown["n_rows"].sum()),
        "unknown_ids": int(unknown["itemid"].nunique()),
        "numeric_counts": res[is_known & (res["n_numeric"] > 0)]
        .groupby("itemid")["n_numeric"]
        .sum()
        .astype("int64"),
    }


def _duckdb_batches(con: Any, items: Sequence[int]) -> Iterator[pd.DataFrame]:
    """``_AGG_COLUMNS`` rows of the admissions' windows for ``items``, in batches."""
    con.register("selected", pd.DataFrame({"itemid": np.asarray(items, dtype=np.int64)}))
    reader = con.sql(
        """SELECT hadm_id::BIGINT AS hadm_id, itemid, sum, count, min, max, last FROM agg
           WHERE hadm_id IS NOT NULL AND itemid IN (SELECT itemid FROM selected)"""
    ).to_arrow_reader(_BATCH_ROWS)
    for batch in reader:
        yield batch.to_pandas()


# ------------------------------------------------------------------------------------ pandas
@contextlib.contextmanager
def _pandas_engine(
    path: Path, limits: pd.DataFrame, known: np.ndarray, **kw: Any
) -> Iterator[tuple[dict, Callable[[Sequence[int]], Iterator[pd.DataFrame]]]]:
    """The reference engine: the whole aggregate table in memory, one batch."""
    stats, merged = _pandas_aggregate(path, limits, known, kw["chunksize"])
    yield stats, lambda items: iter([merged[merged["itemid"].isin(list(items))]])


def _pandas_aggregate(
    path: Path, limits: pd.DataFrame, known: np.ndarray, chunksize: int
) -> tuple[dict, pd.DataFrame]:
    from amc.features import mimic

    by_hadm = limits.set_index("hadm_id")
    hadm_arr = by_hadm.index.to_numpy()
    known_set = set(known.tolist())
    stats = {"rows": 0, "non_numeric": 0, "unknown_rows": 0}
    unknown_ids: set[int] = set()
    seen_numeric: pd.Series = pd.Series(dtype="int64")
    parts: list[pd.DataFrame] = []
    merged: pd.DataFrame | None = None
    pending = 0
    reader = mimic._read_chunks(
        path.parents[1],
        mimic.LABEVENTS,
        ["labevent_id", *_COLS],
        chunksize,
        dtype={"hadm_id": "float64", "itemid": "int64", "valuenum": "float64", "charttime": str},
    )
    for chunk in tqdm(reader, desc="labevents chunks", unit="chunk", disable=None):
        stats["rows"] += len(chunk)
        numeric = chunk["valuenum"].notna()
        stats["non_numeric"] += int((~numeric).sum())
        is_known = chunk["itemid"].isin(known_set)
        unk = chunk.loc[~is_known, "itemid"]
        stats["unknown_rows"] += len(unk)
        unknown_ids.update(unk.unique().tolist())
        counts = chunk.loc[numeric & is_known, "itemid"].value_counts()
        seen_numeric = seen_numeric.add(counts, fill_value=0).astype("int64")
        keep = numeric & is_known & chunk["hadm_id"].isin(hadm_arr)
        sub = chunk.loc[keep, ["hadm_id", "itemid", "charttime", "valuenum", "labevent_id"]]
        if sub.empty:
            continue
        sub["hadm_id"] = sub["hadm_id"].astype("int64")
        t = mimic._to_time(sub["charttime"], str(path), "charttime").to_numpy()
        hadm = sub["hadm_id"].to_numpy()
        lo = by_hadm["admittime"].reindex(hadm).to_numpy()
        hi = by_hadm["limit_time"].reindex(hadm).to_numpy()
        in_win = (t >= lo) & (t <= hi)
        sub = sub.loc[in_win].assign(t=t[in_win])
        if sub.empty:
            continue
        parts.append(_aggregate(sub))
        pending += len(parts[-1])
        # merge when the pending partials outgrow the merged table (amortised, bounded memory)
        if pending > max(chunksize, 0 if merged is None else len(merged)):
            merged = _merge([] if merged is None else [merged], parts)
            parts, pending = [], 0
    if parts or merged is None:
        merged = _merge([] if merged is None else [merged], parts)
    stats["unknown_ids"] = len(unknown_ids)
    stats["numeric_counts"] = seen_numeric
    return stats, merged[_AGG_COLUMNS]


def _aggregate(sub: pd.DataFrame) -> pd.DataFrame:
    """Partial aggregates per (hadm_id, itemid): sum, count, min, max, last by (t, id)."""
    sub = sub.sort_values(["hadm_id", "itemid", "t", "labevent_id"], kind="stable")
    g = sub.groupby(["hadm_id", "itemid"], sort=True)
    out = g["valuenum"].agg(["sum", "count", "min", "max"])
    last = g[["t", "labevent_id", "valuenum"]].last()
    out["last_t"] = last["t"]
    out["last_id"] = last["labevent_id"]
    out["last"] = last["valuenum"]
    return out.reset_index()


def _merge(merged: list[pd.DataFrame], parts: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [*merged, *parts]
    if not frames:
        cols = ["hadm_id", "itemid", "sum", "count", "min", "max", "last_t", "last_id", "last"]
        return pd.DataFrame(columns=cols).astype({"hadm_id": "int64", "itemid": "int64"})
    both = pd.concat(frames, ignore_index=True)
    both = both.sort_values(["hadm_id", "itemid", "last_t", "last_id"], kind="stable")
    g = both.groupby(["hadm_id", "itemid"], sort=True)
    out = g.agg(
        sum=("sum", "sum"),
        count=("count", "sum"),
        min=("min", "min"),
        max=("max", "max"),
        last_t=("last_t", "last"),
        last_id=("last_id", "last"),
        last=("last", "last"),
    )
    return out.reset_index()
