"""A synthetic MIMIC-IV cohort written in the real MIMIC-IV v2.2 file layout (gzip CSV).

Files (the real column names, in the real order)::

    hosp/patients.csv.gz        hosp/admissions.csv.gz     hosp/d_labitems.csv.gz
    hosp/labevents.csv.gz       hosp/diagnoses_icd.csv.gz  hosp/procedures_icd.csv.gz
    note/discharge.csv.gz       quality.csv (ground truth, never read by training)   README.txt

Generative story
----------------
Every patient has a latent risk ``r ~ N(0, 1)``; the outcome (death within 365 days of the first
admission's ``admittime``) is ``Bernoulli(sigmoid(-1.85 + 2.2 r))`` (prevalence about 25 %).
Each modality sees its own noisy copy ``s_m = r + N(0, sigma_m)`` (so the modalities are
complementary) and has a per-patient quality with a corruption type (the paper's Figure 1):

* ``lab``: creatinine, BUN, lactate, anion gap, WBC, INR, RDW, ... rise and albumin,
  bicarbonate, haemoglobin, platelets fall with ``s_lab``; blood gases, troponin and NT-proBNP
  are measured more often in sicker patients. ``noise``: heavy measurement noise and a weak
  latent; ``missing``: no labs at all during the index admission.
* ``code``: ICD-9 or ICD-10 (by the anchor year group, as in MIMIC-IV) diagnoses and procedures;
  sepsis / CHF / AKI / respiratory failure / metastatic cancer / ventilation / dialysis become
  more likely with ``s_code``. ``sparse``: only 1-2 random codes.
* ``note``: a multi-section discharge summary whose hospital-course sentences, diagnoses and
  discharge condition are worded by severity from ``s_note``; about a quarter are long
  (> 512 tokens). ``template``: the same uninformative templated note; ``missing``: no note.

Deaths: in-hospital deaths at the index admission (``deathtime`` set, ``dischtime ==
deathtime``, ``hospital_expire_flag = 1``, ``discharge_location = DIED``; ``dod`` sometimes left
empty so the extractor must use ``deathtime``), deaths after discharge (``dod``, sometimes
during a readmission), and deaths more than 365 days later (label 0).

The index admission is each patient's FIRST admission by ``admittime``; ``patient_id =
str(subject_id)``. Same seed, byte-identical files (gzip mtime 0).
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from amc.data.store import atomic_path
from amc.synthetic.quality import quality_frame, write_quality

logger = logging.getLogger(__name__)

DAY = 86_400
HOUR = 3_600

# center/spread: median and SD (log-scale items: median and SD of log); load: shift per unit of
# s_lab in spreads; dec: decimals; p: measured probability, p_sick: extra probability per unit
# of s_lab above 0 (blood gases, troponin, BNP are ordered for sicker patients)
_LAB_TABLE = """
itemid|label|fluid|category|uom|lower|upper|center|spread|log|load|dec|p|p_sick
50912|Creatinine|Blood|Chemistry|mg/dL|0.4|1.1|1.0|0.45|1|0.7|1|1.0|0
51006|Urea Nitrogen|Blood|Chemistry|mg/dL|6|20|18|0.5|1|0.7|0|1.0|0
50813|Lactate|Blood|Blood Gas|mmol/L|0.5|2.0|1.5|0.45|1|0.7|1|0.3|0.25
50862|Albumin|Blood|Chemistry|g/dL|3.5|5.2|3.6|0.55|0|-0.7|1|0.6|0.1
50882|Bicarbonate|Blood|Chemistry|mEq/L|22|32|25|3.5|0|-0.5|0|1.0|0
50868|Anion Gap|Blood|Chemistry|mEq/L|8|20|14|3.0|0|0.5|0|1.0|0
50971|Potassium|Blood|Chemistry|mEq/L|3.3|5.1|4.2|0.5|0|0.2|1|1.0|0
50983|Sodium|Blood|Chemistry|mEq/L|133|145|138|4.0|0|-0.15|0|1.0|0
50902|Chloride|Blood|Chemistry|mEq/L|96|108|102|5.0|0|0.0|0|1.0|0
50931|Glucose|Blood|Chemistry|mg/dL|70|100|120|0.3|1|0.2|0|1.0|0
50960|Magnesium|Blood|Chemistry|mg/dL|1.6|2.6|2.0|0.3|0|0.0|1|0.9|0
50893|Calcium, Total|Blood|Chemistry|mg/dL|8.4|10.3|8.9|0.6|0|-0.3|1|0.9|0
50970|Phosphate|Blood|Chemistry|mg/dL|2.7|4.5|3.5|0.9|0|0.3|1|0.9|0
50885|Bilirubin, Total|Blood|Chemistry|mg/dL|0.0|1.5|0.6|0.7|1|0.5|1|0.6|0.1
50861|Alanine Aminotransferase (ALT)|Blood|Chemistry|IU/L|0|40|25|0.7|1|0.15|0|0.6|0.1
50878|Asparate Aminotransferase (AST)|Blood|Chemistry|IU/L|0|40|30|0.7|1|0.3|0|0.6|0.1
50863|Alkaline Phosphatase|Blood|Chemistry|IU/L|35|105|85|0.5|1|0.2|0|0.6|0.1
51222|Hemoglobin|Blood|Hematology|g/dL|13.7|17.5|11.0|2.0|0|-0.5|1|1.0|0
51221|Hematocrit|Blood|Hematology|%|40|51|33|6.0|0|-0.45|1|1.0|0
51301|White Blood Cells|Blood|Hematology|K/uL|4.0|11.0|9.0|0.45|1|0.5|1|1.0|0
51265|Platelet Count|Blood|Hematology|K/uL|150|400|220|0.45|1|-0.45|0|1.0|0
51279|Red Blood Cells|Blood|Hematology|m/uL|4.6|6.1|3.7|0.7|0|-0.35|2|1.0|0
51250|MCV|Blood|Hematology|fL|82|98|90|6.0|0|0.05|0|1.0|0
51277|RDW|Blood|Hematology|%|10.5|15.5|14.5|1.8|0|0.5|1|1.0|0
51237|INR(PT)|Blood|Hematology||0.9|1.1|1.2|0.3|1|0.45|1|0.7|0.1
51274|PT|Blood|Hematology|sec|9.4|12.5|13.0|0.25|1|0.45|1|0.7|0.1
51275|PTT|Blood|Hematology|sec|25|36.5|32|0.3|1|0.2|1|0.7|0.1
50820|pH|Blood|Blood Gas|units|7.35|7.45|7.38|0.06|0|-0.45|2|0.25|0.25
50818|pCO2|Blood|Blood Gas|mm Hg|35|45|42|8.0|0|0.0|0|0.25|0.25
50821|pO2|Blood|Blood Gas|mm Hg|85|105|90|0.4|1|-0.15|0|0.25|0.25
51003|Troponin T|Blood|Chemistry|ng/mL|0.0|0.01|0.02|1.0|1|0.45|2|0.3|0.2
50963|NTproBNP|Blood|Chemistry|pg/mL|0|353|800|1.2|1|0.5|0|0.2|0.2
"""
LAB_ITEMS = pd.read_csv(io.StringIO(_LAB_TABLE), sep="|", keep_default_na=False, dtype={"uom": str})
# in d_labitems but never measured in this cohort (real d_labitems lists ~1600 items)
UNUSED_LAB_ITEMS = [
    (51491, "pH", "Urine", "Hematology"),
    (51498, "Specific Gravity", "Urine", "Hematology"),
    (50889, "C-Reactive Protein", "Blood", "Chemistry"),
]
# measured in labevents but absent from d_labitems (the extractor drops and counts them)
UNKNOWN_LAB_ITEMIDS = (52142, 53085)

# (icd9, icd10, intercept, loading on s_code, text)
DX_CONCEPTS: list[tuple[str, str, float, float, str]] = [
    ("0389", "A419", -2.6, 1.3, "Sepsis"),
    ("78552", "R6521", -3.6, 1.4, "Septic shock"),
    ("4280", "I509", -2.0, 0.9, "Congestive heart failure"),
    ("5849", "N179", -2.0, 1.1, "Acute kidney injury"),
    ("51881", "J9601", -3.0, 1.3, "Acute respiratory failure"),
    ("1970", "C780", -3.2, 1.0, "Metastatic cancer to lung"),
    ("1985", "C7951", -3.4, 1.0, "Metastatic cancer to bone"),
    ("486", "J189", -2.2, 0.8, "Pneumonia"),
    ("4275", "I469", -4.2, 1.2, "Cardiac arrest"),
    ("5715", "K7460", -3.0, 0.8, "Cirrhosis of liver"),
    ("2639", "E43", -3.0, 0.9, "Severe protein-calorie malnutrition"),
    ("42731", "I4891", -1.6, 0.5, "Atrial fibrillation"),
    ("496", "J449", -1.9, 0.4, "Chronic obstructive pulmonary disease"),
    ("2762", "E872", -2.2, 0.7, "Acidosis"),
    ("2859", "D649", -1.3, 0.4, "Anemia"),
    ("4019", "I10", -0.4, -0.3, "Essential hypertension"),
    ("2724", "E785", -0.6, -0.2, "Hyperlipidemia"),
    ("53081", "K219", -1.0, -0.2, "Gastroesophageal reflux disease"),
    ("25000", "E119", -1.0, 0.0, "Type 2 diabetes mellitus"),
    ("2449", "E039", -1.6, 0.0, "Hypothyroidism"),
    ("311", "F329", -1.5, -0.1, "Depression"),
    ("30000", "F419", -1.6, -0.3, "Anxiety"),
    ("7245", "M545", -2.2, -0.4, "Low back pain"),
    ("27800", "E6609", -2.0, -0.2, "Obesity"),
    ("3051", "F17210", -1.8, 0.0, "Tobacco use"),
    ("71590", "M1990", -2.0, -0.3, "Osteoarthritis"),
    ("V5861", "Z7901", -1.8, 0.1, "Long-term use of anticoagulants"),
]
PX_CONCEPTS: list[tuple[str, str, float, float, str]] = [
    ("9672", "5A1955Z", -3.0, 1.3, "Mechanical ventilation > 96 hours"),
    ("9604", "0BH17EZ", -2.8, 1.2, "Endotracheal intubation"),
    ("3893", "02HV33Z", -2.4, 1.0, "Central venous catheter"),
    ("3995", "5A1D70Z", -3.4, 1.0, "Hemodialysis"),
    ("9904", "30233N1", -2.2, 0.7, "Transfusion of red cells"),
    ("4523", "0DJD8ZZ", -2.6, -0.3, "Colonoscopy"),
    ("5123", "0FT44ZZ", -3.0, -0.5, "Cholecystectomy"),
    ("8154", "0SRD0J9", -3.0, -0.7, "Total knee replacement"),
    ("3722", "4A023N7", -2.4, 0.2, "Cardiac catheterization"),
]

LABEVENTS_COLUMNS = (
    "labevent_id",
    "subject_id",
    "hadm_id",
    "specimen_id",
    "itemid",
    "order_provider_id",
    "charttime",
    "storetime",
    "value",
    "valuenum",
    "valueuom",
    "ref_range_lower",
    "ref_range_upper",
    "flag",
    "priority",
    "comments",
)
ANCHOR_GROUPS = ("2008 - 2010", "2011 - 2013", "2014 - 2016", "2017 - 2019", "2020 - 2022")
ICD9_PROB = (1.0, 1.0, 0.5, 0.0, 0.0)  # MIMIC-IV switched to ICD-10 in October 2015

ADMISSION_TYPES = (
    "EW EMER.",
    "URGENT",
    "ELECTIVE",
    "OBSERVATION ADMIT",
    "DIRECT EMER.",
    "EU OBSERVATION",
    "SURGICAL SAME DAY ADMISSION",
)
ADMISSION_TYPE_P = (0.45, 0.12, 0.1, 0.12, 0.08, 0.08, 0.05)
RACES = (
    "WHITE",
    "BLACK/AFRICAN AMERICAN",
    "HISPANIC/LATINO - PUERTO RICAN",
    "ASIAN",
    "OTHER",
    "UNKNOWN",
)
RACE_P = (0.62, 0.14, 0.06, 0.05, 0.07, 0.06)

# ---------------------------------------------------------------- note text, by severity 0..4
COMPLAINTS = (
    ("elective procedure", "mild abdominal pain", "rash", "knee pain", "medication adjustment"),
    ("chest pain", "nausea and vomiting", "fall at home", "dizziness", "cough"),
    ("shortness of breath", "fever and chills", "lower extremity swelling", "melena", "confusion"),
    ("hypotension", "altered mental status", "respiratory distress", "sepsis", "hematemesis"),
    (
        "cardiac arrest",
        "unresponsiveness",
        "septic shock",
        "massive GI bleed",
        "hypoxic respiratory failure",
    ),
)
COURSE = (
    (
        "The patient remained hemodynamically stable throughout the admission.",
        "Pain was well controlled with oral medications.",
        "He/she tolerated a regular diet and was ambulating independently.",
        "The procedure was uncomplicated and the patient recovered as expected.",
        "Vital signs were within normal limits on the day of discharge.",
        "Home medications were continued without changes.",
    ),
    (
        "Symptoms improved with conservative management.",
        "Labs were notable for mild electrolyte abnormalities which were repleted.",
        "Physical therapy evaluated the patient and recommended discharge home with services.",
        "Blood pressure medications were titrated with good effect.",
        "The patient was monitored on telemetry without events.",
    ),
    (
        "The patient was treated with intravenous antibiotics with gradual improvement.",
        "Diuresis was started for volume overload and renal function was monitored closely.",
        "Creatinine was elevated on admission and improved with fluids.",
        "Oxygen requirement slowly decreased and was weaned to room air.",
        "The course was complicated by delirium which resolved.",
    ),
    (
        "The patient required transfer to the intensive care unit for hypotension.",
        "Vasopressor support with norepinephrine was required for the first days.",
        "Lactate was elevated and broad spectrum antibiotics were started for septic shock.",
        "Acute kidney injury progressed and nephrology was consulted for possible dialysis.",
        "The hospital course was prolonged and complicated by recurrent infections.",
        "Nutrition was poor and tube feeds were initiated.",
    ),
    (
        "The patient was intubated for hypoxic respiratory failure and remained on the ventilator.",
        "Multiple vasopressors were needed and there was persistent multi-organ failure.",
        "Imaging showed widely metastatic disease with progression despite therapy.",
        "A goals of care discussion was held with the family given the poor prognosis.",
        "Palliative care was consulted and the patient was transitioned to comfort-focused care.",
        "Continuous renal replacement therapy was started for anuric renal failure.",
    ),
)
PRIMARY_DX = (
    ("osteoarthritis of the knee", "cellulitis", "symptomatic cholelithiasis", "syncope"),
    ("chest pain, non-cardiac", "gastroenteritis", "hypertensive urgency", "COPD exacerbation"),
    (
        "community acquired pneumonia",
        "acute on chronic heart failure",
        "urinary tract infection",
        "acute kidney injury",
    ),
    ("sepsis", "upper GI bleed", "hepatic encephalopathy", "NSTEMI"),
    (
        "septic shock",
        "acute hypoxic respiratory failure",
        "metastatic lung cancer",
        "cardiogenic shock",
    ),
)
CONDITION = (
    "Mental Status: Clear and coherent. Level of Consciousness: Alert and interactive. "
    "Activity Status: Ambulatory - Independent.",
    "Mental Status: Clear and coherent. Level of Consciousness: Alert and interactive. "
    "Activity Status: Ambulatory - Independent.",
    "Mental Status: Clear and coherent. Level of Consciousness: Alert and interactive. "
    "Activity Status: Ambulatory - requires assistance or aid (walker or cane).",
    "Mental Status: Confused - sometimes. Level of Consciousness: Lethargic but arousable. "
    "Activity Status: Out of Bed with assistance to chair or wheelchair.",
    "Mental Status: Confused - always. Level of Consciousness: Lethargic but arousable. "
    "Activity Status: Bedbound.",
)
DISPOSITION = ("Home", "Home", "Home With Service", "Extended Care", "Extended Care")
PMH = (
    "hypertension",
    "hyperlipidemia",
    "type 2 diabetes",
    "GERD",
    "hypothyroidism",
    "depression",
    "osteoarthritis",
    "atrial fibrillation",
    "COPD",
    "chronic kidney disease",
    "prior stroke",
    "coronary artery disease",
    "obstructive sleep apnea",
    "gout",
)
MEDS = (
    "Aspirin 81 mg PO DAILY",
    "Atorvastatin 40 mg PO QPM",
    "Metoprolol Succinate XL 50 mg PO DAILY",
    "Lisinopril 10 mg PO DAILY",
    "Omeprazole 20 mg PO DAILY",
    "Metformin 500 mg PO BID",
    "Levothyroxine Sodium 75 mcg PO DAILY",
    "Furosemide 40 mg PO DAILY",
    "Apixaban 5 mg PO BID",
    "Sertraline 50 mg PO DAILY",
    "Acetaminophen 650 mg PO Q6H:PRN pain",
    "Senna 8.6 mg PO BID:PRN constipation",
    "Docusate Sodium 100 mg PO BID",
    "Tamsulosin 0.4 mg PO QHS",
    "Gabapentin 300 mg PO TID",
    "Insulin Glargine 20 Units Bedtime",
    "Amlodipine 5 mg PO DAILY",
    "Albuterol Inhaler 2 PUFF IH Q4H:PRN wheezing",
    "Polyethylene Glycol 17 g PO DAILY:PRN constipation",
    "Vitamin D 1000 UNIT PO DAILY",
)
TEMPLATE_NOTE = (
    "Name:  ___                     Unit No:   ___\n\nAdmission Date:  ___              "
    "Discharge Date:   ___\n\nDate of Birth:  ___             Sex:   ___\n\nService: MEDICINE\n\n"
    "Allergies: \nNo Known Allergies / Adverse Drug Reactions\n\nAttending: ___.\n\n"
    "Chief Complaint:\nsee admission note\n\nHistory of Present Illness:\nPlease refer to the "
    "admission history and physical.\n\nBrief Hospital Course:\nPatient was admitted and treated. "
    "Please see daily progress notes for details.\n\nDischarge Diagnosis:\n___\n\n"
    "Discharge Condition:\nsee chart\n\nDischarge Instructions:\nFollow up with your doctor.\n\n"
    "Followup Instructions:\n___\n"
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _write_csv_gz(df: pd.DataFrame, path: Path) -> None:
    """gzip CSV as MIMIC-IV ships it (unquoted unless needed, empty field = missing), with
    mtime 0 and no file name in the gzip header: same data, same bytes.

    Tables whose strings never need quoting go through pyarrow's fast writer; the others
    (discharge texts, lab labels with commas) through pandas.
    """
    df = df.copy()
    quote = False
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].where(df[col] != "", None)
            quote = quote or bool(df[col].dropna().astype(str).str.contains('[,"\n\r]').any())
    if quote:
        for col in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[col]):
                df[col] = df[col].dt.strftime("%Y-%m-%d %H:%M:%S")
        text = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    else:
        buf = io.BytesIO()
        buf.write((",".join(df.columns) + "\n").encode())
        table = pa.Table.from_pandas(df, preserve_index=False)
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        text = buf.getvalue()
    data = gzip.compress(text, compresslevel=5, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _to_dt(seconds: np.ndarray) -> pd.Series:
    """Seconds since 1970 (float, NaN = missing) -> datetime64 rounded down to the minute."""
    s = np.asarray(seconds, dtype=np.float64)
    out = np.full(s.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    ok = np.isfinite(s)
    out[ok] = ((s[ok] // 60) * 60).astype(np.int64).astype("datetime64[s]")
    return pd.Series(out)


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
    pid = subject_id.astype(str)

    # ---- latent risk, outcome, per-modality latent copies and quality
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

    # ---- patients and admissions
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

    adm = pd.DataFrame(adm_rows, columns=["p", "admit", "disch", "death", "is_index"])
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

    is_index = adm["is_index"].to_numpy()
    icd9 = rng.random(n_adm) < np.asarray(ICD9_PROB)[group[p]]

    with tqdm(total=4, desc="synthesize mimic", disable=None) as bar:
        labevents = _labevents(rng_lab, adm, admissions, subject_id, s_lab, lab_mode, is_index)
        bar.update()
        diagnoses, procedures = _codes(rng_code, adm, admissions, s_code, code_mode, is_index, icd9)
        bar.update()
        notes, index_without_note = _notes(
            rng_note, adm, admissions, subject_id, s_note, note_mode, is_index, age_index, male
        )
        labevents, diagnoses, notes = plant_leaks(
            rng_leak, adm, admissions, label, death, icd9, labevents, diagnoses, notes
        )
        bar.update()

        d_labitems = pd.DataFrame(
            [
                *LAB_ITEMS[["itemid", "label", "fluid", "category"]].itertuples(index=False),
                *UNUSED_LAB_ITEMS,
            ],
            columns=["itemid", "label", "fluid", "category"],
        ).sort_values("itemid")
        hosp = out_dir / "hosp"
        _write_csv_gz(patients, hosp / "patients.csv.gz")
        _write_csv_gz(admissions, hosp / "admissions.csv.gz")
        _write_csv_gz(d_labitems, hosp / "d_labitems.csv.gz")
        _write_csv_gz(labevents, hosp / "labevents.csv.gz")
        _write_csv_gz(diagnoses, hosp / "diagnoses_icd.csv.gz")
        _write_csv_gz(procedures, hosp / "procedures_icd.csv.gz")
        _write_csv_gz(notes, out_dir / "note" / "discharge.csv.gz")
        write_quality(
            [
                quality_frame(pid, "lab", q_lab, lab_mode),
                quality_frame(pid, "code", q_code, code_mode),
                quality_frame(pid, "note", q_note, note_mode),
            ],
            out_dir / "quality.csv",
        )
        with atomic_path(out_dir / "README.txt") as tmp:
            tmp.write_text(_readme(n, seed))
        bar.update()

    counts = {
        "patients": n,
        "admissions": n_adm,
        "labevents": len(labevents),
        "diagnoses_icd": len(diagnoses),
        "procedures_icd": len(procedures),
        "discharge_notes": len(notes),
        "deaths_within_365d": int(label.sum()),
        "in_hospital_deaths": int(in_hosp.sum()),
        "index_without_note": int(index_without_note),
    }
    logger.info("synthetic MIMIC-IV cohort in %s: %s", out_dir, counts)
    return counts


def _labevents(rng, adm, admissions, subject_id, s_lab, lab_mode, is_index) -> pd.DataFrame:
    """labevents rows: in-window, later and pre-admission (ED) labs, outpatient labs, junk rows."""
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

    # outpatient labs (no hadm_id), before the first admission
    first_admit = admit[is_index]
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

    # unknown itemids (absent from d_labitems), inside the index window
    idx_adm = np.flatnonzero(is_index)
    u_a = rng.choice(idx_adm, size=max(3, len(idx_adm) // 20))
    u_item = rng.choice(UNKNOWN_LAB_ITEMIDS, len(u_a))
    u_time = admit[u_a] + rng.uniform(0.1, 0.9, len(u_a)) * np.minimum(48 * HOUR, los[u_a])
    u_val = np.round(rng.uniform(1, 100, len(u_a)), 1)

    rows = {
        "subject_id": np.concatenate([subj, subject_id[o_p], subject_id[p][u_a]]),
        "hadm_id": np.concatenate(
            [
                adm_hadm,
                np.full(len(o_p), np.nan),
                admissions["hadm_id"].to_numpy()[u_a].astype(float),
            ]
        ),
        "itemid": np.concatenate([itemid, item_ids[o_item], u_item]),
        "charttime": np.concatenate([charttime, o_time, u_time]),
        "valuenum": np.concatenate([value, o_val, u_val]),
        "dec": np.concatenate([dec, decimals[o_item], np.ones(len(u_a), dtype=int)]),
        "item": np.concatenate([i_idx, o_item, np.full(len(u_a), -1)]),
    }
    df = pd.DataFrame(rows)
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
    disch = adm["disch"].to_numpy()
    died = np.isfinite(adm["death"].to_numpy())
    is_index = adm["is_index"].to_numpy()
    pos = label[adm["p"].to_numpy()] == 1
    hadm = admissions["hadm_id"].to_numpy()
    subj = admissions["subject_id"].to_numpy()
    # 1. notes of in-hospital deaths state the death
    notes = notes.copy()
    dead_hadm = set(hadm[died].tolist())
    m = notes["hadm_id"].isin(dead_hadm).to_numpy()
    notes.loc[m, "text"] = [_say_expired(t) for t in notes.loc[m, "text"].to_numpy(dtype=object)]
    # 2. addendum notes on the day of death (after discharge)
    later = np.flatnonzero(is_index & pos & ~died)
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
    # 3. death-stating codes on the admission where the patient died
    dj = np.flatnonzero(died)
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
    # 4. a lab drawn after discharge, under the index admission
    lj = np.flatnonzero(is_index & pos & ~died)
    t = disch[lj] + rng.uniform(0.5, 3, len(lj)) * HOUR
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
    return labevents, diagnoses, notes


_EXPIRED = "Discharge Disposition:\nExpired\n"


def _say_expired(text: str) -> str:
    """The discharge summary of a patient who died: disposition 'Expired'."""
    if "Discharge Disposition:\n" in text:
        return re.sub(
            r"Discharge Disposition:\n[^\n]*\n", "Discharge Disposition:\nExpired\n", text
        )
    head, sep, tail = text.partition("Discharge Condition:\n")
    return f"{head}Discharge Disposition:\nExpired\n\n{sep}{tail}"


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
