"""Peak memory of reading a PLINK ``.raw`` genotype file: streaming reader vs naive pandas.

Scenarios (each in a fresh Python process, so peak RSS is per scenario):

- ``read_plink_raw``: :func:`amc.features.plink.read_plink_raw` (line-by-line, preallocated
  float32 output),
- ``read_plink_bed``: :func:`amc.features.plink.read_plink_bed` on the binary ``.bed/.bim/.fam``
  fileset holding the same dosages (bed-reader, blocks of variants into the preallocated
  output; ADNI ships this format),
- ``pandas``: the naive ``pd.read_csv(path, sep=" ")`` followed by ``.iloc[:, 6:]`` converted to
  float32: the reference a user would write first.

The file (default 500 subjects x 135,595 variants, the paper's ADNI count, ~1 % ``NA``) is
generated once, deterministically, in ``benchmarks/results/cache`` (git-ignored). For each
scenario: wall time, peak RSS, the RSS the process had before reading (imports), and
``(peak - before) / output size``, the memory used per byte of the (P, V) float32 result (1.0 is
the floor); and the pandas / streaming ratio of that extra memory.

Usage::

    python benchmarks/plink_memory.py                 # 500 x 135,595
    python benchmarks/plink_memory.py --quick         # 200 x 20,000
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))


def make_raw(path: Path, n_subjects: int, n_variants: int, seed: int = 0) -> Path:
    """Write (or reuse) a PLINK ``--recode A`` file with 0/1/2 dosages and ~1 % ``NA``."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    maf = rng.uniform(0.02, 0.5, n_variants)
    names = [f"rs{1000 + 7 * j}_{'ACGT'[j % 4]}" for j in range(n_variants)]
    tokens = np.array([b"0", b"1", b"2", b"NA"])
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(
            (" ".join(["FID", "IID", "PAT", "MAT", "SEX", "PHENOTYPE", *names]) + "\n").encode()
        )
        for i in range(n_subjects):
            codes = rng.binomial(2, maf)
            codes[rng.random(n_variants) < 0.01] = 3
            pid = f"{i % 900 + 2:03d}_S_{i:04d}"
            fh.write(f"{pid} {pid} 0 0 {1 + i % 2} -9 ".encode())
            fh.write(b" ".join(tokens[codes].tolist()) + b"\n")
    tmp.replace(path)
    return path


def _rss_now() -> int:
    """Current resident set size in bytes (Linux /proc; falls back to the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss() -> int:
    """Peak RSS in bytes: VmHWM (reset at exec; ru_maxrss is inherited from the parent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_bed(raw: Path) -> Path:
    """The binary fileset with the dosages of ``raw`` (written once, next to it)."""
    bed = raw.with_suffix(".bed")
    if bed.is_file():
        return bed
    import bed_reader

    from amc.features.plink import read_plink_raw

    ids, dos, names = read_plink_raw(raw)
    sid = [n.rsplit("_", 1)[0] for n in names]
    a1 = [n.rsplit("_", 1)[1] for n in names]
    tmp = raw.with_name(raw.stem + ".tmp.bed")
    bed_reader.to_bed(
        tmp, dos, properties={"fid": ids, "iid": ids, "sid": sid, "allele_1": a1,
                              "allele_2": ["N"] * len(sid)},
    )  # fmt: skip
    for ext in (".bim", ".fam", ".bed"):
        tmp.with_suffix(ext).replace(bed.with_suffix(ext))
    return bed


def child(method: str, path: str) -> None:
    """Run one scenario in this (fresh) process and print a JSON line."""
    import pandas as pd  # noqa: F401  (same imports in both scenarios)

    from amc.features.plink import read_plink_bed, read_plink_raw

    before = _rss_now()
    t0 = time.perf_counter()
    if method == "read_plink_raw":
        ids, dos, names = read_plink_raw(path)
    elif method == "read_plink_bed":
        ids, dos, names = read_plink_bed(Path(path).with_suffix(".bed"))
    elif method == "pandas":
        import pandas as pd

        df = pd.read_csv(path, sep=" ")
        ids = df["IID"].to_numpy()
        dos = df.iloc[:, 6:].to_numpy(dtype=np.float32)
        names = list(df.columns[6:])
        del df
    else:
        raise SystemExit(f"unknown method {method}")
    wall = time.perf_counter() - t0
    peak = _peak_rss()
    print(
        json.dumps(
            {
                "method": method,
                "wall_s": wall,
                "rss_before_bytes": before,
                "peak_rss_bytes": peak,
                "output_bytes": int(dos.nbytes),
                "shape": list(dos.shape),
                "n_missing": int(np.isnan(dos).sum()),
                "checksum": float(np.nansum(dos[:, :: max(1, dos.shape[1] // 1000)])),
                "n_ids": len(ids),
                "n_names": len(names),
            }
        )
    )


def run(method: str, path: Path, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"method": method, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"method": method, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--subjects", type=int, default=500)
    ap.add_argument("--variants", type=int, default=135_595)
    ap.add_argument("--quick", action="store_true", help="200 subjects x 20,000 variants")
    ap.add_argument("--timeout", type=float, default=900.0, help="per scenario, seconds")
    ap.add_argument("--out", type=Path, default=RESULTS / "plink_memory.json")
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.quick:
        args.subjects, args.variants = 200, 20_000
    path = RESULTS / "cache" / f"plink_{args.subjects}x{args.variants}.raw"
    t0 = time.perf_counter()
    make_raw(path, args.subjects, args.variants)
    print(
        f"file: {path} ({path.stat().st_size / 2**20:.1f} MiB, made/reused in "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    make_bed(path)
    methods = ("read_plink_raw", "read_plink_bed", "pandas")
    rows = [run(m, path, args.timeout) for m in methods]
    mib = 2**20
    print(
        f"\n{'method':16s} {'wall s':>8s} {'peak MiB':>9s} {'extra MiB':>10s} "
        f"{'output MiB':>11s} {'extra/output':>13s}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['method']:16s} error: {r['error']}")
            continue
        r["extra_bytes"] = r["peak_rss_bytes"] - r["rss_before_bytes"]
        r["extra_over_output"] = r["extra_bytes"] / r["output_bytes"]
        print(
            f"{r['method']:16s} {r['wall_s']:8.1f} {r['peak_rss_bytes'] / mib:9.0f} "
            f"{r['extra_bytes'] / mib:10.0f} {r['output_bytes'] / mib:11.0f} "
            f"{r['extra_over_output']:13.2f}"
        )
    ok = [r for r in rows if "error" not in r and r["method"] != "read_plink_bed"]
    summary: dict = {}
    if len(ok) == 2:
        ours, naive = ok
        same = ours["shape"] == naive["shape"] and ours["n_missing"] == naive["n_missing"]
        summary = {
            "pandas_over_streaming_extra_memory": naive["extra_bytes"] / ours["extra_bytes"],
            "pandas_over_streaming_wall": naive["wall_s"] / ours["wall_s"],
            "same_result": bool(same and abs(ours["checksum"] - naive["checksum"]) < 1e-3),
        }
        mem_x = summary["pandas_over_streaming_extra_memory"]
        wall_x = summary["pandas_over_streaming_wall"]
        print(
            f"\npandas / streaming: extra memory x{mem_x:.2f}, wall time x{wall_x:.2f}; "
            f"same result: {summary['same_result']}"
        )
    result = {
        "benchmark": "plink_memory",
        "subjects": args.subjects,
        "variants": args.variants,
        "file_bytes": path.stat().st_size,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "scenarios": rows,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
