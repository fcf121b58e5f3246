"""Patients, admissions and the cohort writer of the synthetic MIMIC-IV cohort."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from amc.data.store import atomic_path
from amc.synthetic.mimic.codes import _codes
from amc.synthetic.mimic.common import _sigmoid, _to_dt, _write_csv_gz
from amc.synthetic.mimic.labs import _labevents
from amc.synthetic.mimic.leaks import plant_leaks
from amc.synthetic.mimic.notes import _notes
from amc.synthetic.mimic.vocab import (
    ADMISSION_TYPE_P,
    ADMISSION_TYPES,
    ANCHOR_GROUPS,
    DAY,
    HOUR,
    ICD9_PROB,
    LAB_ITEMS,
    RACE_P,
    RACES,
    UNUSED_LAB_ITEMS,
)
from amc.synthetic.quality import quality_frame, write_quality

logger = logging.getLogger("amc.synthetic.mimic")


def _timeline(rng: np.random.Generator, n: int, r: np.ndarray, label: np.ndarray):
    """Admissions (index first) and death times per patient. Returns per-admission lists."""
    anchor_year = rng.integers(2110, 2190, n)
    index_year = anchor_year + rng.integers(0, 4, n)
    year_start = (
        pd.to_datetime(pd.Series(index_year.astype(str)), format="%Y")
        .astype("datetime64[s]")
        .astype(np.int64)
    ).to_numpy()
    a0 = year_start + rng.uniform(0, 360 * DAY, n)
    los0 = np.clip(np.exp(rng.normal(np.log(3.5) + 0.25 * r, 0.6)), 0.3, 40.0) * DAY
    n_adm = rng.choice([1, 2, 3], size=n, p=[0.5, 0.3, 0.2])
    u = rng.random((n, 8))
    adm_rows: list[tuple] = []  # (patient, admittime, dischtime, deathtime or nan, is_index)
    death = np.full(n, np.nan)
    dod_known = np.ones(n, dtype=bool)
    in_hosp = np.zeros(n, dtype=bool)
    for i in range(n):
        d0 = a0[i] + los0[i]
        if label[i] == 1:
            if u[i, 0] < 0.35:  # dies during the index admission
                death[i] = a0[i] + max(2 * HOUR, los0[i] * (0.3 + 0.7 * u[i, 1]))
                d0 = death[i]
                in_hosp[i] = True
                dod_known[i] = u[i, 2] > 0.3
            else:
                death[i] = d0 + DAY + u[i, 1] * (364 * DAY - (d0 - a0[i]) - 2 * DAY)
        elif u[i, 0] < 0.12:  # dies, but more than a year later: label 0
            death[i] = a0[i] + (370 + u[i, 1] * 1100) * DAY
        adm_rows.append((i, a0[i], d0, death[i] if in_hosp[i] else np.nan, True))
        prev_end = d0
        if in_hosp[i]:
            continue
        for k in range(n_adm[i] - 1):
            start = prev_end + (3 + rng.uniform(0, 400)) * DAY
            los = np.clip(np.exp(rng.normal(np.log(4.0), 0.6)), 0.3, 30.0) * DAY
            last = k == n_adm[i] - 2
            if np.isfinite(death[i]):
                if label[i] == 1 and last and u[i, 3] < 0.4 and death[i] - prev_end > 2 * DAY:
                    # the patient dies in a readmission: deathtime on that admission
                    los = min(los, 0.8 * (death[i] - prev_end))
                    adm_rows.append((i, death[i] - los, death[i], death[i], False))
                    dod_known[i] = u[i, 4] > 0.3
                    break
                if start + los > death[i] - DAY:
                    break
            adm_rows.append((i, start, start + los, np.nan, False))
            prev_end = start + los
    return anchor_year, index_year, adm_rows, death, dod_known, in_hosp


def generate_mimic_cohort(out_dir: Path, n_patients: int = 1500, seed: int = 0) -> dict:
    """Write a synthetic MIMIC-IV v2.2 cohort (gzip CSVs in ``hosp/`` and ``note/``).

    Parameters
    ----------
    out_dir:
        Target folder; ``hosp/``, ``note/``, ``quality.csv`` and ``README.txt`` are written in it
        (each file atomically).
    n_patients:
        Number of patients (subjects); each has 1-3 admissions, the first is the index admission.
    seed:
        Random seed; the same seed gives byte-identical files.

    Returns
    -------
    dict
        Row counts per file plus ``deaths_within_365d`` (the number of positive labels),
        ``in_hospital_deaths`` and ``index_without_note``.
    """
    if n_patients < 10:
        raise ValueError(f"n_patients={n_patients} must be >= 10")
    out_dir = Path(out_dir)
    # independent streams per component: changing one table's generator leaves the others
    # (spawn(5)[:4] == spawn(4): the leak stream leaves the other tables' draws unchanged)
    rng, rng_lab, rng_code, rng_note, rng_leak = (
        np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(5)
    )
    n = n_patients
    subject_id = 10_000_000 + np.sort(rng.choice(9_000_000, n, replace=False))
    z = _latent(rng, n)
    patients, t = _patients(rng, subject_id, z)
    adm = pd.DataFrame(t["adm_rows"], columns=["p", "admit", "disch", "death", "is_index"])
    admissions = _admissions(rng, adm, subject_id, z["r"])
    is_index = adm["is_index"].to_numpy()
    icd9 = rng.random(len(adm)) < np.asarray(ICD9_PROB)[t["group"][adm["p"].to_numpy()]]

    with tqdm(total=4, desc="synthesize mimic", disable=None) as bar:
        labevents = _labevents(
            rng_lab, adm, admissions, subject_id, z["s_lab"], z["lab_mode"], is_index
        )
        bar.update()
        diagnoses, procedures = _codes(
            rng_code, adm, admissions, z["s_code"], z["code_mode"], is_index, icd9
        )
        bar.update()
        notes, index_without_note = _notes(
            rng_note, adm, admissions, subject_id, z["s_note"], z["note_mode"], is_index,
            t["age_index"], t["male"],
        )  # fmt: skip
        labevents, diagnoses, notes = plant_leaks(
            rng_leak, adm, admissions, z["label"], t["death"], icd9, labevents, diagnoses, notes
        )
        bar.update()
        tables = {
            "hosp/patients.csv.gz": patients,
            "hosp/admissions.csv.gz": admissions,
            "hosp/d_labitems.csv.gz": _d_labitems(),
            "hosp/labevents.csv.gz": labevents,
            "hosp/diagnoses_icd.csv.gz": diagnoses,
            "hosp/procedures_icd.csv.gz": procedures,
            "note/discharge.csv.gz": notes,
        }
        _write(out_dir, tables, subject_id.astype(str), z, _readme(n, seed))
        bar.update()

    counts = {
        "patients": n,
        "admissions": len(adm),
        "labevents": len(labevents),
        "diagnoses_icd": len(diagnoses),
        "procedures_icd": len(procedures),
        "discharge_notes": len(notes),
        "deaths_within_365d": int(z["label"].sum()),
        "in_hospital_deaths": int(t["in_hosp"].sum()),
        "index_without_note": int(index_without_note),
    }
    logger.info("synthetic MIMIC-IV cohort in %s: %s", out_dir, counts)
    return counts


def _latent(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Latent risk ``r``, the label, per-modality latent copies, corruption modes and quality."""
    r = rng.normal(0, 1, n)
    label = (rng.random(n) < _sigmoid(-2.1 + 3.0 * r)).astype(int)
    s_lab = r + rng.normal(0, 0.45, n)
    s_code = r + rng.normal(0, 0.45, n)
    s_note = r + rng.normal(0, 0.45, n)

    lab_mode = rng.choice(["none", "noise", "missing"], size=n, p=[0.62, 0.28, 0.10])
    code_mode = rng.choice(["none", "sparse"], size=n, p=[0.72, 0.28])
    note_mode = rng.choice(["none", "template", "missing"], size=n, p=[0.62, 0.23, 0.15])
    q_lab = np.where(
        lab_mode == "none",
        rng.uniform(0.7, 1.0, n),
        np.where(lab_mode == "noise", rng.uniform(0.05, 0.35, n), 0.0),
    )
    q_code = np.where(code_mode == "none", rng.uniform(0.7, 1.0, n), rng.uniform(0.1, 0.3, n))
    q_note = np.where(
        note_mode == "none",
        rng.uniform(0.7, 1.0, n),
        np.where(note_mode == "template", rng.uniform(0.0, 0.1, n), 0.0),
    )
    # the clean-but-imperfect patients carry a little extra noise in proportion to 1 - q
    s_lab = np.where(
        lab_mode == "noise",
        0.3 * s_lab + rng.normal(0, 1.5, n),
        s_lab + rng.normal(0, 1, n) * (1 - q_lab),
    )
    s_code = s_code + rng.normal(0, 1, n) * (1 - q_code) * (code_mode == "none")
    s_note = s_note + rng.normal(0, 1, n) * (1 - q_note) * (note_mode == "none")
    return {
        "r": r, "label": label, "s_lab": s_lab, "s_code": s_code, "s_note": s_note,
        "lab_mode": lab_mode, "code_mode": code_mode, "note_mode": note_mode,
        "q_lab": q_lab, "q_code": q_code, "q_note": q_note,
    }  # fmt: skip


def _patients(
    rng: np.random.Generator, subject_id: np.ndarray, z: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, dict]:
    """patients.csv.gz and the admission timeline (index admission first, deaths)."""
    n, r, label = len(subject_id), z["r"], z["label"]
    anchor_year, index_year, adm_rows, death, dod_known, in_hosp = _timeline(rng, n, r, label)
    age_index = np.clip(np.rint(rng.normal(62 + 6 * r, 15)), 18, 91).astype(int)
    anchor_age = np.clip(age_index - (index_year - anchor_year), 18, 91)
    male = rng.random(n) < 0.5
    group = rng.integers(0, len(ANCHOR_GROUPS), n)
    dod = np.where(np.isfinite(death) & dod_known, death, np.nan)
    dod_str = np.where(
        np.isfinite(dod),
        np.datetime_as_string(_to_dt(np.nan_to_num(dod)).to_numpy(), unit="D"),
        "",
    )
    patients = pd.DataFrame(
        {
            "subject_id": subject_id,
            "gender": np.where(male, "M", "F"),
            "anchor_age": anchor_age,
            "anchor_year": anchor_year,
            "anchor_year_group": np.asarray(ANCHOR_GROUPS)[group],
            "dod": dod_str,
        }
    )
    timeline = {
        "adm_rows": adm_rows, "death": death, "in_hosp": in_hosp, "age_index": age_index,
        "male": male, "group": group,
    }  # fmt: skip
    return patients, timeline


def _admissions(
    rng: np.random.Generator, adm: pd.DataFrame, subject_id: np.ndarray, r: np.ndarray
) -> pd.DataFrame:
    """admissions.csv.gz rows, one per timeline admission."""
    n_adm = len(adm)
    p = adm["p"].to_numpy()
    hadm_id = 20_000_000 + rng.choice(9_999_999, n_adm, replace=False)
    adm_type = rng.choice(ADMISSION_TYPES, n_adm, p=ADMISSION_TYPE_P)
    emergency = np.isin(adm_type, ["EW EMER.", "URGENT", "EU OBSERVATION", "OBSERVATION ADMIT"])
    ed_reg = np.where(emergency, adm["admit"] - rng.uniform(2, 9, n_adm) * HOUR, np.nan)
    ed_out = np.where(emergency, adm["admit"] + rng.uniform(0.1, 1.5, n_adm) * HOUR, np.nan)
    died = np.isfinite(adm["death"].to_numpy())
    adm_loc = np.where(
        emergency,
        "EMERGENCY ROOM",
        rng.choice(
            [
                "PHYSICIAN REFERRAL",
                "TRANSFER FROM HOSPITAL",
                "CLINIC REFERRAL",
                "WALK-IN/SELF REFERRAL",
            ],
            n_adm,
        ),
    )
    sev = r[p] + rng.normal(0, 1, n_adm)
    dis_loc = np.where(
        died,
        "DIED",
        np.where(
            sev > 1.2,
            rng.choice(["SKILLED NURSING FACILITY", "REHAB", "HOSPICE"], n_adm),
            rng.choice(["HOME", "HOME HEALTH CARE", ""], n_adm, p=[0.6, 0.3, 0.1]),
        ),
    )
    admissions = pd.DataFrame(
        {
            "subject_id": subject_id[p],
            "hadm_id": hadm_id,
            "admittime": _to_dt(adm["admit"].to_numpy()),
            "dischtime": _to_dt(adm["disch"].to_numpy()),
            "deathtime": _to_dt(adm["death"].to_numpy()),
            "admission_type": adm_type,
            "admission_location": adm_loc,
            "discharge_location": dis_loc,
            "insurance": rng.choice(["Medicare", "Medicaid", "Other"], n_adm, p=[0.45, 0.15, 0.4]),
            "language": rng.choice(["ENGLISH", "?"], n_adm, p=[0.9, 0.1]),
            "marital_status": rng.choice(
                ["MARRIED", "SINGLE", "WIDOWED", "DIVORCED", ""],
                n_adm,
                p=[0.4, 0.3, 0.12, 0.1, 0.08],
            ),
            "race": rng.choice(RACES, n_adm, p=RACE_P),
            "edregtime": _to_dt(ed_reg),
            "edouttime": _to_dt(ed_out),
            "hospital_expire_flag": died.astype(int),
        }
    )
    # deathtime == dischtime exactly after minute rounding
    admissions.loc[died, "dischtime"] = admissions.loc[died, "deathtime"]
    return admissions


def _d_labitems() -> pd.DataFrame:
    return pd.DataFrame(
        [
            *LAB_ITEMS[["itemid", "label", "fluid", "category"]].itertuples(index=False),
            *UNUSED_LAB_ITEMS,
        ],
        columns=["itemid", "label", "fluid", "category"],
    ).sort_values("itemid")


def _write(
    out_dir: Path, tables: dict[str, pd.DataFrame], pid: np.ndarray, z: dict, readme: str
) -> None:
    """Every table as gzip CSV, the quality sidecar and the README (each atomically)."""
    for rel, table in tables.items():
        _write_csv_gz(table, out_dir / rel)
    write_quality(
        [
            quality_frame(pid, "lab", z["q_lab"], z["lab_mode"]),
            quality_frame(pid, "code", z["q_code"], z["code_mode"]),
            quality_frame(pid, "note", z["q_note"], z["note_mode"]),
        ],
        out_dir / "quality.csv",
    )
    with atomic_path(out_dir / "README.txt") as tmp:
        tmp.write_text(readme)


def _readme(n: int, seed: int) -> str:
    return (
        "SYNTHETIC DATA - NOT REAL PATIENTS.\n\n"
        f"A synthetic cohort of {n} patients in the MIMIC-IV v2.2 file layout (hosp/, note/),\n"
        f"generated by amc.synthetic.mimic.generate_mimic_cohort(seed={seed}). Every value is\n"
        "drawn from a simple generative model with a latent per-patient risk; no record is\n"
        "derived from MIMIC-IV or any other patient data. Column names follow MIMIC-IV so the\n"
        "same extraction code runs on the real credentialed download from PhysioNet.\n\n"
        "quality.csv: ground-truth per-patient modality quality (lab, note, code) and the\n"
        "corruption applied (none | noise | template | sparse | missing); for analysis only,\n"
        "never read by training.\n"
        "Label: death (patients.dod or admissions.deathtime) within 365 days of the admittime of\n"
        "the patient's first admission; patient_id = subject_id.\n"
    )
