"""labevents.csv.gz rows of the synthetic MIMIC-IV cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amc.synthetic.mimic.common import _to_dt
from amc.synthetic.mimic.vocab import (
    DAY,
    HOUR,
    LAB_ITEMS,
    LABEVENTS_COLUMNS,
    UNKNOWN_LAB_ITEMIDS,
)


def _labevents(rng, adm, admissions, subject_id, s_lab, lab_mode, is_index) -> pd.DataFrame:
    """labevents rows: in-window, later and pre-admission (ED) labs, outpatient labs, junk rows."""
    parts = [
        _admission_labs(rng, adm, admissions, subject_id, s_lab, lab_mode, is_index),
        _outpatient_labs(rng, adm["admit"].to_numpy()[is_index], subject_id),
        _unknown_item_labs(rng, adm, admissions, subject_id, is_index),
    ]
    rows = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    return _format(rng, pd.DataFrame(rows))


def _item_arrays() -> dict[str, np.ndarray]:
    return {
        "center": LAB_ITEMS["center"].to_numpy(dtype=float),
        "spread": LAB_ITEMS["spread"].to_numpy(dtype=float),
        "logscale": LAB_ITEMS["log"].to_numpy(dtype=int) == 1,
        "decimals": LAB_ITEMS["dec"].to_numpy(dtype=int),
        "item_ids": LAB_ITEMS["itemid"].to_numpy(dtype=np.int64),
    }


def _admission_labs(rng, adm, admissions, subject_id, s_lab, lab_mode, is_index) -> dict:
    """Results of every admission: in the first 48 h, later in the stay, and before (ED)."""
    n_adm = len(adm)
    p = adm["p"].to_numpy()
    admit = adm["admit"].to_numpy()
    los = adm["disch"].to_numpy() - admit
    n_items = len(LAB_ITEMS)
    center = LAB_ITEMS["center"].to_numpy(dtype=float)
    spread = LAB_ITEMS["spread"].to_numpy(dtype=float)
    logscale = LAB_ITEMS["log"].to_numpy(dtype=int) == 1
    loading = LAB_ITEMS["load"].to_numpy(dtype=float)
    decimals = LAB_ITEMS["dec"].to_numpy(dtype=int)
    p_base = LAB_ITEMS["p"].to_numpy(dtype=float)
    p_extra = LAB_ITEMS["p_sick"].to_numpy(dtype=float)
    item_ids = LAB_ITEMS["itemid"].to_numpy(dtype=np.int64)

    s = s_lab[p]
    mode = lab_mode[p]
    p_meas = np.clip(p_base[None, :] + p_extra[None, :] * np.maximum(s, 0)[:, None], 0, 0.98)
    p_meas = np.where(p_base[None, :] >= 1.0, 0.97, p_meas)
    measured = rng.random((n_adm, n_items)) < p_meas
    measured &= ~((mode == "missing") & is_index)[:, None]
    lam_in = 0.8 + 0.5 * np.maximum(s, 0)
    n_in = measured * (1 + rng.poisson(lam_in[:, None], (n_adm, n_items)))
    n_out = measured * rng.poisson(
        np.clip((los / DAY - 2.0) * 0.6, 0, 6)[:, None], (n_adm, n_items)
    )
    n_pre = measured * (rng.random((n_adm, n_items)) < 0.15)
    total = (n_in + n_out + n_pre).ravel()
    pair = np.repeat(np.arange(n_adm * n_items), total)
    a_idx, i_idx = pair // n_items, pair % n_items
    # which kind of row (in-window / after / before) by position inside the pair's block
    pos = np.arange(len(pair)) - np.repeat(np.cumsum(total) - total, total)
    nin, nout = n_in.ravel()[pair], n_out.ravel()[pair]
    window = np.minimum(48 * HOUR, los[a_idx])
    t = np.where(
        pos < nin,
        rng.uniform(0.02, 0.999, len(pair)) * window,
        np.where(
            pos < nin + nout,
            48 * HOUR + rng.uniform(0.05, 0.999, len(pair)) * np.maximum(los[a_idx] - 48 * HOUR, 0),
            -rng.uniform(0.5, 6, len(pair)) * HOUR,
        ),
    )
    # a later row can only exist for a stay longer than the window
    t = np.where((pos >= nin) & (pos < nin + nout) & (los[a_idx] <= 49 * HOUR), -2 * HOUR, t)
    charttime = admit[a_idx] + t
    # values: latent + per admission-item offset + measurement noise (heavy for "noise" mode)
    offset = rng.normal(0, 0.6, (n_adm, n_items))
    noise_sd = np.where(mode == "noise", 2.5, 0.35)
    z = (
        1.2 * loading[i_idx] * s[a_idx]
        + offset.ravel()[pair]
        + rng.normal(0, 1, len(pair)) * noise_sd[a_idx]
    )
    value = np.where(
        logscale[i_idx],
        center[i_idx] * np.exp(spread[i_idx] * z),
        center[i_idx] + spread[i_idx] * z,
    )
    value = np.maximum(value, 0.0)
    value = np.round(value * 10.0 ** decimals[i_idx]) / 10.0 ** decimals[i_idx]
    itemid = item_ids[i_idx]
    adm_hadm = admissions["hadm_id"].to_numpy()[a_idx].astype(float)
    subj = subject_id[p][a_idx]
    dec = decimals[i_idx]
    return {
        "subject_id": subj, "hadm_id": adm_hadm, "itemid": itemid, "charttime": charttime,
        "valuenum": value, "dec": dec, "item": i_idx,
    }  # fmt: skip


def _outpatient_labs(rng, first_admit: np.ndarray, subject_id: np.ndarray) -> dict:
    """Outpatient labs (no hadm_id), days to months before the first admission."""
    a = _item_arrays()
    center, spread, logscale, decimals = a["center"], a["spread"], a["logscale"], a["decimals"]
    n_items = len(LAB_ITEMS)
    n_out_pat = rng.poisson(4, len(first_admit)) * (rng.random(len(first_admit)) < 0.4)
    o_p = np.repeat(np.arange(len(first_admit)), n_out_pat)
    o_item = rng.integers(0, n_items, len(o_p))
    o_time = first_admit[o_p] - rng.uniform(5, 300, len(o_p)) * DAY
    o_val = np.where(
        logscale[o_item],
        center[o_item] * np.exp(spread[o_item] * rng.normal(0, 1, len(o_p))),
        center[o_item] + spread[o_item] * rng.normal(0, 1, len(o_p)),
    )
    o_val = np.round(np.maximum(o_val, 0) * 10.0 ** decimals[o_item]) / 10.0 ** decimals[o_item]
    return {
        "subject_id": subject_id[o_p], "hadm_id": np.full(len(o_p), np.nan),
        "itemid": a["item_ids"][o_item], "charttime": o_time, "valuenum": o_val,
        "dec": decimals[o_item], "item": o_item,
    }  # fmt: skip


def _unknown_item_labs(rng, adm, admissions, subject_id, is_index) -> dict:
    """Results of itemids absent from d_labitems, inside the index window."""
    admit = adm["admit"].to_numpy()
    los = adm["disch"].to_numpy() - admit
    p = adm["p"].to_numpy()
    idx_adm = np.flatnonzero(is_index)
    u_a = rng.choice(idx_adm, size=max(3, len(idx_adm) // 20))
    u_item = rng.choice(UNKNOWN_LAB_ITEMIDS, len(u_a))
    u_time = admit[u_a] + rng.uniform(0.1, 0.9, len(u_a)) * np.minimum(48 * HOUR, los[u_a])
    u_val = np.round(rng.uniform(1, 100, len(u_a)), 1)
    return {
        "subject_id": subject_id[p][u_a],
        "hadm_id": admissions["hadm_id"].to_numpy()[u_a].astype(float),
        "itemid": u_item, "charttime": u_time, "valuenum": u_val,
        "dec": np.ones(len(u_a), dtype=int), "item": np.full(len(u_a), -1),
    }  # fmt: skip


def _format(rng, df: pd.DataFrame) -> pd.DataFrame:
    """The MIMIC-IV columns: value text, junk results, flags, specimens, ids and store times."""
    # non-numeric results ("___" de-identified, "ERROR"): value text, empty valuenum
    junk = rng.random(len(df)) < 0.01
    item = df["item"].to_numpy()
    known = item >= 0
    lower = np.where(known, LAB_ITEMS["lower"].to_numpy(dtype=float)[item], np.nan)
    upper = np.where(known, LAB_ITEMS["upper"].to_numpy(dtype=float)[item], np.nan)
    uom = np.where(known, LAB_ITEMS["uom"].to_numpy(dtype=object)[item], "units")
    val = df["valuenum"].to_numpy()
    dec_arr = df["dec"].to_numpy()
    text = np.empty(len(df), dtype=object)
    for d in np.unique(dec_arr):
        m = dec_arr == d
        text[m] = np.char.mod(f"%.{d}f", val[m])
    text[junk] = rng.choice(["___", "ERROR"], int(junk.sum()))
    val = np.where(junk, np.nan, val)
    flag = np.where(~junk & ((val < lower) | (val > upper)), "abnormal", "")
    df = pd.DataFrame(
        {
            "subject_id": df["subject_id"].to_numpy(),
            "hadm_id": df["hadm_id"].astype("Int64"),
            "specimen_id": 0,
            "itemid": df["itemid"].to_numpy(),
            "order_provider_id": np.where(
                rng.random(len(df)) < 0.7,
                np.char.add("P", rng.integers(10000, 99999, len(df)).astype(str)),
                "",
            ),
            "t": df["charttime"].to_numpy(),
            "value": text,
            "valuenum": val,
            "valueuom": uom,
            "ref_range_lower": lower,
            "ref_range_upper": upper,
            "flag": flag,
            "priority": rng.choice(["STAT", "ROUTINE", ""], len(df), p=[0.45, 0.45, 0.1]),
            "comments": np.where(junk, "___", ""),
        }
    )
    df["t"] = (df["t"] // 60) * 60
    df = df.sort_values(["subject_id", "t", "itemid"], kind="stable").reset_index(drop=True)
    # one specimen per (subject, charttime) draw, as in MIMIC
    key = df["subject_id"].to_numpy().astype(np.int64) * 10**9 + (df["t"].to_numpy() // 60)
    _, spec = np.unique(key.astype(np.int64), return_inverse=True)
    spec_ids = 10_000_000 + rng.choice(89_999_999, int(spec.max()) + 1, replace=False)
    df["specimen_id"] = spec_ids[spec.ravel()]
    df["labevent_id"] = np.arange(1, len(df) + 1)
    df["charttime"] = _to_dt(df["t"].to_numpy())
    df["storetime"] = _to_dt(df["t"].to_numpy() + rng.uniform(0.3, 4, len(df)) * HOUR)
    return df.loc[:, list(LABEVENTS_COLUMNS)]
