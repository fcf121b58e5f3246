"""TCGA clinical labels and pathology reports."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from amc.data.store import read_features
from amc.errors import InputError
from amc.features.tcga import case_barcode, extract_report_features, load_clinical, read_reports

HEADER = "\t".join(
    [
        "case_id",
        "case_submitter_id",
        "project_id",
        "vital_status",
        "days_to_death",
        "days_to_last_follow_up",
        "treatment_type",
    ]
)
CLINICAL = (
    HEADER
    + """
u1\tTCGA-AA-0001\tTCGA-UCEC\tDead\t400\t'--\tPharmaceutical Therapy, NOS
u1\tTCGA-AA-0001\tTCGA-UCEC\tDead\t400\t'--\tRadiation Therapy, NOS
u2\tTCGA-AA-0002\tTCGA-UCEC\tAlive\t'--\t1200\tRadiation Therapy, NOS
u2\tTCGA-AA-0002\tTCGA-UCEC\tAlive\t'--\t1300\tPharmaceutical Therapy, NOS
u3\tTCGA-AA-0003\tTCGA-UCEC\tDead\t'--\t'--\tRadiation Therapy, NOS
u4\tTCGA-AA-0004\tTCGA-UCEC\tNot Reported\t'--\t50\tRadiation Therapy, NOS
u5\tTCGA-BB-0005\tTCGA-LUAD\tDead\t20\t15\tRadiation Therapy, NOS
u6\tTCGA-BB-0006\tTCGA-LUAD\tAlive\t'--\t0\tRadiation Therapy, NOS
"""
)


@pytest.fixture
def clinical_path(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(CLINICAL)
    return path


def test_load_clinical_parses_gdc_missing_and_vital_status(clinical_path, caplog):
    with caplog.at_level(logging.WARNING):
        df = load_clinical(clinical_path)
    assert list(df.columns) == ["patient_id", "project_id", "time", "event"]
    by_id = df.set_index("patient_id")
    # Dead -> days_to_death, event 1; Alive -> days_to_last_follow_up (largest row), event 0.
    assert by_id.loc["TCGA-AA-0001", ["time", "event"]].tolist() == [400.0, 1]
    assert by_id.loc["TCGA-AA-0002", ["time", "event"]].tolist() == [1300.0, 0]
    assert by_id.loc["TCGA-BB-0005", ["time", "event"]].tolist() == [20.0, 1]
    assert by_id.loc["TCGA-BB-0006", ["time", "event"]].tolist() == [0.0, 0]
    # Dead without days_to_death and unknown vital status: dropped and counted.
    assert "TCGA-AA-0003" not in by_id.index and "TCGA-AA-0004" not in by_id.index
    assert len(df) == 4 and df["patient_id"].is_unique
    assert "2 of 6 cases have no usable survival time" in caplog.text
    assert df["time"].dtype == float and df["event"].dtype == int


def test_load_clinical_project_filter_and_errors(clinical_path, tmp_path):
    luad = load_clinical(clinical_path, project="luad")
    assert luad["patient_id"].tolist() == ["TCGA-BB-0005", "TCGA-BB-0006"]
    assert load_clinical(clinical_path, project="TCGA-UCEC")["project_id"].eq("TCGA-UCEC").all()
    with pytest.raises(InputError, match="no case of project TCGA-BRCA"):
        load_clinical(clinical_path, project="BRCA")
    bad = tmp_path / "bad.tsv"
    bad.write_text("case_id\tvital_status\nx\tAlive\n")
    with pytest.raises(InputError, match=r"bad.tsv: missing column.*days_to_death"):
        load_clinical(bad)
    with pytest.raises(InputError, match="not found"):
        load_clinical(tmp_path / "nope.tsv")


def test_load_clinical_dotted_gdc_export(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(
        "cases.case_id\tcases.submitter_id\tproject.project_id\tdemographic.vital_status\t"
        "demographic.days_to_death\tdiagnoses.days_to_last_follow_up\n"
        "u1\tTCGA-CC-0001\tTCGA-LGG\tDead\t99\t'--\n"
        "u2\tTCGA-CC-0002\tTCGA-LGG\tAlive\t'--\t850\n"
    )
    df = load_clinical(path)
    assert df["patient_id"].tolist() == ["TCGA-CC-0001", "TCGA-CC-0002"]
    assert df["time"].tolist() == [99.0, 850.0] and df["event"].tolist() == [1, 0]


def test_case_barcode():
    assert case_barcode("TCGA-A2-A0CM-01Z-00-DX1.AB12.svs") == "TCGA-A2-A0CM"
    assert case_barcode("tcga-a2-a0cm.1234-uuid.PDF") == "TCGA-A2-A0CM"
    assert case_barcode("patient7.txt") == "patient7"


def test_read_reports_folder_with_missing_and_empty(tmp_path, caplog):
    d = tmp_path / "reports"
    d.mkdir()
    (d / "TCGA-AA-0001.txt").write_text("Endometrioid adenocarcinoma, FIGO grade 1.")
    (d / "TCGA-AA-0002.txt").write_text("Serous carcinoma, FIGO grade 3.")
    (d / "TCGA-AA-0003.txt").write_text("  \n")  # empty: missing modality
    (d / "notes.md").write_text("ignored")
    with caplog.at_level(logging.WARNING):
        reports = read_reports(d)
    assert reports.index.tolist() == ["TCGA-AA-0001", "TCGA-AA-0002"]
    assert reports.index.name == "patient_id"
    assert "grade 3" in reports["TCGA-AA-0002"]
    assert "1 empty report" in caplog.text
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no .txt report"):
        read_reports(tmp_path / "empty")
    with pytest.raises(InputError, match="nowhere: report folder or table not found"):
        read_reports(tmp_path / "nowhere")


def test_read_reports_table_formats(tmp_path):
    csv = tmp_path / "TCGA_Reports.csv"
    pd.DataFrame(
        {
            "patient_filename": ["TCGA-BP-5195.25c0b433", "TCGA-BP-5196.aa", "TCGA-BP-5195.second"],
            "text": ["first part", "other", "second part"],
        }
    ).to_csv(csv, index=False)
    reports = read_reports(csv)
    assert reports.index.tolist() == ["TCGA-BP-5195", "TCGA-BP-5196"]
    assert reports["TCGA-BP-5195"] == "first part\n\nsecond part"  # several reports joined
    tsv = tmp_path / "reports.tsv"
    tsv.write_text("case_id\ttext\nTCGA-X1-0001\thello\nTCGA-X1-0002\t\n")
    assert read_reports(tsv).index.tolist() == ["TCGA-X1-0001"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,a\n")
    with pytest.raises(InputError, match="bad.csv: needs an id column"):
        read_reports(bad)


def test_extract_report_features_writes_table(tmp_path):
    d = tmp_path / "reports"
    d.mkdir()
    (d / "TCGA-AA-0001.txt").write_text("Well differentiated endometrioid adenocarcinoma.")
    (d / "TCGA-AA-0002.txt").write_text("Poorly differentiated serous carcinoma, stage IV.")
    (d / "TCGA-ZZ-9999.txt").write_text("Patient outside the cohort.")
    out = tmp_path / "report.parquet"
    result = extract_report_features(
        d, out, patients=["TCGA-AA-0001", "TCGA-AA-0002"], show_progress=False, device="cpu"
    )
    assert result["patients"] == 2 and result["dropped"] == 1
    ids, feats, meta = read_features(out)
    assert ids.tolist() == ["TCGA-AA-0001", "TCGA-AA-0002"]
    assert feats.shape == (2, 384) and np.isfinite(feats).all()
    assert meta["modality"] == "report" and meta["encoder"]
