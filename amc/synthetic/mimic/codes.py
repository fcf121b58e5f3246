"""diagnoses_icd.csv.gz and procedures_icd.csv.gz rows of the synthetic MIMIC-IV cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amc.synthetic.mimic.common import _sigmoid, _to_dt
from amc.synthetic.mimic.vocab import DX_CONCEPTS, PX_CONCEPTS


def _codes(rng, adm, admissions, s_code, code_mode, is_index, icd9):
    """diagnoses_icd and procedures_icd rows: risk-linked concepts, or 1-2 random ('sparse')."""
    p = adm["p"].to_numpy()
    n_adm = len(adm)
    s = s_code[p] + rng.normal(0, 0.3, n_adm)
    sparse = (code_mode[p] == "sparse") & is_index
    out = []
    for concepts, kind in ((DX_CONCEPTS, "dx"), (PX_CONCEPTS, "px")):
        a = np.array([c[2] for c in concepts])
        b = np.array([c[3] for c in concepts])
        k = len(concepts)
        has = rng.random((n_adm, k)) < _sigmoid(a[None, :] + 1.3 * b[None, :] * s[:, None] + 0.3)
        if kind == "dx":
            has[sparse] = False
            pick = rng.integers(0, k, (n_adm, 2))
            two = rng.random(n_adm) < 0.5
            rows = np.flatnonzero(sparse)
            has[rows, pick[rows, 0]] = True
            has[rows[two[rows]], pick[rows[two[rows]], 1]] = True
        else:
            has[sparse] = False
        a_idx, c_idx = np.nonzero(has)
        order = np.lexsort((rng.random(len(a_idx)), a_idx))
        a_idx, c_idx = a_idx[order], c_idx[order]
        seq = (
            np.arange(len(a_idx))
            - np.repeat(
                np.cumsum(np.bincount(a_idx, minlength=n_adm))
                - np.bincount(a_idx, minlength=n_adm),
                np.bincount(a_idx, minlength=n_adm),
            )
            + 1
        )
        code9 = np.array([c[0] for c in concepts])[c_idx]
        code10 = np.array([c[1] for c in concepts])[c_idx]
        df = pd.DataFrame(
            {
                "subject_id": admissions["subject_id"].to_numpy()[a_idx],
                "hadm_id": admissions["hadm_id"].to_numpy()[a_idx],
                "seq_num": seq,
                "icd_code": np.where(icd9[a_idx], code9, code10),
                "icd_version": np.where(icd9[a_idx], 9, 10),
            }
        )
        if kind == "px":
            admit = adm["admit"].to_numpy()[a_idx]
            los = (adm["disch"].to_numpy() - adm["admit"].to_numpy())[a_idx]
            day = _to_dt(admit + rng.uniform(0, 1, len(a_idx)) * los).dt.strftime("%Y-%m-%d")
            df.insert(3, "chartdate", day.to_numpy())
        out.append(df)
    return out[0], out[1]
