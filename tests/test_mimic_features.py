"""MIMIC-IV extraction on tiny hand-written gzip CSVs in the real MIMIC-IV layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amc.errors import InputError
from amc.features.mimic import (
    LAB_STATS,
    code_bucket,
    code_token,
    extract_code_features,
    extract_lab_features,
    extract_note_texts,
    label_table,
    load_index_admissions,
)

# S1 alive, 2 admissions (readmission listed FIRST in the file: index must be chosen by time)
# S2 dies during the index admission (deathtime set, dod empty)      -> label 1
# S3 dod 400 days after admittime                                   -> label 0, two notes
# S4 no labs, no codes, no discharge note                           -> label 0
# S5 dod 100 days after admittime                                   -> label 1
PATIENTS = """subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod
1,F,60,2150,2014 - 2016,
2,M,70,2150,2014 - 2016,
3,F,55,2150,2017 - 2019,2151-02-05
4,M,40,2150,2008 - 2010,
5,F,80,2150,2008 - 2010,2150-04-11
"""
ADM_COLS = (
    "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admission_location,"
    "discharge_location,insurance,language,marital_status,race,edregtime,edouttime,"
    "hospital_expire_flag"
)
TAIL = "EW EMER.,EMERGENCY ROOM,{loc},Other,ENGLISH,,WHITE,,,{flag}"
ADMISSIONS = (
    "\n".join(
        [
            ADM_COLS,
            "1,102,2150-06-01 10:00:00,2150-06-05 10:00:00,," + TAIL.format(loc="HOME", flag=0),
            "1,101,2150-01-01 08:00:00,2150-01-04 12:00:00,," + TAIL.format(loc="HOME", flag=0),
            "2,201,2150-02-01 00:00:00,2150-02-03 06:00:00,2150-02-03 06:00:00,"
            + TAIL.format(loc="DIED", flag=1),
            "3,301,2150-01-01 12:00:00,2150-01-03 12:00:00,," + TAIL.format(loc="HOME", flag=0),
            "4,401,2150-03-01 09:30:00,2150-03-02 09:30:00,," + TAIL.format(loc="HOME", flag=0),
            "5,501,2150-01-01 00:00:00,2150-01-10 00:00:00,," + TAIL.format(loc="HOME", flag=0),
        ]
    )
    + "\n"
)
D_LABITEMS = """itemid,label,fluid,category
50912,Creatinine,Blood,Chemistry
50971,Potassium,Blood,Chemistry
50983,Sodium,Blood,Chemistry
51006,Urea Nitrogen,Blood,Chemistry
51222,Hemoglobin,Blood,Hematology
"""
LAB_COLS = (
    "labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,charttime,storetime,"
    "value,valuenum,valueuom,ref_range_lower,ref_range_upper,flag,priority,comments"
)
LABEVENTS = (
    LAB_COLS
    + """
1,1,101,11,50912,,2150-01-01 09:00:00,,1.0,1.0,mg/dL,0.4,1.1,,STAT,
2,1,101,12,50912,,2150-01-01 18:00:00,,2.0,2.0,mg/dL,0.4,1.1,abnormal,STAT,
3,1,101,13,50912,,2150-01-03 20:00:00,,9.0,9.0,mg/dL,0.4,1.1,abnormal,STAT,
4,1,101,14,50912,,2150-01-01 06:00:00,,7.0,7.0,mg/dL,0.4,1.1,abnormal,STAT,
5,1,101,15,99999,,2150-01-01 10:00:00,,5.0,5.0,mg/dL,,,,STAT,
6,1,101,16,50983,,2150-01-01 11:00:00,,___,,mEq/L,133,145,,STAT,
7,1,,17,50983,,2149-12-01 11:00:00,,150,150,mEq/L,133,145,abnormal,ROUTINE,
8,1,102,18,50912,,2150-06-01 12:00:00,,5.0,5.0,mg/dL,0.4,1.1,abnormal,STAT,
9,2,201,21,50983,,2150-02-01 03:00:00,,140,140,mEq/L,133,145,,STAT,
10,5,501,51,50971,,2150-01-01 05:00:00,,4.1,4.1,mEq/L,3.3,5.1,,STAT,
11,5,501,52,51006,,2150-01-01 05:00:00,,ERROR,,mg/dL,6,20,,STAT,
12,3,301,31,50912,,2150-01-01 13:00:00,,0.8,0.8,mg/dL,0.4,1.1,,STAT,
13,3,301,32,50912,,2150-01-01 13:00:00,,0.9,0.9,mg/dL,0.4,1.1,,STAT,
"""
)
DIAGNOSES = """subject_id,hadm_id,seq_num,icd_code,icd_version
1,101,1,4280,9
1,101,2,I509,10
1,102,1,Z9981,10
2,201,1,A419,10
5,501,1,5849,9
"""
PROCEDURES = """subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version
2,201,1,2150-02-01,5A1955Z,10
2,201,2,2150-02-01,9672,9
"""
DISCHARGE = """note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text
1-DS-1,1,101,DS,1,2150-01-04 00:00:00,2150-01-04 13:00:00,"Chief Complaint:
chest pain
Brief Hospital Course:
Stable."
1-DS-2,1,102,DS,2,2150-06-05 00:00:00,2150-06-05 13:00:00,readmission note
2-DS-1,2,201,DS,1,2150-02-03 00:00:00,2150-02-03 13:00:00,Intubated for respiratory failure.
3-DS-5,3,301,DS,5,2150-01-03 00:00:00,2150-01-03 13:00:00,second part
3-DS-4,3,301,DS,4,2150-01-03 00:00:00,2150-01-03 13:00:00,first part
5-DS-1,5,501,DS,1,2150-01-10 00:00:00,2150-01-10 13:00:00,"   "
"""

FILES = {
    "hosp/patients.csv.gz": PATIENTS,
    "hosp/admissions.csv.gz": ADMISSIONS,
    "hosp/d_labitems.csv.gz": D_LABITEMS,
    "hosp/labevents.csv.gz": LABEVENTS,
    "hosp/diagnoses_icd.csv.gz": DIAGNOSES,
    "hosp/procedures_icd.csv.gz": PROCEDURES,
    "note/discharge.csv.gz": DISCHARGE,
}


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        _write(tmp_path, rel, text)
    return tmp_path


def _index(raw: Path) -> pd.DataFrame:
    # S2 dies in hospital, before the default prediction time (discharge): kept here so the
    # layout tests see all five patients; the exclusion itself is tested below
    return load_index_admissions(raw, deaths_before_prediction="keep")


def test_default_excludes_deaths_before_prediction_time(raw: Path) -> None:
    index = load_index_admissions(raw)
    assert index["patient_id"].tolist() == ["1", "3", "4", "5"]
    assert (index["prediction_time"] == index["dischtime"]).all()
    at48 = load_index_admissions(raw, prediction_time="admission+48h")
    assert at48["patient_id"].tolist() == ["1", "2", "3", "4", "5"]  # S2 died at +54 h
    assert at48.loc[1, "label"] == 1
    assert at48.loc[0, "prediction_time"] == pd.Timestamp("2150-01-03 08:00:00")
    with pytest.raises(InputError, match="prediction_time"):
        load_index_admissions(raw, prediction_time="tomorrow")
    with pytest.raises(InputError, match="deaths_before_prediction"):
        load_index_admissions(raw, deaths_before_prediction="ignore")


def _lab(feats: np.ndarray, names: list[str], row: int, itemid: int, stat: str) -> float:
    return float(
        feats[
            row,
            names.index(
                next(n for n in names if n.startswith(f"lab:{itemid}:") and n.endswith(f":{stat}"))
            ),
        ]
    )


def test_index_admissions_and_labels(raw: Path) -> None:
    index = _index(raw)
    assert index["patient_id"].tolist() == ["1", "2", "3", "4", "5"]
    assert index["hadm_id"].tolist() == [101, 201, 301, 401, 501]  # first by admittime
    labels = dict(zip(index["patient_id"], index["label"], strict=True))
    # in-hospital death with empty dod: deathtime is used
    assert labels["2"] == 1
    assert index.loc[1, "death_time"] == pd.Timestamp("2150-02-03 06:00:00")
    assert labels["3"] == 0  # dod 400 days later
    assert labels["5"] == 1  # dod 100 days later
    assert labels["1"] == 0 and labels["4"] == 0
    assert pd.isna(index.loc[0, "death_time"])
    table = label_table(index)
    assert list(table.columns) == ["patient_id", "label"]
    assert table["label"].dtype.kind == "i"


def test_lab_features_window_unknown_items_and_missing(raw: Path) -> None:
    index = _index(raw)
    ids, feats, names = extract_lab_features(raw, index, window_hours=48.0)
    assert ids.tolist() == ["1", "2", "3", "4", "5"]
    # item set: numeric items of d_labitems present in the file, sorted; 99999 (unknown),
    # 51006 (only "ERROR") and 51222 (never measured) are not features
    items = sorted({int(n.split(":")[1]) for n in names})
    assert items == [50912, 50971, 50983]
    assert feats.shape == (5, 3 * len(LAB_STATS)) and feats.dtype == np.float32
    # S1 creatinine: 1.0 and 2.0 in window; 9.0 at +60 h, 7.0 before admission, 5.0 in the
    # readmission and the outpatient sodium are ignored
    assert _lab(feats, names, 0, 50912, "mean") == pytest.approx(1.5)
    assert _lab(feats, names, 0, 50912, "min") == pytest.approx(1.0)
    assert _lab(feats, names, 0, 50912, "max") == pytest.approx(2.0)
    assert _lab(feats, names, 0, 50912, "last") == pytest.approx(2.0)
    assert _lab(feats, names, 0, 50912, "count") == 2
    assert _lab(feats, names, 0, 50912, "missing") == 0
    # S1 sodium only has a "___" result in the window: missing
    assert _lab(feats, names, 0, 50983, "missing") == 1
    assert _lab(feats, names, 0, 50983, "mean") == 0
    # S3: two results at the same charttime: "last" is the later row of the file
    assert _lab(feats, names, 2, 50912, "last") == pytest.approx(0.9)
    # S4 has no labs: all missing indicators 1, everything else 0, row kept
    row4 = feats[3].reshape(3, len(LAB_STATS))
    assert (row4[:, -1] == 1).all() and (row4[:, :-1] == 0).all()
    assert np.isfinite(feats).all()


def test_lab_window_and_chunking(raw: Path) -> None:
    index = _index(raw)
    _, wide, names = extract_lab_features(raw, index, window_hours=72.0)
    assert _lab(wide, names, 0, 50912, "max") == pytest.approx(9.0)
    assert _lab(wide, names, 0, 50912, "last") == pytest.approx(9.0)
    assert _lab(wide, names, 0, 50912, "count") == 3
    _, a, names_a = extract_lab_features(raw, index, chunksize=1_000_000)
    _, b, names_b = extract_lab_features(raw, index, chunksize=2)
    assert names_a == names_b
    np.testing.assert_array_equal(a, b)


def test_code_features_fixed_vocab(raw: Path) -> None:
    index = _index(raw)
    ids, feats, names = extract_code_features(raw, index, vocab_size=64)
    assert feats.shape == (5, 64) and len(names) == 64
    assert set(np.unique(feats)) <= {0.0, 1.0}

    def bucket(kind: str, version: int, code: str) -> int:
        return code_bucket(code_token(kind, version, code), 64)

    assert code_token("dx", 9, "4280") == "dx9:428"
    assert code_token("dx", 10, "I50.9 ") == "dx10:I50"
    s1 = {bucket("dx", 9, "4280"), bucket("dx", 10, "I509")}
    assert set(np.flatnonzero(feats[0])) == s1  # readmission's Z9981 is not used
    s2 = {bucket("dx", 10, "A419"), bucket("px", 10, "5A1955Z"), bucket("px", 9, "9672")}
    assert set(np.flatnonzero(feats[1])) == s2
    assert feats[3].sum() == 0  # S4: no codes -> zero row
    assert feats[4, bucket("dx", 9, "5849")] == 1
    # the vocabulary does not depend on the cohort: a subset gives the same rows
    _, sub, _ = extract_code_features(raw, index.iloc[[1, 4]].reset_index(drop=True), 64)
    np.testing.assert_array_equal(sub, feats[[1, 4]])


def test_note_texts(raw: Path) -> None:
    index = _index(raw)
    notes = extract_note_texts(raw, index)
    # S4 has no note, S5 only an empty one: both absent
    assert notes.index.tolist() == ["1", "2", "3"]
    assert "chest pain" in notes["1"] and "readmission" not in notes["1"]
    assert notes["3"] == "first part\n\nsecond part"  # joined in note_seq order


def test_missing_column_names_file_and_column(raw: Path) -> None:
    bad = "\n".join(
        ",".join(c for k, c in enumerate(line.split(",")) if k != 2)
        for line in ADMISSIONS.strip().splitlines()
    )
    _write(raw, "hosp/admissions.csv.gz", bad + "\n")
    with pytest.raises(InputError, match=r"admissions\.csv\.gz.*'admittime'"):
        _index(raw)


def test_missing_lab_column_and_missing_file(raw: Path) -> None:
    index = _index(raw)
    _write(raw, "hosp/labevents.csv.gz", LABEVENTS.replace("valuenum", "value_num"))
    with pytest.raises(InputError, match=r"labevents\.csv\.gz.*'valuenum'"):
        extract_lab_features(raw, index)
    (raw / "note" / "discharge.csv.gz").unlink()
    with pytest.raises(InputError, match=r"discharge\.csv\.gz"):
        extract_note_texts(raw, index)


@pytest.mark.parametrize("window", [6.0, 48.0, 72.0])
def test_lab_engines_agree(raw: Path, window: float) -> None:
    index = _index(raw)
    a = extract_lab_features(raw, index, window_hours=window, engine="duckdb")
    b = extract_lab_features(raw, index, window_hours=window, engine="pandas", chunksize=3)
    assert a[2] == b[2]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_lab_duckdb_batches_and_spill_folder(raw: Path, monkeypatch, tmp_path: Path) -> None:
    """The DuckDB aggregate read back two rows at a time gives the same table, and the
    temporary database folder is gone afterwards (also after an error)."""
    from amc.features import mimic_labs

    index = _index(raw)
    whole = extract_lab_features(raw, index, engine="duckdb")
    monkeypatch.setattr(mimic_labs, "_BATCH_ROWS", 2)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(mimic_labs.tempfile, "tempdir", str(spill))
    batched = extract_lab_features(raw, index, engine="duckdb")
    assert batched[2] == whole[2]
    np.testing.assert_array_equal(batched[1], whole[1])
    assert list(spill.iterdir()) == []
    _write(raw, "hosp/labevents.csv.gz", LABEVENTS.replace(",2.0,2.0,", ",2.0,inf,"))
    with pytest.raises(InputError, match=r"labevents\.csv\.gz: non-finite"):
        extract_lab_features(raw, index, engine="duckdb")
    assert list(spill.iterdir()) == []


@pytest.mark.parametrize("engine", ["duckdb", "pandas"])
def test_lab_max_items_keeps_the_most_frequent_items(raw: Path, engine: str) -> None:
    index = _index(raw)
    _, full, names = extract_lab_features(raw, index, engine=engine)
    _, top, top_names = extract_lab_features(raw, index, engine=engine, max_items=1)
    # creatinine (50912) has the most numeric results in the file
    assert {n.split(":")[1] for n in top_names} == {"50912"}
    keep = [names.index(n) for n in top_names]
    np.testing.assert_array_equal(top, full[:, keep])
    with pytest.raises(InputError, match="lab_max_items"):
        extract_lab_features(raw, index, engine=engine, max_items=0)
