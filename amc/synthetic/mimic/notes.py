"""note/discharge.csv.gz rows of the synthetic MIMIC-IV cohort: discharge summaries by severity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amc.synthetic.mimic.common import _to_dt
from amc.synthetic.mimic.vocab import (
    COMPLAINTS,
    CONDITION,
    COURSE,
    DAY,
    DISPOSITION,
    HOUR,
    MEDS,
    PMH,
    PRIMARY_DX,
    TEMPLATE_NOTE,
)


def _note_text(rng: np.random.Generator, s_note: float, age: int, male: bool, long: bool) -> str:
    """A multi-section discharge summary whose wording reflects the severity ``s_note``."""
    center = 1.9 + 1.1 * s_note

    def level() -> int:
        return int(np.clip(np.rint(center + rng.normal(0, 0.9)), 0, 4))

    sex = "M" if male else "F"
    title = "Mr." if male else "Ms."
    pmh = rng.choice(PMH, size=int(rng.integers(2, 6)), replace=False)
    n_course = int(rng.integers(14, 24)) if long else int(rng.integers(4, 8))
    course = []
    for _ in range(n_course):
        pool = COURSE[level()]
        course.append(pool[int(rng.integers(len(pool)))].replace("He/she", "He" if male else "She"))
    dx_pool = PRIMARY_DX[level()]
    sec_dx = rng.choice(PMH, size=int(rng.integers(1, 4)), replace=False)
    complaint = COMPLAINTS[level()][int(rng.integers(5))]
    cond_level = level()
    parts = [
        f"Name:  ___                     Unit No:   ___\n\nAdmission Date:  ___              "
        f"Discharge Date:   ___\n\nDate of Birth:  ___             Sex:   {sex}\n\n"
        f"Service: MEDICINE\n\nAllergies: \nNo Known Allergies / Adverse Drug Reactions\n\n"
        f"Attending: ___.\n",
        f"Chief Complaint:\n{complaint}\n",
        f"History of Present Illness:\n{title} ___ is a {age} year old {'man' if male else 'woman'}"
        f" with a history of {', '.join(pmh)} who presents with {complaint}. " + course[0] + "\n",
        "Past Medical History:\n" + "\n".join(f"- {p}" for p in pmh) + "\n",
    ]
    if long:
        meds = rng.choice(MEDS, size=int(rng.integers(10, 18)), replace=False)
        parts.append(
            "Medications on Admission:\nThe Preadmission Medication list is accurate and "
            "complete.\n" + "\n".join(f"{j + 1}. {m}" for j, m in enumerate(meds)) + "\n"
        )
        problems = (
            "# Primary problem",
            "# Secondary problem",
            "# Chronic issues",
            "# Transitional issues",
        )
        chunk = max(1, len(course) // len(problems))
        course_txt = "\n\n".join(
            f"{p}:\n" + " ".join(course[j * chunk : (j + 1) * chunk])
            for j, p in enumerate(problems)
        )
        parts.append(f"Brief Hospital Course:\n{course_txt}\n")
        parts.append(
            "Discharge Medications:\n"
            + "\n".join(f"{j + 1}. {m}" for j, m in enumerate(meds))
            + "\n"
        )
    else:
        parts.append("Brief Hospital Course:\n" + " ".join(course) + "\n")
    parts += [
        f"Discharge Disposition:\n{DISPOSITION[cond_level]}\n",
        f"Discharge Diagnosis:\nPrimary: {dx_pool[int(rng.integers(len(dx_pool)))]}\n"
        f"Secondary: {', '.join(sec_dx)}\n",
        f"Discharge Condition:\n{CONDITION[cond_level]}\n",
        "Discharge Instructions:\nDear " + title + " ___,\nIt was a pleasure taking care of you at "
        "___. Please take your medications as prescribed and keep your follow-up appointments.\n",
        "Followup Instructions:\n___\n",
    ]
    return "\n".join(parts)


def _notes(rng, adm, admissions, subject_id, s_note, note_mode, is_index, age, male):
    """discharge.csv.gz rows; index admissions of 'missing' patients and some others get none."""
    p = adm["p"].to_numpy()
    rows = []
    seq = {}
    missing_index = 0
    for j in range(len(adm)):
        i = p[j]
        if is_index[j] and note_mode[i] == "missing":
            missing_index += 1
            continue
        if not is_index[j] and rng.random() < 0.2:
            continue
        if is_index[j] and note_mode[i] == "template":
            text = TEMPLATE_NOTE
        else:
            s = s_note[i] + (0 if is_index[j] else rng.normal(0, 0.5))
            text = _note_text(rng, s, int(age[i]), bool(male[i]), long=rng.random() < 0.25)
        seq[i] = seq.get(i, 0) + int(rng.integers(1, 12))
        disch = adm["disch"].iat[j]
        rows.append(
            (
                f"{subject_id[i]}-DS-{seq[i]}",
                subject_id[i],
                admissions["hadm_id"].iat[j],
                "DS",
                seq[i],
                (disch // DAY) * DAY,
                disch + rng.uniform(2, 40) * HOUR,
                text,
            )
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "note_id",
            "subject_id",
            "hadm_id",
            "note_type",
            "note_seq",
            "charttime",
            "storetime",
            "text",
        ],
    )
    df["charttime"] = _to_dt(df["charttime"].to_numpy(dtype=float))
    df["storetime"] = _to_dt(df["storetime"].to_numpy(dtype=float))
    return df, missing_index
