"""The synthetic MIMIC-IV cohort: real layout and columns, determinism, labels, signal."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from amc.features.mimic import (
    extract_code_features,
    extract_lab_features,
    extract_note_texts,
    load_index_admissions,
)
from amc.synthetic.mimic import generate_mimic_cohort

COLUMNS = {
    "hosp/patients.csv.gz": "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
    "hosp/admissions.csv.gz": "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,"
    "admission_location,discharge_location,insurance,language,marital_status,race,edregtime,"
    "edouttime,hospital_expire_flag",
    "hosp/d_labitems.csv.gz": "itemid,label,fluid,category",
    "hosp/labevents.csv.gz": "labevent_id,subject_id,hadm_id,specimen_id,itemid,"
    "order_provider_id,charttime,storetime,value,valuenum,valueuom,ref_range_lower,"
    "ref_range_upper,flag,priority,comments",
    "hosp/diagnoses_icd.csv.gz": "subject_id,hadm_id,seq_num,icd_code,icd_version",
    "hosp/procedures_icd.csv.gz": "subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version",
    "note/discharge.csv.gz": "note_id,subject_id,hadm_id,note_type,note_seq,charttime,"
    "storetime,text",
}


N = 600  # large enough for the signal check, small enough to stay fast


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mimic")
    counts = generate_mimic_cohort(out, n_patients=N, seed=11)
    return out, counts


def _csv(root: Path, rel: str, **kw) -> pd.DataFrame:
    return pd.read_csv(root / rel, **kw)


def test_files_and_exact_columns(cohort: tuple[Path, dict]) -> None:
    root, counts = cohort
    for rel, header in COLUMNS.items():
        with gzip.open(root / rel, "rt") as fh:
            assert fh.readline().rstrip("\n") == header, rel
    assert counts["patients"] == N
    assert len(_csv(root, "hosp/patients.csv.gz")) == N
    assert "synthetic" in (root / "README.txt").read_text().lower()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    generate_mimic_cohort(tmp_path / "a", n_patients=60, seed=3)
    generate_mimic_cohort(tmp_path / "b", n_patients=60, seed=3)
    for rel in [*COLUMNS, "quality.csv", "README.txt"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    generate_mimic_cohort(tmp_path / "c", n_patients=60, seed=4)
    rel = "hosp/labevents.csv.gz"
    assert (tmp_path / "c" / rel).read_bytes() != (tmp_path / "a" / rel).read_bytes()


def test_labels_deaths_and_admissions(cohort: tuple[Path, dict]) -> None:
    root, counts = cohort
    # the default excludes the patients who die before the prediction time (discharge)
    assert len(load_index_admissions(root)) == N - counts["in_hospital_deaths"]
    index = load_index_admissions(root, deaths_before_prediction="keep")
    assert len(index) == N
    assert index["label"].sum() == counts["deaths_within_365d"]  # extractor agrees
    assert 0.15 <= index["label"].mean() <= 0.35
    adm = _csv(root, "hosp/admissions.csv.gz", parse_dates=["admittime", "dischtime", "deathtime"])
    per_subject = adm.groupby("subject_id").size()
    assert per_subject.min() == 1 and per_subject.max() == 3
    died = adm[adm["hospital_expire_flag"] == 1]
    assert len(died) > 0
    assert (died["dischtime"] == died["deathtime"]).all()
    assert (died["discharge_location"] == "DIED").all()
    assert adm.loc[adm["hospital_expire_flag"] == 0, "deathtime"].isna().all()
    # some in-hospital index deaths have no dod: the label must come from deathtime
    pat = _csv(root, "hosp/patients.csv.gz")
    in_hosp = index[index["hadm_id"].isin(died["hadm_id"])]
    assert pat.set_index("subject_id").loc[in_hosp["subject_id"], "dod"].isna().any()
    # deaths more than a year later exist and are label 0
    late = index["death_time"].notna() & (index["label"] == 0)
    assert late.sum() > 0


def test_lab_codes_notes_quirks(cohort: tuple[Path, dict]) -> None:
    root, counts = cohort
    lab = _csv(root, "hosp/labevents.csv.gz", dtype={"value": str})
    items = set(_csv(root, "hosp/d_labitems.csv.gz")["itemid"])
    assert len(items) >= 30 and {50912, 50971, 50983, 51222, 51301, 50813} <= items
    assert lab["hadm_id"].isna().any()  # outpatient labs
    assert (~lab["itemid"].isin(items)).any()  # itemids absent from d_labitems
    junk = lab["valuenum"].isna()
    assert junk.any() and set(lab.loc[junk, "value"]) <= {"___", "ERROR"}
    assert lab.groupby(["hadm_id", "itemid"]).size().max() > 1  # repeated measurements
    dx = _csv(root, "hosp/diagnoses_icd.csv.gz", dtype={"icd_code": str})
    assert set(dx["icd_version"]) == {9, 10}
    assert not dx["icd_code"].str.contains(r"\.").any()
    notes = _csv(root, "note/discharge.csv.gz")
    assert (notes["note_type"] == "DS").all()
    for section in (
        "Chief Complaint:",
        "History of Present Illness:",
        "Brief Hospital Course:",
        "Discharge Diagnosis:",
        "Discharge Condition:",
    ):
        assert notes["text"].str.contains(section, regex=False).mean() > 0.9
    assert (notes["text"].str.split().str.len() > 450).any()  # long notes (> 512 tokens)
    assert counts["index_without_note"] > 0


def test_quality_sidecar_matches_data(cohort: tuple[Path, dict]) -> None:
    root, _ = cohort
    q = pd.read_csv(root / "quality.csv", dtype={"patient_id": str})
    assert list(q.columns) == ["patient_id", "modality", "quality", "corruption"]
    assert len(q) == 3 * N and set(q["modality"]) == {"lab", "note", "code"}
    assert q["quality"].between(0, 1).all()
    allowed = {"none", "noise", "template", "sparse", "missing"}
    assert set(q["corruption"]) <= allowed
    assert (
        q.loc[q["corruption"] == "none", "quality"]
        > q.loc[q["corruption"] != "none", "quality"].max()
    ).all()
    index = load_index_admissions(root, deaths_before_prediction="keep")
    notes = extract_note_texts(root, index)
    missing_note = set(
        q.loc[(q["modality"] == "note") & (q["corruption"] == "missing"), "patient_id"]
    )
    assert missing_note and missing_note == set(index["patient_id"]) - set(notes.index)
    _, labs, _ = extract_lab_features(root, index)
    no_labs = set(index["patient_id"][labs[:, 5::6].min(axis=1) == 1])
    missing_lab = set(
        q.loc[(q["modality"] == "lab") & (q["corruption"] == "missing"), "patient_id"]
    )
    assert missing_lab and missing_lab <= no_labs


def _cv_auroc(x: np.ndarray, y: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    prob = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    return roc_auc_score(y, prob)


def test_each_modality_predicts_and_fusion_helps(cohort: tuple[Path, dict]) -> None:
    root, _ = cohort
    index = load_index_admissions(root)
    y = index["label"].to_numpy()
    _, lab, _ = extract_lab_features(root, index)
    _, code, _ = extract_code_features(root, index)
    texts = extract_note_texts(root, index)
    # TF-IDF stand-in for MiniLM (speed); patients without a note get an indicator
    tfidf = TfidfVectorizer(min_df=3, max_features=300, sublinear_tf=True)
    emb = tfidf.fit_transform(texts.to_numpy()).toarray()
    has = index["patient_id"].isin(texts.index).to_numpy()
    note = np.zeros((len(index), emb.shape[1] + 1))
    note[has, :-1] = emb
    note[~has, -1] = 1
    auc = {name: _cv_auroc(x, y) for name, x in {"lab": lab, "code": code, "note": note}.items()}
    fused = _cv_auroc(np.hstack([lab, code, note]), y)
    for name, value in auc.items():
        assert value > 0.6, (name, auc)
    assert fused > max(auc.values()) + 0.02, (fused, auc)
