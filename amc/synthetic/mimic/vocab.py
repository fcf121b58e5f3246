"""Vocabularies of the synthetic MIMIC-IV cohort: lab items, ICD concepts, note phrases."""

from __future__ import annotations

import io

import pandas as pd

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
