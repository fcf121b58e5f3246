"""Synthetic ADNI tables: visit plans and the rows of DXSUM_PDXCONV, UPENNBIOMK and ADNIMERGE."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from amc.synthetic.adni.subjects import _PHASES, _observed

_MARRY = ("Married", "Widowed", "Divorced", "Never married", "Unknown")
_RACE = ("White", "Black", "Asian", "More than one", "Am Indian/Alaskan", "Unknown")
_DX_TEXT = {0: "CN", 1: "MCI", 2: "Dementia"}

_VISITS = (("sc", -1), ("bl", 0), ("m06", 6), ("m12", 12), ("m24", 24), ("m36", 36))
_ADNI3_CODES = {"sc": "sc", "bl": "bl", "m12": "y1", "m24": "y2", "m36": "y3"}


def _visit_plan(subj: pd.Series, rng: np.random.Generator) -> list[tuple[str, str, int, int]]:
    """(VISCODE, VISCODE2, month, class at that visit) for each diagnosis visit."""
    n_follow = int(rng.choice([0, 1, 2, 3, 4], p=[0.15, 0.2, 0.25, 0.25, 0.15]))
    visits = [v for v in _VISITS if v[1] <= 0]
    if rng.random() < 0.5:  # about half the subjects have a screening row
        visits = [v for v in visits if v[0] != "sc"]
    follow = [v for v in _VISITS if v[1] > 0]
    if subj["phase"] == "ADNI3":
        follow = [v for v in follow if v[0] != "m06"]
    visits = visits + follow[:n_follow]
    cls = int(subj["cls"])
    convert_at = 10**6
    if cls == 1 and rng.random() < 0.35:
        convert_at = int(rng.choice([12, 24, 36]))
    elif cls == 0 and rng.random() < 0.07:
        convert_at = int(rng.choice([24, 36]))
    plan = []
    for code, month in visits:
        c = min(cls + 1, 2) if month >= convert_at else cls
        code1 = _ADNI3_CODES.get(code, code) if subj["phase"] == "ADNI3" else code
        plan.append((code1, code, month, c))
    return plan


def _bl_date(phase: str, rng: np.random.Generator) -> date:
    y0, y1 = _PHASES[phase][2]
    return date(int(rng.integers(y0, y1 + 1)), 1, 1) + timedelta(days=int(rng.integers(0, 365)))


def _visit_date(bl: date, month: int, rng: np.random.Generator) -> str:
    days = -28 if month < 0 else int(round(month * 30.44))
    return (bl + timedelta(days=days + int(rng.integers(-10, 11)) * (month > 0))).isoformat()


_DXCHANGE = {(0, 0): 1, (1, 1): 2, (2, 2): 3, (0, 1): 4, (1, 2): 5, (0, 2): 6}


def _dxsum_rows(subj: pd.Series, plan, bl: date, rng: np.random.Generator) -> list[dict]:
    rows = []
    prev = int(subj["cls"])
    for i, (code, code2, month, c) in enumerate(plan):
        row = {
            "PHASE": subj["phase"],
            "RID": int(subj["RID"]),
            "PTID": subj["PTID"],
            "VISCODE": code,
            "VISCODE2": code2,
            "EXAMDATE": _visit_date(bl, month, rng),
            "DXCURREN": "",
            "DXCHANGE": "",
            "DIAGNOSIS": str(c + 1),
        }
        if subj["phase"] == "ADNI1":
            row["DXCURREN"] = str(c + 1)
        elif subj["phase"] in ("ADNIGO", "ADNI2"):
            row["DXCHANGE"] = str(_DXCHANGE[(prev, c)])
            if rng.random() < 0.15:  # older export: DXCHANGE only
                row["DIAGNOSIS"] = ""
        prev = c
        if subj["no_dx"] or (month > 0 and rng.random() < 0.08):
            row.update(DIAGNOSIS="", DXCURREN="", DXCHANGE="")
        if code2 == "bl" and i > 0 and rng.random() < 0.25:
            # baseline without diagnosis: screening (visit before) carries it
            row.update(DIAGNOSIS="", DXCURREN="", DXCHANGE="")
        rows.append(row)
    return rows


def _fmt(x: float, nd: int = 1) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _censor(x: float, lo: float, hi: float, nd: int = 1) -> str:
    """Format an assay value; out of the measuring range as ADNI does ('<200', '>1700')."""
    if not np.isfinite(x):
        return ""
    if x < lo:
        return f"<{lo:g}"
    if x > hi:
        return f">{hi:g}"
    return f"{x:.{nd}f}"


def _biomk_rows(subj, plan, bl, rng) -> tuple[list[dict], str]:
    """UPENNBIOMK-style rows (CSF Elecsys + plasma) for the subject's biospecimen visits."""
    q = float(subj["q_biospecimen"])
    corruption = "none"
    noise = 0.06 + 0.25 * (1 - q)
    batch_shift = rng.normal(0, 0.05)
    if q < 0.55:
        corruption = str(rng.choice(["batch_shift", "assay_noise", "hemolysis"]))
        if corruption == "batch_shift":
            batch_shift += rng.choice([-1, 1]) * rng.uniform(0.25, 0.5)
        elif corruption == "assay_noise":
            noise *= 2.0
    has_csf = rng.random() < 0.75
    has_plasma = rng.random() < 0.8 or not has_csf
    rows = []
    visits = [v for v in plan if v[2] >= 0][:3]
    if rng.random() < 0.1 and len(visits) > 1:
        visits = visits[1:]  # first sample only at a follow-up
    for code, code2, month, c in visits:
        sev = max(
            -0.3, _observed(float(subj["sev_biospecimen"]) + 0.25 * (c - subj["cls"]), q, rng)
        )
        e = rng.normal(0, noise, 6) + batch_shift
        abeta = np.exp(np.log(1450) - 0.36 * sev + e[0] + rng.normal(0, 0.15))
        tau = np.exp(np.log(215) + 0.20 * sev + 0.004 * (subj["age"] - 73) + e[1])
        ptau = np.exp(np.log(19) + 0.27 * sev + e[2])
        nfl = np.exp(np.log(28) + 0.12 * sev + 0.02 * (subj["age"] - 73) + e[3])
        ptau217 = np.exp(np.log(0.14) + 0.45 * sev + 1.5 * e[4])
        ratio = 0.102 - 0.0085 * sev + 0.04 * e[5]
        if corruption == "hemolysis":
            nfl *= 1.6
            abeta *= 0.7
        csf_here = has_csf and rng.random() < 0.85
        pl_here = has_plasma and rng.random() < 0.9
        if not (csf_here or pl_here):
            continue
        rows.append(
            {
                "RID": int(subj["RID"]),
                "VISCODE": code,
                "VISCODE2": code2,
                "BATCH": f"UPENNBIOMK{int(rng.integers(9, 13))}",
                "RUNDATE": _visit_date(bl, month + 2, rng),
                "ABETA42": _censor(abeta, 200, 1700) if csf_here else "",
                "TAU": _censor(tau, 80, 1300) if csf_here else "",
                "PTAU": _censor(ptau, 8, 120, 2) if csf_here else "",
                "PLASMA_NFL": _fmt(nfl, 2) if pl_here and rng.random() > 0.05 else "",
                "PLASMA_PTAU217": _censor(ptau217, 0.03, 5.0, 3) if pl_here else "",
                "PLASMA_AB42_AB40": _fmt(ratio, 4) if pl_here and rng.random() > 0.1 else "",
                "COMMENT": "" if rng.random() > 0.05 else "Repeat of earlier run",
            }
        )
    return rows, corruption


def _adnimerge_rows(subj, plan, bl, apoe4: int, rng) -> tuple[list[dict], str]:
    """ADNIMERGE-style rows for the visits the subject attended (bl onward)."""
    q = float(subj["q_clinical"])
    corruption = "none"
    rater = 1.0 + 1.5 * (1 - q)
    drop = 0.03
    if q < 0.55:
        corruption = str(rng.choice(["rater_noise", "incomplete"]))
        if corruption == "rater_noise":
            rater *= 1.8
        else:
            drop = 0.45
    cls0 = int(subj["cls"])
    dx_bl = ["CN", "LMCI", "AD"][cls0]
    if cls0 == 1 and rng.random() < 0.4:
        dx_bl = "EMCI"
    if cls0 == 0 and rng.random() < 0.15:
        dx_bl = "SMC"
    gender = "Female" if subj["female"] else "Male"
    marry = _MARRY[int(rng.choice(5, p=[0.72, 0.12, 0.09, 0.04, 0.03]))]
    race = _RACE[int(rng.choice(6, p=[0.88, 0.05, 0.03, 0.02, 0.01, 0.01]))]
    eth = "Not Hisp/Latino" if rng.random() < 0.95 else "Hisp/Latino"
    rows = []
    for _code, code2, month, c in plan:
        if month < 0:
            continue
        sev = _observed(float(subj["sev_clinical"]) + 0.6 * (c - cls0) + month / 120, q, rng)

        def item(mean: float, slope: float, sd: float, sev: float = sev) -> float:
            val = mean + slope * sev + rng.normal(0, sd * rater)
            return val if rng.random() > drop else np.nan

        mmse = np.clip(np.round(item(29.0, -2.0, 1.3)), 0, 30)
        cdrsb = np.clip(np.round(item(0.2, 1.6, 0.9) * 2) / 2, 0, 18)
        adas13 = np.clip(item(9.5, 7.5, 4.5), 0, 85)
        adas11 = np.clip(adas13 * 0.68 + rng.normal(0, 1.0), 0, 70)
        faq = np.clip(np.round(item(0.5, 3.5, 3.0)), 0, 30)
        moca = np.clip(np.round(item(26.0, -3.0, 2.0)), 0, 30)
        if subj["phase"] == "ADNI1":
            moca = np.nan  # MoCA was introduced in ADNIGO/2
        ravlt = np.clip(np.round(item(44.0, -8.0, 9.0)), 0, 75)
        rows.append(
            {
                "RID": int(subj["RID"]),
                "COLPROT": subj["phase"],
                "ORIGPROT": subj["phase"],
                "PTID": subj["PTID"],
                "SITE": int(subj["PTID"][:3]),
                "VISCODE": code2,
                "EXAMDATE": _visit_date(bl, month, rng),
                "DX_bl": dx_bl,
                "AGE": f"{subj['age']:.1f}",
                "PTGENDER": gender,
                "PTEDUCAT": int(subj["educ"]),
                "PTETHCAT": eth,
                "PTRACCAT": race,
                "PTMARRY": marry,
                "APOE4": "" if apoe4 < 0 else str(apoe4),
                "CDRSB": _fmt(cdrsb, 1),
                "ADAS11": _fmt(adas11, 2),
                "ADAS13": _fmt(adas13, 2),
                "MMSE": _fmt(mmse, 0),
                "RAVLT_immediate": _fmt(ravlt, 0),
                "FAQ": _fmt(faq, 0),
                "MOCA": _fmt(moca, 0),
                "DX": _DX_TEXT[c] if month == 0 or rng.random() > 0.1 else "",
                "Month": max(month, 0),
            }
        )
    return rows, corruption
