"""Bad MIMIC-IV and ADNI inputs through the extract stage CLI.

Each case runs ``python -m stages.extract <source> <modality>`` in-process (``stages._cli.run``,
the same code path as the command line) from a temporary project folder and checks the exit
code (2 for bad input), that the message names the file / id / param key, and that no output
was written. The documented non-fatal handlings (a partly unparseable column, a skipped NIfTI)
check the warning and its count instead.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import bed_reader
import nibabel as nib
import numpy as np
import pytest
import yaml

from amc.data.store import read_metadata
from amc.synthetic.mimic import generate_mimic_cohort
from stages import extract
from stages._cli import run

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def mimic_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mimic_template")
    generate_mimic_cohort(out, n_patients=40, seed=2)
    return out


def _ptid(k: int) -> str:
    return f"011_S_{k:04d}"


def _write_adni(root: Path) -> None:
    scores = "MMSE,CDRSB,ADAS11,ADAS13,FAQ,MOCA,RAVLT_immediate"
    rows = [f"RID,PTID,VISCODE,EXAMDATE,AGE,PTEDUCAT,PTGENDER,PTETHCAT,PTRACCAT,PTMARRY,{scores}"]
    for k in range(1, 7):
        demo = f"{k},{_ptid(k)},bl,2012-01-0{k},7{k}.5,1{k},Male,Unknown,White,Married"
        rows.append(f"{demo},2{k},{k}.5,1{k}.0,2{k}.0,{k},2{k},3{k}")
    (root / "ADNIMERGE.csv").write_text("\n".join(rows) + "\n")
    dx = ["RID,PTID,VISCODE,VISCODE2,EXAMDATE,DIAGNOSIS"]
    dx += [f"{k},{_ptid(k)},bl,bl,2012-01-0{k},{1 + k % 3}" for k in range(1, 7)]
    (root / "DXSUM_PDXCONV.csv").write_text("\n".join(dx) + "\n")
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        vol = rng.random((12, 12, 12)).astype(np.float32) + 1.0
        folder = root / "mri" / _ptid(k)
        folder.mkdir(parents=True)
        nib.save(nib.Nifti1Image(vol, np.diag([2.0, 2.0, 2.0, 1.0])), folder / "t1.nii.gz")
    ids = [_ptid(k) for k in range(1, 7)]
    bed_reader.to_bed(
        root / "genotypes.bed",
        rng.integers(0, 3, (6, 5)).astype(np.float32),
        properties={"fid": ids, "iid": ids, "sid": [f"rs{k}" for k in range(5)]},
    )


@pytest.fixture()
def project(tmp_path: Path, mimic_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: params.yaml pointing at a private copy of each raw source."""
    shutil.copytree(mimic_template, tmp_path / "raw" / "mimic")
    (tmp_path / "raw" / "adni").mkdir(parents=True)
    _write_adni(tmp_path / "raw" / "adni")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sources"]["mimic"]["raw"] = "raw/mimic"
    params["sources"]["adni"]["raw"] = "raw/adni"
    params["sources"]["adni"]["files"]["genotypes"] = "genotypes.bed"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _set(project: Path, source: str, **values: object) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["sources"][source].update(values)
    path.write_text(yaml.safe_dump(params))


def _extract(monkeypatch: pytest.MonkeyPatch, source: str, modality: str) -> int:
    monkeypatch.setattr(sys, "argv", ["stages.extract", source, modality])
    try:
        run(extract.main)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def _rewrite_gz(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(edit(lines)) + "\n").encode()))


def _replace_field(lines: list[str], row: int, column: str, value: str) -> list[str]:
    k = lines[0].split(",").index(column)
    fields = lines[row].split(",")
    fields[k] = value
    lines[row] = ",".join(fields)
    return lines


def _fails(monkeypatch, capsys, source: str, modality: str, *named: str) -> None:
    code = _extract(monkeypatch, source, modality)
    err = capsys.readouterr().err
    assert code == 2, err
    for text in named:
        assert text in err, (text, err)
    assert not (Path("data/features") / source / f"{modality}.parquet").exists()
    leftovers = list(Path("data").rglob("*")) if Path("data").exists() else []
    assert not [p for p in leftovers if p.is_file()], leftovers


ADM = "raw/mimic/hosp/admissions.csv.gz"
PAT = "raw/mimic/hosp/patients.csv.gz"


# ------------------------------------------------------------------------------------ MIMIC-IV
def test_mimic_non_integer_subject_id_in_admissions(project, monkeypatch, capsys):
    _rewrite_gz(project / ADM, lambda ls: _replace_field(ls, 3, "subject_id", "10A42"))
    _fails(monkeypatch, capsys, "mimic", "labels", "admissions.csv.gz", "'10A42'", "subject_id")


def test_mimic_non_integer_subject_id_in_patients(project, monkeypatch, capsys):
    _rewrite_gz(project / PAT, lambda ls: _replace_field(ls, 2, "subject_id", "12.5"))
    _fails(monkeypatch, capsys, "mimic", "labels", "patients.csv.gz", "'12.5'")


def test_mimic_non_integer_hadm_id(project, monkeypatch, capsys):
    _rewrite_gz(project / ADM, lambda ls: _replace_field(ls, 1, "hadm_id", "H-1"))
    _fails(monkeypatch, capsys, "mimic", "lab", "admissions.csv.gz", "'H-1'", "hadm_id")


def test_mimic_admissions_without_rows(project, monkeypatch, capsys):
    _rewrite_gz(project / ADM, lambda ls: ls[:1])
    _fails(monkeypatch, capsys, "mimic", "labels", "admissions.csv.gz", "no rows")


def test_mimic_unparseable_lab_charttime(project, monkeypatch, capsys):
    path = project / "raw/mimic/hosp/labevents.csv.gz"
    _rewrite_gz(
        path,
        lambda ls: (
            ls[:1] + [_replace_field(ls, r, "charttime", "yesterday")[r] for r in range(1, len(ls))]
        ),
    )
    _fails(monkeypatch, capsys, "mimic", "lab", "labevents.csv.gz", "'yesterday'")


def test_mimic_bad_prediction_time(project, monkeypatch, capsys):
    _set(project, "mimic", prediction_time="admission+two days")
    _fails(monkeypatch, capsys, "mimic", "labels", "sources.mimic.prediction_time")


def test_mimic_bad_death_policy(project, monkeypatch, capsys):
    _set(project, "mimic", deaths_before_prediction="label")
    _fails(monkeypatch, capsys, "mimic", "labels", "sources.mimic.deaths_before_prediction")


def test_mimic_unknown_note_type(project, monkeypatch, capsys):
    _set(project, "mimic", note_types=["DS", "ECG"])
    _fails(monkeypatch, capsys, "mimic", "note", "sources.mimic.note_types", "ECG")


def test_mimic_bad_note_time(project, monkeypatch, capsys):
    _set(project, "mimic", note_time="chartdate")
    _fails(monkeypatch, capsys, "mimic", "note", "sources.mimic.note_time", "chartdate")


def test_mimic_codes_before_discharge_are_unknown(project, monkeypatch, capsys):
    _set(project, "mimic", prediction_time="admission+24h")
    _fails(monkeypatch, capsys, "mimic", "code", "sources.mimic.prediction_time", "discharge")


def test_mimic_radiology_notes_file_missing(project, monkeypatch, capsys):
    _set(project, "mimic", note_types=["DS", "RR"])
    _fails(monkeypatch, capsys, "mimic", "note", "radiology.csv.gz")


def test_mimic_everyone_dead_before_prediction_time(project, monkeypatch, capsys):
    def all_dead(lines: list[str]) -> list[str]:
        cols = lines[0].split(",")
        a, d = cols.index("admittime"), cols.index("deathtime")
        for r in range(1, len(lines)):
            f = lines[r].split(",")
            f[d] = f[a]
            lines[r] = ",".join(f)
        return lines

    _rewrite_gz(project / ADM, all_dead)
    _fails(monkeypatch, capsys, "mimic", "labels", "prediction time")


# ------------------------------------------------------------------------------------ ADNI
def test_adni_numeric_column_entirely_unparseable(project, monkeypatch, capsys):
    path = project / "raw/adni/ADNIMERGE.csv"
    lines = path.read_text().splitlines()
    for r in range(1, len(lines)):
        lines[r] = _replace_field(lines, r, "AGE", "n/a years")[r]
    path.write_text("\n".join(lines) + "\n")
    _fails(monkeypatch, capsys, "adni", "clinical", "ADNIMERGE.csv", "'AGE'", "6 non-blank")


def test_adni_numeric_column_partly_unparseable_is_counted(project, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    path = project / "raw/adni/ADNIMERGE.csv"
    path.write_text("\n".join(_replace_field(path.read_text().splitlines(), 2, "AGE", "old")))
    assert _extract(monkeypatch, "adni", "clinical") == 0
    assert "1 of 6 non-blank values of AGE are not numbers" in caplog.text
    assert Path("data/features/adni/clinical.parquet").is_file()


def test_adni_instruments_opt_in_warns(project, monkeypatch, caplog):
    assert _extract(monkeypatch, "adni", "clinical") == 0
    names = read_metadata("data/features/adni/clinical.parquet")["feature_names"]
    assert "MMSE" not in names and "AGE" in names
    _set(project, "adni", clinical_instruments=True)
    assert _extract(monkeypatch, "adni", "clinical") == 0
    assert "diagnostic instruments" in caplog.text
    assert "MMSE" in read_metadata("data/features/adni/clinical.parquet")["feature_names"]


def test_adni_corrupt_nifti_fails_by_default(project, monkeypatch, capsys):
    bad = project / "raw/adni/mri" / _ptid(2) / "t1.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    _fails(monkeypatch, capsys, "adni", "mri", f"{_ptid(2)}/t1.nii.gz", "on_error")


def test_adni_corrupt_nifti_skipped_when_asked(project, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    bad = project / "raw/adni/mri" / _ptid(2) / "t1.nii.gz"
    bad.write_bytes(b"random bytes, not a NIfTI")
    _set(project, "adni", on_error="skip")
    assert _extract(monkeypatch, "adni", "mri") == 0
    assert "1 unreadable skipped" in caplog.text and _ptid(2) in caplog.text
    meta = read_metadata("data/features/adni/mri.parquet")
    assert meta["params"]["skipped"] == [str(Path("raw/adni/mri") / _ptid(2) / "t1.nii.gz")]


def test_adni_every_nifti_corrupt_with_skip(project, monkeypatch, capsys):
    for k in (1, 2, 3):
        (project / "raw/adni/mri" / _ptid(k) / "t1.nii.gz").write_bytes(b"\x00" * 10)
    _set(project, "adni", on_error="skip")
    _fails(monkeypatch, capsys, "adni", "mri", "raw/adni/mri", "none of the 3")


def test_adni_bad_on_error_value(project, monkeypatch, capsys):
    _set(project, "adni", on_error="ignore")
    _fails(monkeypatch, capsys, "adni", "mri", "sources.adni.on_error")


def test_adni_bed_without_fam(project, monkeypatch, capsys):
    (project / "raw/adni/genotypes.fam").unlink()
    _fails(monkeypatch, capsys, "adni", "genomic", "genotypes.fam")


def test_adni_truncated_bed(project, monkeypatch, capsys):
    bed = project / "raw/adni/genotypes.bed"
    bed.write_bytes(bed.read_bytes()[:4])
    _fails(monkeypatch, capsys, "adni", "genomic", "genotypes.bed")


def test_adni_bed_reads_end_to_end(project, monkeypatch):
    assert _extract(monkeypatch, "adni", "genomic") == 0
    names = read_metadata("data/features/adni/genomic.parquet")["feature_names"]
    assert len(names) == 6 and names[-1] == "missing_rate"
