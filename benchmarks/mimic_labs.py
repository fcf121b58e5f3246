"""Lab-feature extraction at MIMIC-IV sizes: time and peak memory vs rows, pandas vs DuckDB.

A synthetic ``hosp/labevents.csv.gz`` with all 16 MIMIC-IV columns (realistic widths) is written
for each size (cached in ``benchmarks/results/cache``, git-ignored), with ``admissions`` /
``patients`` / ``d_labitems`` for ``--patients`` patients (one admission each, 24-72 h long).
Each engine then runs in a fresh Python process (so peak RSS is per run):

- ``duckdb``: :func:`amc.features.mimic_labs.extract_lab_features` with ``engine="duckdb"``
  (the pipeline's default): one DuckDB query streaming the gzip CSV, one thread per core;
- ``pandas``: the same function with ``engine="pandas"`` (chunked ``read_csv``, partial
  aggregates merged per chunk; single-threaded).

Printed per run: rows, wall seconds, CPU seconds of the process (all threads; on a shared
machine wall time includes waiting for a core, CPU time does not), peak RSS (``VmHWM``), RSS
before the work (imports) and the output array's size; the JSON goes to ``--out``. Extrapolate
to the real 118 M rows with the CPU seconds per million rows between the two largest sizes.
``--tree DIR`` runs another checkout's ``amc`` (e.g. ``git archive <rev> | tar -x -C DIR``) for
an old-vs-new comparison.

Usage::

    python benchmarks/mimic_labs.py --rows 2.5e6 5e6 1e7 2e7 --engines duckdb  # scaling series
    python benchmarks/mimic_labs.py --rows 5e6 --engines duckdb pandas           # both engines
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "results" / "cache"
sys.path.insert(0, str(ROOT))

N_ITEMS = 250  # distinct numeric itemids (MIMIC-IV has ~900; most rows hit the common ones)


_LAB_SQL = """
COPY (
WITH r AS (
  SELECT i, (hash(i, 11) % $patients)::BIGINT AS k,
         (hash(i, 12) % 1000000)::DOUBLE / 1e6 AS u_t,
         (hash(i, 13) % 1000000 + 1)::DOUBLE / 1000001 AS u1,
         (hash(i, 14) % 1000000)::DOUBLE / 1e6 AS u2,
         (hash(i, 15) % 1000000)::DOUBLE / 1e6 AS u_item
  FROM range($rows) t(i)
), v AS (
  SELECT *, round(exp(1.0 + 0.8 * sqrt(-2 * ln(u1)) * cos(2 * pi() * u2)), 2) AS val,
         TIMESTAMP '2150-01-01' + to_minutes((hash(k, 1) % 5256000)::BIGINT) AS admit,
         (1440 + hash(k, 2) % 2880)::BIGINT AS los
  FROM r
), w AS (SELECT *, admit + to_minutes((u_t * (los + 600) - 300)::BIGINT) AS t FROM v)
SELECT i AS labevent_id, 10000000 + k AS subject_id,
       CASE WHEN hash(i, 16) % 100 < 90 THEN 20000000 + k END AS hadm_id,
       10000000 + hash(i, 17) % 90000000 AS specimen_id,
       50000 + floor($items * pow(u_item, 2.5))::INT AS itemid,
       'P12345' AS order_provider_id,
       strftime(t, '%Y-%m-%d %H:%M:%S') AS charttime,
       strftime(t + INTERVAL 90 MINUTE, '%Y-%m-%d %H:%M:%S') AS storetime,
       val::VARCHAR AS value,
       CASE WHEN hash(i, 18) % 100 < 97 THEN val::VARCHAR END AS valuenum,
       'mg/dL' AS valueuom, 0.5 AS ref_range_lower, 5.0 AS ref_range_upper,
       CASE WHEN val > 5 THEN 'abnormal' END AS flag, 'ROUTINE' AS priority,
       CASE WHEN hash(i, 19) % 100 >= 95
            THEN 'IF FASTING, 70-100 NORMAL, >125 PROVISIONAL "DIABETES".' END AS comments
FROM w
) TO '{out}' (HEADER)
"""

_ADMISSIONS_SQL = """
COPY (
SELECT 10000000 + k AS subject_id, 20000000 + k AS hadm_id,
       strftime(admit, '%Y-%m-%d %H:%M:%S') AS admittime,
       strftime(admit + to_minutes(los), '%Y-%m-%d %H:%M:%S') AS dischtime,
       NULL::VARCHAR AS deathtime
FROM (SELECT k, TIMESTAMP '2150-01-01' + to_minutes((hash(k, 1) % 5256000)::BIGINT) AS admit,
             (1440 + hash(k, 2) % 2880)::BIGINT AS los FROM range($patients) t(k))
) TO '{out}' (HEADER, COMPRESSION gzip)
"""


def make_cohort(root: Path, n_rows: int, n_patients: int) -> Path:
    """Write (or reuse) a MIMIC-IV-shaped folder with ``n_rows`` lab events.

    Rows are a pure function of their number (DuckDB ``hash``), so a smaller file is a prefix of
    a larger one: one admission per patient (24-72 h), results from 5 h before admission to 5 h
    after discharge, 10% without ``hadm_id``, 3% non-numeric, 5% with a quoted comment holding
    commas and quotes, item frequencies skewed (a few items carry most rows, as in MIMIC-IV).
    DuckDB writes plain CSV (~125 bytes a row, like the real file) and ``gzip -1`` compresses it:
    ~10 s per million rows on one core instead of ~90 s with pandas.
    """
    import duckdb

    hosp = root / "hosp"
    if (hosp / "labevents.csv.gz").is_file():
        return root
    hosp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET enable_progress_bar = false")
    try:
        admissions = _ADMISSIONS_SQL.format(out=hosp / "admissions.csv.gz")
        con.execute(admissions, {"patients": n_patients})
        subj = 10_000_000 + np.arange(n_patients)
        pd.DataFrame({"subject_id": subj, "dod": ""}).to_csv(hosp / "patients.csv.gz", index=False)
        items = 50_000 + np.arange(N_ITEMS)
        labels = pd.DataFrame({"itemid": items, "label": [f"Item {i}" for i in items]})
        labels.to_csv(hosp / "d_labitems.csv.gz", index=False)
        plain = hosp / "labevents.csv.tmp"
        params = {"rows": n_rows, "patients": n_patients, "items": N_ITEMS}
        con.execute(_LAB_SQL.format(out=plain), params)
    finally:
        con.close()
    gz = hosp / "labevents.csv.gz.tmp"
    with gz.open("wb") as fh:
        subprocess.run(["gzip", "-1", "-c", str(plain)], stdout=fh, check=True)
    plain.unlink()
    gz.replace(hosp / "labevents.csv.gz")
    return root


def _hwm_kib() -> int:
    """Peak RSS of this process (VmHWM: reset by exec, unlike ru_maxrss which a child inherits
    from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_engine(engine: str, raw: Path, tree: str = "") -> dict:
    """One extraction in this process; returns seconds and RSS figures (KiB).

    ``tree``: another checkout whose ``amc`` is imported instead of this one (old vs new).
    """
    if tree:
        sys.path.insert(0, tree)
    from amc.features.mimic import extract_lab_features, load_index_admissions

    if engine == "duckdb":
        import duckdb  # noqa: F401  (import cost outside the timed part, like pandas)
    before = _hwm_kib()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    index = load_index_admissions(raw)
    _, feats, _ = extract_lab_features(raw, index, window_hours=48, engine=engine)
    n_out = int(feats[:, 4::6].sum())
    seconds = time.perf_counter() - start
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = end.ru_utime + end.ru_stime - cpu.ru_utime - cpu.ru_stime  # all threads
    peak = _hwm_kib()
    return {"engine": engine, "seconds": seconds, "cpu_seconds": cpu_s, "peak_kib": peak,
            "before_kib": before, "output_kib": feats.nbytes // 1024,
            "results_used": n_out}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, nargs="+", default=[1e6, 2e6, 4e6])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--engines", nargs="+", default=["duckdb", "pandas"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mimic_labs.json")
    ap.add_argument(
        "--tree",
        default="",
        help="import amc from this checkout instead (old vs new, e.g. "
        "`git archive f1474b6 | tar -x -C /tmp/old`); the label gets @tree",
    )
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_engine(args.worker[0], Path(args.worker[1]), args.worker[2])))
        return {}
    results = []
    for rows in (int(r) for r in args.rows):
        raw = make_cohort(CACHE / f"mimic_labs_{rows}_{args.patients}", rows, args.patients)
        for engine in args.engines:
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", engine, str(raw), args.tree],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            res = json.loads(proc.stdout.strip().splitlines()[-1]) | {"rows": rows}
            if args.tree:
                res["engine"] = f"{engine}@{Path(args.tree).name}"
            results.append(res)
            print(
                f"| {rows:>11,} | {res['engine']} | {res['seconds']:8.1f} s | "
                f"cpu {res['cpu_seconds']:7.1f} s | peak {res['peak_kib'] / 2**20:5.2f} GiB | "
                f"before {res['before_kib'] / 2**20:5.2f} GiB | "
                f"output {res['output_kib'] / 2**20:5.2f} GiB | used {res['results_used']:,} |",
                flush=True,
            )
    report = {
        "meta": {"python": platform.python_version(), "machine": platform.machine(),
                 "patients": args.patients, "items": N_ITEMS},
        "results": results,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
