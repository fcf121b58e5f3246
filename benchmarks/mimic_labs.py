"""Lab-feature extraction at MIMIC-IV sizes: time and peak memory vs rows, pandas vs DuckDB.

A synthetic ``hosp/labevents.csv.gz`` with all 16 MIMIC-IV columns (realistic widths) is written
for each size (cached in ``benchmarks/results/cache``, git-ignored), with ``admissions`` /
``patients`` / ``d_labitems`` for ``--patients`` patients (one admission each, 24-72 h long).
Each engine then runs in a fresh Python process (so peak RSS is per run):

- ``duckdb``: :func:`amc.features.mimic_labs.extract_lab_features` with ``engine="duckdb"``
  (the pipeline's default): one DuckDB query streaming the gzip CSV, one thread per core;
- ``pandas``: the same function with ``engine="pandas"`` (chunked ``read_csv``, partial
  aggregates merged per chunk; single-threaded).

Printed: rows, seconds, rows/s, peak RSS and RSS before the work (imports), per engine, and the
time ratio pandas / duckdb; the JSON goes to ``--out``. Extrapolate to the real 118 M rows with
the rows/s of the largest size (both engines are linear in rows; memory is flat in rows).

Usage::

    python benchmarks/mimic_labs.py --rows 1e6 2e6 4e6          # a scaling series
    python benchmarks/mimic_labs.py --rows 2e7 --engines pandas  # one real-size point
"""

from __future__ import annotations

import argparse
import gzip
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


def _gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), compresslevel=1, mtime=0))


def make_cohort(root: Path, n_rows: int, n_patients: int, seed: int = 0) -> Path:
    """Write (or reuse) a MIMIC-IV-shaped folder with ``n_rows`` lab events."""
    if (root / "hosp" / "labevents.csv.gz").is_file():
        return root
    rng = np.random.default_rng(seed)
    subj = 10_000_000 + np.arange(n_patients)
    hadm = 20_000_000 + np.arange(n_patients)
    admit = np.datetime64("2150-01-01T00:00") + rng.integers(0, 10 * 365 * 24 * 60, n_patients)
    los = rng.integers(24 * 60, 72 * 60, n_patients)
    adm = pd.DataFrame(
        {
            "subject_id": subj,
            "hadm_id": hadm,
            "admittime": pd.to_datetime(admit),
            "dischtime": pd.to_datetime(admit + los.astype("timedelta64[m]")),
            "deathtime": "",
        }
    )
    _gz(root / "hosp/admissions.csv.gz", adm.to_csv(index=False))
    _gz(
        root / "hosp/patients.csv.gz",
        pd.DataFrame({"subject_id": subj, "dod": ""}).to_csv(index=False),
    )
    items = 50_000 + np.arange(N_ITEMS)
    _gz(
        root / "hosp/d_labitems.csv.gz",
        pd.DataFrame({"itemid": items, "label": [f"Item {i}" for i in items]}).to_csv(index=False),
    )
    out = root / "hosp" / "labevents.csv.gz"
    tmp = out.with_suffix(".tmp")
    header = (
        "labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,charttime,"
        "storetime,value,valuenum,valueuom,ref_range_lower,ref_range_upper,flag,priority,"
        "comments\n"
    )
    p_item = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    p_item /= p_item.sum()
    with gzip.open(tmp, "wt", compresslevel=1) as fh:
        fh.write(header)
        done = 0
        while done < n_rows:
            n = min(1_000_000, n_rows - done)
            who = rng.integers(0, n_patients, n)
            t = admit[who] + (rng.random(n) * (los[who] + 600) - 300).astype("timedelta64[m]")
            val = np.round(rng.lognormal(1.0, 0.8, n), 2)
            chunk = pd.DataFrame(
                {
                    "labevent_id": done + np.arange(n),
                    "subject_id": subj[who],
                    "hadm_id": np.where(rng.random(n) < 0.9, hadm[who].astype(str), ""),
                    "specimen_id": rng.integers(10**7, 10**8, n),
                    "itemid": rng.choice(items, n, p=p_item),
                    "order_provider_id": "P12345",
                    "charttime": pd.to_datetime(t).strftime("%Y-%m-%d %H:%M:%S"),
                    "storetime": pd.to_datetime(t + 90).strftime("%Y-%m-%d %H:%M:%S"),
                    "value": val.astype(str),
                    "valuenum": np.where(rng.random(n) < 0.97, val.astype(str), ""),
                    "valueuom": "mg/dL",
                    "ref_range_lower": 0.5,
                    "ref_range_upper": 5.0,
                    "flag": np.where(val > 5, "abnormal", ""),
                    "priority": "ROUTINE",
                    "comments": "",
                }
            )
            chunk.to_csv(fh, header=False, index=False)
            done += n
    tmp.replace(out)
    return root


def _hwm_kib() -> int:
    """Peak RSS of this process (VmHWM: reset by exec, unlike ru_maxrss which a child inherits
    from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_engine(engine: str, raw: Path) -> dict:
    """One extraction in this process; returns seconds and RSS figures (KiB)."""
    from amc.features.mimic import extract_lab_features, load_index_admissions

    if engine == "duckdb":
        import duckdb  # noqa: F401  (import cost outside the timed part, like pandas)
    before = _hwm_kib()
    start = time.perf_counter()
    index = load_index_admissions(raw)
    _, feats, _ = extract_lab_features(raw, index, window_hours=48, engine=engine)
    n_out = int(feats[:, 4::6].sum())
    seconds = time.perf_counter() - start
    peak = _hwm_kib()
    return {"engine": engine, "seconds": seconds, "peak_kib": peak, "before_kib": before,
            "results_used": n_out}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, nargs="+", default=[1e6, 2e6, 4e6])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--engines", nargs="+", default=["duckdb", "pandas"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mimic_labs.json")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_engine(args.worker[0], Path(args.worker[1]))))
        return {}
    results = []
    for rows in (int(r) for r in args.rows):
        raw = make_cohort(CACHE / f"mimic_labs_{rows}_{args.patients}", rows, args.patients)
        for engine in args.engines:
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", engine, str(raw)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            res = json.loads(proc.stdout.strip().splitlines()[-1]) | {"rows": rows}
            results.append(res)
            print(
                f"| {rows:>11,} | {engine:6} | {res['seconds']:8.1f} s | "
                f"{rows / res['seconds']:>10,.0f} rows/s | peak {res['peak_kib'] / 2**20:5.2f} GiB "
                f"| before {res['before_kib'] / 2**20:5.2f} GiB | used {res['results_used']:,} |",
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
