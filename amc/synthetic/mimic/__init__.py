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

from amc.synthetic.mimic.cohort import generate_mimic_cohort
from amc.synthetic.mimic.leaks import (
    LEAK_CODES,
    LEAK_LAB_ITEMID,
    LEAK_LAB_VALUE,
    LEAK_NOTE_PHRASE,
    plant_leaks,
)
from amc.synthetic.mimic.notes import _note_text
from amc.synthetic.mimic.vocab import (
    DX_CONCEPTS,
    LAB_ITEMS,
    LABEVENTS_COLUMNS,
    PX_CONCEPTS,
    UNKNOWN_LAB_ITEMIDS,
)

__all__ = [
    "DX_CONCEPTS",
    "LAB_ITEMS",
    "LABEVENTS_COLUMNS",
    "LEAK_CODES",
    "LEAK_LAB_ITEMID",
    "LEAK_LAB_VALUE",
    "LEAK_NOTE_PHRASE",
    "PX_CONCEPTS",
    "UNKNOWN_LAB_ITEMIDS",
    "_note_text",
    "generate_mimic_cohort",
    "plant_leaks",
]
