"""Label leaks planted in the synthetic MIMIC-IV cohort, for the leak-guard tests."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from amc.synthetic.mimic.common import _to_dt
from amc.synthetic.mimic.vocab import DAY, HOUR

#: Planted leaks (see :func:`plant_leaks`): what a leak-free extractor must never output.
LEAK_NOTE_PHRASE = "expired"
LEAK_CODES = (("7981", 9), ("R99", 10))
LEAK_LAB_ITEMID = 50813  # lactate
LEAK_LAB_VALUE = 19.95  # two decimals: never produced by the lactate generator (one decimal)


def plant_leaks(rng, adm, admissions, label, death, icd9, labevents, diagnoses, notes):
    """Add the label leaks a real MIMIC-IV download carries, for the leak-guard tests.

    * in-hospital deaths: the index discharge summary says the patient expired, and the
      admission gets a death-stating ICD code (``7981`` / ``R99``), as real MIMIC-IV does;
    * deaths after discharge within the year: an addendum note to the index admission charted on
      the day of death says the patient expired (about 60 % of them), and a lactate of
      :data:`LEAK_LAB_VALUE` drawn 0.5-3 h after discharge under the index ``hadm_id``.

    Every leak is charted at or after the death or after discharge, so a feature extractor that
    honours the prediction time and the death policy never sees one. Appended rows only: the
    other rows of every table are unchanged.
    """
    ctx = {
        "adm": adm, "disch": adm["disch"].to_numpy(), "died": np.isfinite(adm["death"].to_numpy()),
        "is_index": adm["is_index"].to_numpy(), "pos": label[adm["p"].to_numpy()] == 1,
        "hadm": admissions["hadm_id"].to_numpy(), "subj": admissions["subject_id"].to_numpy(),
    }  # fmt: skip
    notes = _note_leaks(rng, ctx, death, notes)
    diagnoses = _code_leaks(ctx, icd9, diagnoses)
    labevents = _lab_leaks(rng, ctx, labevents)
    return labevents, diagnoses, notes


def _note_leaks(rng, ctx: dict, death: np.ndarray, notes: pd.DataFrame) -> pd.DataFrame:
    """Summaries of in-hospital deaths say 'Expired'; addenda on the day of a later death."""
    adm, died, hadm, subj = ctx["adm"], ctx["died"], ctx["hadm"], ctx["subj"]
    notes = notes.copy()
    dead_hadm = set(hadm[died].tolist())
    m = notes["hadm_id"].isin(dead_hadm).to_numpy()
    notes.loc[m, "text"] = [_say_expired(t) for t in notes.loc[m, "text"].to_numpy(dtype=object)]
    later = np.flatnonzero(ctx["is_index"] & ctx["pos"] & ~died)
    later = later[rng.random(len(later)) < 0.6]
    has_note = set(notes["hadm_id"].tolist())
    later = np.array([j for j in later if hadm[j] in has_note], dtype=np.int64)
    rows = []
    for j in later:
        last_seq = int(notes.loc[notes["hadm_id"] == hadm[j], "note_seq"].max())
        t = death[adm["p"].iat[j]]
        rows.append(
            (f"{subj[j]}-DS-{last_seq + 1}", subj[j], hadm[j], "DS", last_seq + 1,
             (t // DAY) * DAY, t + rng.uniform(2, 30) * HOUR,
             "Addendum:\nThe patient expired at home on ___. Family notified.\n")
        )  # fmt: skip
    add = pd.DataFrame(rows, columns=notes.columns)
    add["charttime"] = _to_dt(add["charttime"].to_numpy(dtype=float))
    add["storetime"] = _to_dt(add["storetime"].to_numpy(dtype=float))
    notes = pd.concat([notes, add], ignore_index=True)
    return notes


def _code_leaks(ctx: dict, icd9: np.ndarray, diagnoses: pd.DataFrame) -> pd.DataFrame:
    """A death-stating ICD code on the admission where the patient died."""
    hadm, subj = ctx["hadm"], ctx["subj"]
    dj = np.flatnonzero(ctx["died"])
    code = [LEAK_CODES[0] if icd9[j] else LEAK_CODES[1] for j in dj]
    seq = diagnoses.groupby("hadm_id")["seq_num"].max()
    dx = pd.DataFrame(
        {
            "subject_id": subj[dj],
            "hadm_id": hadm[dj],
            "seq_num": seq.reindex(hadm[dj]).fillna(0).astype(int).to_numpy() + 1,
            "icd_code": [c for c, _ in code],
            "icd_version": [v for _, v in code],
        }
    )
    diagnoses = pd.concat([diagnoses, dx], ignore_index=True)
    return diagnoses


def _lab_leaks(rng, ctx: dict, labevents: pd.DataFrame) -> pd.DataFrame:
    """A lactate of :data:`LEAK_LAB_VALUE` drawn after discharge under the index admission."""
    hadm, subj = ctx["hadm"], ctx["subj"]
    lj = np.flatnonzero(ctx["is_index"] & ctx["pos"] & ~ctx["died"])
    t = ctx["disch"][lj] + rng.uniform(0.5, 3, len(lj)) * HOUR
    lab = pd.DataFrame(
        {
            "labevent_id": labevents["labevent_id"].max() + 1 + np.arange(len(lj)),
            "subject_id": subj[lj],
            "hadm_id": pd.array(hadm[lj], dtype="Int64"),
            "specimen_id": 100_000_000 + rng.choice(9_000_000, len(lj), replace=False),
            "itemid": LEAK_LAB_ITEMID,
            "order_provider_id": "",
            "charttime": _to_dt(t),
            "storetime": _to_dt(t + HOUR),
            "value": f"{LEAK_LAB_VALUE:.2f}",
            "valuenum": LEAK_LAB_VALUE,
            "valueuom": "mmol/L",
            "ref_range_lower": 0.5,
            "ref_range_upper": 2.0,
            "flag": "abnormal",
            "priority": "STAT",
            "comments": "",
        }
    )
    labevents = pd.concat([labevents, lab], ignore_index=True)
    return labevents


_EXPIRED = "Discharge Disposition:\nExpired\n"


def _say_expired(text: str) -> str:
    """The discharge summary of a patient who died: disposition 'Expired'."""
    if "Discharge Disposition:\n" in text:
        return re.sub(
            r"Discharge Disposition:\n[^\n]*\n", "Discharge Disposition:\nExpired\n", text
        )
    head, sep, tail = text.partition("Discharge Condition:\n")
    return f"{head}Discharge Disposition:\nExpired\n\n{sep}{tail}"
