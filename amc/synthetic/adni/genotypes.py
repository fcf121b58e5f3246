"""Synthetic ADNI genotypes: APOE SNPs, GWAS-hit variants carrying class signal and null
variants, with quality-dependent missing calls and errors; written as PLINK ``--recode A``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# (name, counted allele, base frequency, effect on log-odds of the counted allele per class step)
_GWAS_VARIANTS = (
    ("rs6656401", "A", 0.19, 0.45),
    ("rs6733839", "T", 0.39, 0.45),
    ("rs11136000", "T", 0.38, -0.40),
    ("rs3851179", "A", 0.36, -0.40),
    ("rs3764650", "G", 0.10, 0.50),
    ("rs9331896", "C", 0.38, -0.35),
    ("rs610932", "A", 0.42, -0.35),
    ("rs983392", "G", 0.40, -0.35),
    ("rs10792832", "A", 0.36, -0.35),
    ("rs4147929", "A", 0.19, 0.40),
    ("rs28834970", "C", 0.37, 0.35),
    ("rs11218343", "C", 0.04, -0.60),
    ("rs17125944", "C", 0.09, 0.45),
    ("rs10498633", "T", 0.22, -0.35),
    ("rs8093731", "T", 0.02, 0.70),
    ("rs35349669", "T", 0.47, 0.30),
    ("rs190982", "G", 0.41, -0.30),
    ("rs2718058", "G", 0.37, -0.30),
    ("rs1476679", "C", 0.29, -0.30),
    ("rs10948363", "G", 0.27, 0.35),
    ("rs9271192", "C", 0.28, 0.35),
    ("rs75932628", "T", 0.05, 0.80),
)
# APOE allele (2, 3, 4) frequencies per class (CN, MCI, AD): e4 enriched with disease.


def _genotypes(
    subjects: pd.DataFrame, apoe: dict[int, tuple[int, int]], n_variants: int, rng
) -> tuple[list[str], np.ndarray, dict[str, tuple[float, str]]]:
    """Variant names and dosages (P, V) float32 with NaN for missing calls, plus quality."""
    n = len(subjects)
    n_gwas = min(len(_GWAS_VARIANTS), max(0, n_variants - 2))
    n_null = max(0, n_variants - 2 - n_gwas)
    used = {429358, 7412} | {int(v[0][2:]) for v in _GWAS_VARIANTS}
    null_ids: list[int] = []
    while len(null_ids) < n_null:
        r = int(rng.integers(1000, 80_000_000))
        if r not in used:
            used.add(r)
            null_ids.append(r)
    alleles = np.array(list("ACGT"))
    names = ["rs429358_C", "rs7412_T"]
    names += [f"{v[0]}_{v[1]}" for v in _GWAS_VARIANTS[:n_gwas]]
    names += [f"rs{r}_{alleles[rng.integers(4)]}" for r in null_ids]
    cls = subjects["cls"].to_numpy()
    dos = np.empty((n, len(names)), dtype=np.float32)
    for i, rid in enumerate(subjects["RID"]):
        a1, a2 = apoe[int(rid)]
        dos[i, 0] = (a1 == 4) + (a2 == 4)  # rs429358 C allele <-> e4
        dos[i, 1] = (a1 == 2) + (a2 == 2)  # rs7412 T allele <-> e2
    for j, (_, _, p, beta) in enumerate(_GWAS_VARIANTS[:n_gwas]):
        logit = np.log(p / (1 - p)) + 2.6 * beta * (cls - 1.0)
        dos[:, 2 + j] = rng.binomial(2, 1 / (1 + np.exp(-logit)))
    maf = rng.uniform(0.03, 0.5, n_null)
    dos[:, 2 + n_gwas :] = rng.binomial(2, maf[None, :], size=(n, n_null))
    # column order as in a real file (by position): shuffle deterministically
    order = rng.permutation(len(names))
    names = [names[k] for k in order]
    dos = dos[:, order]
    quality: dict[str, tuple[float, str]] = {}
    for i, (pid, q) in enumerate(zip(subjects["PTID"], subjects["q_genomic"], strict=True)):
        corruption = "none"
        miss = 0.002 + 0.03 * (1 - q)
        err = 0.002 + 0.02 * (1 - q)
        if q < 0.55:
            corruption = str(rng.choice(["low_call_rate", "genotype_errors"]))
            if corruption == "low_call_rate":
                miss = 0.1 + 0.3 * (1 - q)
            else:
                err = 0.05 + 0.25 * (1 - q)
        flip = rng.random(len(names)) < err
        dos[i, flip] = rng.integers(0, 3, int(flip.sum()))
        dos[i, rng.random(len(names)) < miss] = np.nan
        quality[pid] = (q, corruption)
    return names, dos, quality


def _write_raw(
    path: Path, ids: list[str], sex: list[int], names: list[str], dos: np.ndarray
) -> None:
    """PLINK ``--recode A`` text: space separated, ``NA`` for missing."""
    tokens = np.array(["0", "1", "2", "NA"])
    with open(path, "w", newline="\n") as fh:
        fh.write(" ".join(["FID", "IID", "PAT", "MAT", "SEX", "PHENOTYPE", *names]) + "\n")
        for i, pid in enumerate(ids):
            codes = np.where(np.isnan(dos[i]), 3, np.nan_to_num(dos[i])).astype(np.int64)
            fh.write(f"{pid} {pid} 0 0 {sex[i]} -9 " + " ".join(tokens[codes]) + "\n")
