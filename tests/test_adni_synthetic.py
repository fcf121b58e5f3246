"""Synthetic ADNI cohort: formats, determinism, classes, missingness, signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from amc.errors import InputError
from amc.features.adni import (
    extract_biospecimen,
    extract_clinical,
    extract_genomic,
    extract_mri_features,
    load_diagnosis,
    parse_numeric,
)
from amc.features.plink import read_plink_raw
from amc.synthetic.adni import generate_adni_cohort, load_mni152

N, SHAPE, N_VAR = 60, (16, 16, 16), 40


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("adni") / "cohort"
    summary = generate_adni_cohort(out, n_subjects=N, seed=3, n_variants=N_VAR, volume_shape=SHAPE)
    return out, summary


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_files_in_adni_layout(cohort):
    root, summary = cohort
    for name in (
        "DXSUM_PDXCONV.csv",
        "UPENNBIOMK.csv",
        "APOERES.csv",
        "ADNIMERGE.csv",
        "genotypes.raw",
        "quality.csv",
        "README.txt",
    ):
        assert (root / name).is_file(), name
    assert "SYNTHETIC" in (root / "README.txt").read_text()
    dx = pd.read_csv(root / "DXSUM_PDXCONV.csv", dtype=str)
    assert {"RID", "PTID", "VISCODE", "VISCODE2", "EXAMDATE", "DIAGNOSIS"} <= set(dx.columns)
    assert dx["PTID"].str.fullmatch(r"\d{3}_S_\d{4}").all()
    rid_from_ptid = dx["PTID"].str[-4:].astype(int)
    assert (rid_from_ptid == dx["RID"].astype(int)).all()  # ADNI: PTID ends in the RID
    assert dx.groupby("PTID").size().max() > 1  # several visits per subject
    assert set(dx["DIAGNOSIS"].dropna()) <= {"1", "2", "3"}
    assert dx["DIAGNOSIS"].isna().any()  # visits without diagnosis
    merge = pd.read_csv(root / "ADNIMERGE.csv", dtype=str)
    for col in ("RID", "PTID", "VISCODE", "AGE", "PTGENDER", "PTEDUCAT", "MMSE", "CDRSB", "ADAS13"):
        assert col in merge.columns
    header = (root / "genotypes.raw").read_text().splitlines()[0].split(" ")
    assert header[:6] == ["FID", "IID", "PAT", "MAT", "SEX", "PHENOTYPE"]
    assert len(header) == 6 + N_VAR and "rs429358_C" in header
    assert summary["n_subjects"] == N


def test_mri_volumes_vary_in_orientation_and_voxel_size(cohort):
    root, summary = cohort
    files = sorted((root / "mri").glob("*/*_bl_T1.nii.gz"))
    assert len(files) == summary["modalities"]["mri"] > 0
    codes, zooms = set(), set()
    for f in files:
        img = nib.load(f)
        assert f.name == f"{f.parent.name}_bl_T1.nii.gz"
        codes.add(nib.aff2axcodes(img.affine))
        zooms.add(tuple(np.round(img.header.get_zooms(), 2)))
        data = np.asarray(img.dataobj)
        assert data.dtype == np.int16 and data.max() > 0
    assert ("R", "A", "S") in codes and len(codes) >= 2
    assert len(zooms) >= 2
    # a canonicalised volume covers the same physical cube whatever the voxel size
    extents = {
        tuple(np.round(np.array(nib.load(f).shape) * nib.load(f).header.get_zooms(), 0))
        for f in files
    }
    assert extents == {(192.0, 192.0, 192.0)}


def test_mri_is_built_on_the_mni152_template_nilearn_ships():
    from nilearn import datasets

    ours = load_mni152()
    ref = datasets.load_mni152_template(resolution=1)
    np.testing.assert_allclose(ours["t1"].get_fdata(), ref.get_fdata(), atol=1e-6)
    np.testing.assert_allclose(ours["t1"].affine, ref.affine)


def test_classes_present_with_roughly_adni_balance(cohort):
    root, summary = cohort
    lab = load_diagnosis(root / "DXSUM_PDXCONV.csv")
    counts = lab["label"].value_counts()
    assert set(counts.index) == {"CN", "MCI", "AD"}
    assert all(counts[c] >= 5 for c in ("CN", "MCI", "AD"))
    assert set(summary["classes"]) == {"CN", "MCI", "AD"}
    assert sum(summary["classes"].values()) == N


def test_missing_modalities_and_diagnosis_only_subjects(cohort):
    root, summary = cohort
    dxsum = root / "DXSUM_PDXCONV.csv"
    labels = set(load_diagnosis(dxsum)["patient_id"])
    mods = {
        "clinical": set(extract_clinical(root / "ADNIMERGE.csv")[0]),
        "biospecimen": set(
            extract_biospecimen([root / "UPENNBIOMK.csv"], dxsum, apoe_csv=root / "APOERES.csv")[0]
        ),
        "genomic": set(read_plink_raw(root / "genotypes.raw")[0]),
        "mri": {p.name for p in (root / "mri").iterdir()},
    }
    anywhere = set().union(*mods.values())
    diag_only = labels - anywhere
    assert len(diag_only) >= 1 and summary["diagnosis_only"] >= 1
    for m in ("mri", "biospecimen", "genomic"):
        assert anywhere - mods[m], f"every subject has {m}"
    q = pd.read_csv(root / "quality.csv")
    assert set(q.columns) == {"patient_id", "modality", "quality", "corruption"}
    assert set(q["modality"]) == {"mri", "biospecimen", "clinical", "genomic"}
    assert q["quality"].between(0, 1).all()
    assert not set(q["patient_id"]) & diag_only  # diagnosis-only subjects have no data at all
    missing = q[q["corruption"] == "missing"]
    for m, ids in mods.items():
        present = set(q[(q["modality"] == m) & (q["corruption"] != "missing")]["patient_id"])
        assert present == ids, m
        assert not set(missing[missing["modality"] == m]["patient_id"]) & ids
    assert (q["corruption"].isin(["none", "missing"])).mean() < 1  # some degraded data


def test_apoe_snps_agree_with_apoeres(cohort):
    root, _ = cohort
    ids, dos, names = read_plink_raw(root / "genotypes.raw", variants=["rs429358_C", "rs7412_T"])
    apoe = pd.read_csv(root / "APOERES.csv")
    dx = pd.read_csv(root / "DXSUM_PDXCONV.csv")
    rid_to_ptid = dict(zip(dx["RID"], dx["PTID"], strict=False))
    e4 = {
        rid_to_ptid[r]: (a == 4) + (b == 4) for r, a, b in apoe[["RID", "APGEN1", "APGEN2"]].values
    }
    pairs = [(row[0], e4[pid]) for pid, row in zip(ids, dos, strict=True) if pid in e4]
    called = [(d, e) for d, e in pairs if not np.isnan(d)]
    assert len(called) > 5
    # genotype errors of low-quality samples may change a few calls; the rest must agree
    assert np.mean([d == e for d, e in called]) > 0.8


def test_class_signal_in_every_modality(cohort):
    root, _ = cohort
    dxsum = root / "DXSUM_PDXCONV.csv"
    lab = dict(load_diagnosis(dxsum).itertuples(index=False))

    def by_class(ids, values):
        s = pd.Series(values, index=list(ids))
        s = s[s.index.isin(list(lab))]
        return s.groupby(s.index.map(lab)).mean()

    ids, feats, names = extract_clinical(root / "ADNIMERGE.csv", include_instruments=True)
    measured = feats[:, names.index("MMSE_missing")] == 0  # missing values are filled with 0
    mmse = by_class(ids[measured], feats[measured, names.index("MMSE")])
    assert mmse["CN"] > mmse["MCI"] > mmse["AD"]
    bio = pd.read_csv(root / "UPENNBIOMK.csv", dtype=str)
    assert bio["ABETA42"].str.startswith(">").any()  # out-of-range values as ADNI writes them
    ids, feats, names = extract_biospecimen([root / "UPENNBIOMK.csv"], dxsum)
    measured = feats[:, names.index("PTAU_missing")] == 0
    ptau = by_class(ids[measured], feats[measured, names.index("PTAU")])
    assert ptau["AD"] > ptau["CN"]
    ids, feats, names = extract_genomic(root / "genotypes.raw")
    e4 = by_class(ids, feats[:, names.index("rs429358_C")])
    assert e4["AD"] > e4["CN"]
    ids, vols = extract_mri_features(root / "mri", shape=(12, 12, 12))
    assert vols.shape[1:] == (12, 12, 12) and np.isfinite(vols).all()
    assert parse_numeric([">1700"])[0] == 1700


def test_generation_is_deterministic(cohort, tmp_path):
    root, _ = cohort
    again = tmp_path / "again"
    generate_adni_cohort(again, n_subjects=N, seed=3, n_variants=N_VAR, volume_shape=SHAPE)
    assert _digest(again) == _digest(root)
    other = tmp_path / "other"
    generate_adni_cohort(other, n_subjects=N, seed=4, n_variants=N_VAR, volume_shape=SHAPE)
    assert _digest(other)["DXSUM_PDXCONV.csv"] != _digest(root)["DXSUM_PDXCONV.csv"]


def test_invalid_arguments(tmp_path):
    with pytest.raises(InputError, match="n_subjects"):
        generate_adni_cohort(tmp_path / "x", n_subjects=2)
    with pytest.raises(InputError, match="volume_shape"):
        generate_adni_cohort(tmp_path / "x", n_subjects=10, volume_shape=(4, 4))
    assert not (tmp_path / "x").exists()
