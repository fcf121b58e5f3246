"""ADNI feature extraction: MRI loading, diagnosis visit rule, tabular parsing, PLINK reader."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

from amc.data.store import read_features
from amc.errors import InputError
from amc.features.adni import (
    extract_biospecimen,
    extract_clinical,
    extract_genomic,
    extract_mri_features,
    find_mri_files,
    is_diagnosis_column,
    is_diagnostic_instrument,
    load_diagnosis,
    load_mri_volume,
    parse_numeric,
    visit_month,
    write_modality,
)
from amc.features.plink import read_plink_raw

# ---------------------------------------------------------------------------------------------
# MRI
# ---------------------------------------------------------------------------------------------
FOV = 96.0  # mm, cube


def _phantom(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric smooth 'head' sampled at voxel centres of an n^3 grid over the FOV cube."""
    vox = FOV / n
    c = (np.arange(n) + 0.5) * vox - FOV / 2
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    body = np.exp(-(((x / 30) ** 2 + (y / 36) ** 2 + (z / 26) ** 2) ** 2))
    blob = 0.6 * np.exp(-(((x - 14) ** 2 + (y + 10) ** 2 + (z - 6) ** 2) / (2 * 7.0**2)))
    data = 1000 * (body + blob) * (body > 0.05)
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = -FOV / 2 + vox / 2
    return data.astype(np.float32), affine


def _reorient(data: np.ndarray, affine: np.ndarray, codes: tuple[str, str, str]):
    t = ornt_transform(axcodes2ornt(("R", "A", "S")), axcodes2ornt(codes))
    return apply_orientation(data, t), affine @ inv_ornt_aff(t, data.shape)


def _save(path, data, affine):
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), str(path))
    return path


@pytest.mark.parametrize("codes", [("L", "P", "S"), ("L", "A", "S"), ("A", "S", "L")])
def test_non_canonical_orientation_gives_the_canonical_result(tmp_path, codes):
    data, affine = _phantom(40)
    ras = load_mri_volume(_save(tmp_path / "ras.nii.gz", data, affine), (16, 16, 16))
    d2, a2 = _reorient(data, affine, codes)
    assert nib.aff2axcodes(a2) == codes
    assert not np.array_equal(d2, data)  # the stored array really differs
    other = load_mri_volume(_save(tmp_path / "other.nii.gz", d2, a2), (16, 16, 16))
    np.testing.assert_allclose(other, ras, atol=1e-5)


def test_same_fov_at_different_voxel_sizes_gives_nearly_the_same_volume(tmp_path):
    d1, a1 = _phantom(96)  # 1 mm
    d2, a2 = _phantom(48)  # 2 mm
    v1 = load_mri_volume(_save(tmp_path / "1mm.nii", d1, a1), (24, 24, 24))
    v2 = load_mri_volume(_save(tmp_path / "2mm.nii", d2, a2), (24, 24, 24))
    assert v1.shape == v2.shape == (24, 24, 24)
    assert np.corrcoef(v1.ravel(), v2.ravel())[0, 1] > 0.995
    assert np.abs(v1 - v2).mean() < 0.06


def test_anisotropic_voxels_and_non_cubic_fov_keep_the_geometry(tmp_path):
    d, a = _phantom(48)  # 2 mm isotropic
    d_aniso = d[:, :, 1::2] * 0.5 + d[:, :, 0::2] * 0.5  # 2 x 2 x 4 mm, same FOV
    a_aniso = a.copy()
    a_aniso[2, 2] = 4.0
    a_aniso[2, 3] = -FOV / 2 + 2.0
    iso = load_mri_volume(_save(tmp_path / "iso.nii.gz", d, a), (16, 16, 16))
    aniso = load_mri_volume(_save(tmp_path / "aniso.nii.gz", d_aniso, a_aniso), (16, 16, 16))
    assert np.corrcoef(iso.ravel(), aniso.ravel())[0, 1] > 0.995  # ignoring voxel size: ~0.85
    # a non-cubic FOV is padded to a cube, not stretched: the y-cropped scan equals the full
    # scan with the same part blanked (a plain zoom to the shape would stretch it: corr ~0.74)
    cropped = d.copy()
    cropped[:, :12] = 0
    cropped[:, 36:] = 0
    ref = load_mri_volume(_save(tmp_path / "blank.nii.gz", cropped, a), (16, 16, 16))
    half = load_mri_volume(
        _save(tmp_path / "half.nii.gz", d[:, 12:36], _shift_y(a, 12)), (16, 16, 16)
    )
    assert half.shape == (16, 16, 16)
    np.testing.assert_allclose(half, ref, atol=1e-4)


def test_oblique_scan_is_resampled_to_the_world_frame(tmp_path):
    from nibabel.processing import resample_from_to

    data, affine = _phantom(48)
    ref_img = nib.Nifti1Image(data, affine)
    ref = load_mri_volume(_save(tmp_path / "ref.nii.gz", data, affine), (16, 16, 16))
    angle = np.deg2rad(25.0)
    rot = np.eye(4)
    rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    oblique_affine = rot @ affine  # the same field of view, acquired at 25 degrees
    oblique = resample_from_to(ref_img, ((48, 48, 48), oblique_affine), order=1)
    stored = np.asarray(oblique.dataobj, dtype=np.float32)
    got = load_mri_volume(_save(tmp_path / "obl.nii.gz", stored, oblique_affine), (16, 16, 16))
    naive = load_mri_volume(_save(tmp_path / "naive.nii.gz", stored, affine), (16, 16, 16))
    err, naive_err = np.abs(got - ref).mean(), np.abs(naive - ref).mean()
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.99
    # reading the stored array as if it were axis-aligned (the rotation ignored) is far off
    assert err < naive_err / 10  # measured: 0.003 vs 0.086


def _shift_y(affine, k):
    a = affine.copy()
    a[1, 3] += k * a[1, 1]
    return a


def test_intensity_normalisation_is_robust_and_scale_free(tmp_path):
    d, a = _phantom(32)
    v = load_mri_volume(_save(tmp_path / "a.nii.gz", d, a), (16, 16, 16))
    v_scaled = load_mri_volume(_save(tmp_path / "b.nii.gz", d * 7.3 + 0.0, a), (16, 16, 16))
    np.testing.assert_allclose(v, v_scaled, atol=1e-4)
    assert v.dtype == np.float32
    fg = v > v.min() + 1e-3
    assert abs(float(v[fg].mean())) < 1.0  # brain voxels roughly centred
    spiked = d.copy()
    spiked[16, 16, 16] = 1e7  # one hot voxel must not squash the rest (percentile clip)
    v_spiked = load_mri_volume(_save(tmp_path / "c.nii.gz", spiked, a), (16, 16, 16))
    assert np.corrcoef(v.ravel(), v_spiked.ravel())[0, 1] > 0.98


def test_truncated_and_garbage_nifti_raise_input_error_naming_the_file(tmp_path):
    d, a = _phantom(32)
    good = _save(tmp_path / "good.nii.gz", d, a)
    raw = good.read_bytes()
    bad = tmp_path / "011_S_0002_truncated.nii.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="011_S_0002_truncated.nii.gz"):
        load_mri_volume(bad)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(gzip.compress(b"not a nifti" * 10))
    with pytest.raises(InputError, match="junk.nii.gz"):
        load_mri_volume(junk)
    with pytest.raises(InputError, match="missing.nii"):
        load_mri_volume(tmp_path / "missing.nii")


def test_extract_mri_features_skips_subjects_without_scan_and_roundtrips(tmp_path):
    d, a = _phantom(24)
    mri = tmp_path / "mri"
    (mri / "011_S_0002" / "MPRAGE" / "2005-09-08").mkdir(parents=True)
    _save(mri / "011_S_0002" / "MPRAGE" / "2005-09-08" / "scan_m12.nii.gz", d, a)
    _save(mri / "011_S_0002" / "MPRAGE" / "2005-09-08" / "scan_bl.nii.gz", d * 2, a)
    (mri / "022_S_0004").mkdir()
    _save(mri / "022_S_0004" / "x.nii", d[::-1], a)
    _save(mri / "033_S_0005_bl_T1.nii.gz", d, a)  # flat layout
    files = find_mri_files(mri, ["011_S_0002", "022_S_0004", "033_S_0005", "044_S_0006"])
    assert set(files) == {"011_S_0002", "022_S_0004", "033_S_0005"}
    assert files["011_S_0002"].name == "scan_bl.nii.gz"  # baseline preferred
    ids, vols = extract_mri_features(mri, ["044_S_0006", "022_S_0004", "011_S_0002"], (8, 8, 8))
    assert list(ids) == ["022_S_0004", "011_S_0002"]  # missing subject absent, order kept
    assert vols.shape == (2, 8, 8, 8) and vols.dtype == np.float32
    out = tmp_path / "mri.parquet"
    write_modality(out, ids, vols, extractor="adni.mri", params={"shape": [8, 8, 8]})
    rid, rvol, meta = read_features(out)
    assert list(rid) == list(ids) and meta["shape"] == [8, 8, 8]
    np.testing.assert_array_equal(rvol, vols)


# ---------------------------------------------------------------------------------------------
# diagnosis
# ---------------------------------------------------------------------------------------------
def _write(path, rows, columns):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


DX_COLS = ["PHASE", "RID", "PTID", "VISCODE", "VISCODE2", "EXAMDATE", "DXCHANGE", "DIAGNOSIS"]


@pytest.fixture
def dxsum(tmp_path):
    rows = [
        # A: baseline diagnosis (MCI), later AD
        ("ADNI3", 2, "011_S_0002", "sc", "sc", "2017-01-01", "", "1"),
        ("ADNI3", 2, "011_S_0002", "bl", "bl", "2017-02-01", "", "2"),
        ("ADNI3", 2, "011_S_0002", "y1", "m12", "2018-02-01", "", "3"),
        # B: baseline without diagnosis -> screening
        ("ADNI3", 3, "011_S_0003", "sc", "sc", "2017-01-01", "", "1"),
        ("ADNI3", 3, "011_S_0003", "bl", "bl", "2017-02-01", "", ""),
        ("ADNI3", 3, "011_S_0003", "y2", "m24", "2019-02-01", "", "2"),
        # C: only follow-ups with a diagnosis -> earliest (m06), rows out of order
        ("ADNI2", 4, "022_S_0004", "m12", "m12", "2012-06-01", "", "3"),
        ("ADNI2", 4, "022_S_0004", "bl", "bl", "2011-06-01", "", ""),
        ("ADNI2", 4, "022_S_0004", "m06", "m06", "2011-12-01", "", "2"),
        # D: ADNI2 row with DXCHANGE only (5 = MCI -> AD)
        ("ADNI2", 5, "022_S_0005", "bl", "bl", "2011-06-01", "5", ""),
        # E: no diagnosis at all -> left out
        ("ADNI2", 6, "022_S_0006", "bl", "bl", "2011-06-01", "", ""),
        # F: diagnosis-table only subject (no modality data anywhere)
        ("ADNI1", 7, "033_S_0007", "bl", "bl", "2006-01-01", "", "1"),
    ]
    return _write(tmp_path / "DXSUM_PDXCONV.csv", rows, DX_COLS)


def test_visit_rule_baseline_with_fallbacks(dxsum):
    lab = load_diagnosis(dxsum)
    got = dict(zip(lab["patient_id"], lab["label"], strict=True))
    assert got == {
        "011_S_0002": "MCI",
        "011_S_0003": "CN",
        "022_S_0004": "MCI",
        "022_S_0005": "AD",
        "033_S_0007": "CN",
    }
    assert list(lab.columns) == ["patient_id", "label"]
    assert list(lab["patient_id"]) == sorted(lab["patient_id"])


def test_visit_rule_last_and_exact_code(dxsum):
    last = dict(load_diagnosis(dxsum, visit="last").itertuples(index=False))
    assert last["011_S_0002"] == "AD"
    assert last["011_S_0003"] == "MCI"
    assert last["022_S_0004"] == "AD"
    m12 = dict(load_diagnosis(dxsum, visit="m12").itertuples(index=False))
    assert m12 == {"011_S_0002": "AD", "022_S_0004": "AD"}  # VISCODE2 harmonises ADNI3 'y1'
    first = dict(load_diagnosis(dxsum, visit="first").itertuples(index=False))
    assert first["011_S_0002"] == "CN"  # screening comes first


def test_diagnosis_requires_ptid_and_a_diagnosis_column(tmp_path):
    p = _write(tmp_path / "dx.csv", [(1, "bl", "1")], ["RID", "VISCODE", "DIAGNOSIS"])
    with pytest.raises(InputError, match="PTID"):
        load_diagnosis(p)
    p2 = _write(tmp_path / "dx2.csv", [("011_S_0001", "bl")], ["PTID", "VISCODE"])
    with pytest.raises(InputError, match="diagnosis column"):
        load_diagnosis(p2)


def test_visit_month():
    assert visit_month("sc") == -1 and visit_month("bl") == 0 and visit_month("m06") == 6
    assert visit_month("y2") == 24 and np.isnan(visit_month("uns1"))


# ---------------------------------------------------------------------------------------------
# tabular
# ---------------------------------------------------------------------------------------------
def test_parse_numeric_handles_censored_and_missing_codes():
    got = parse_numeric(["<200", ">1700", " 812.5 ", "-4", "", None, "abc", ">=8", "-1"])
    np.testing.assert_array_equal(got[:3], [200.0, 1700.0, 812.5])
    assert np.isnan(got[3:7]).all()
    assert got[7] == 8.0 and got[8] == -1.0


def test_biospecimen_baseline_rows_missing_indicators_and_absent_subjects(tmp_path, dxsum):
    bio = _write(
        tmp_path / "UPENNBIOMK.csv",
        [
            (2, "bl", "bl", "B9", "<200", "300", ""),
            (2, "bl", "bl", "B10", "400", "500", ""),  # rerun of the same visit: averaged
            (2, "y1", "m12", "B9", "999", "999", "50"),
            (4, "m06", "m06", "B9", ">1700", "", "20"),  # no bl row: earliest visit
            (99, "bl", "bl", "B9", "1", "1", "1"),  # RID without PTID: dropped
        ],
        ["RID", "VISCODE", "VISCODE2", "BATCH", "ABETA42", "TAU", "PTAU"],
    )
    apoe = _write(tmp_path / "APOERES.csv", [(2, 3, 4), (5, 4, 4)], ["RID", "APGEN1", "APGEN2"])
    ids, feats, names = extract_biospecimen([bio], dxsum, apoe_csv=apoe)
    assert list(ids) == ["011_S_0002", "022_S_0004", "022_S_0005"]  # 0003 & 0007: absent
    assert names[:6] == ["ABETA42", "TAU", "PTAU", "APOE_e2", "APOE_e3", "APOE_e4"]
    assert names[6:] == [f"{n}_missing" for n in names[:6]]
    f = dict(zip(names, feats[0], strict=True))
    assert f["ABETA42"] == pytest.approx(300.0)  # (<200 -> 200, 400) averaged
    assert f["PTAU"] == 0.0 and f["PTAU_missing"] == 1.0
    assert f["APOE_e3"] == 1 and f["APOE_e4"] == 1 and f["APOE_e4_missing"] == 0
    g = dict(zip(names, feats[1], strict=True))
    assert g["ABETA42"] == 1700.0 and g["TAU_missing"] == 1.0 and g["APOE_e4_missing"] == 1.0
    h = dict(zip(names, feats[2], strict=True))  # APOE only, no biomarker row
    assert h["APOE_e4"] == 2 and h["ABETA42_missing"] == 1.0
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    ids2, _, _ = extract_biospecimen(bio, dxsum, patient_ids=["022_S_0004", "033_S_0007"])
    assert list(ids2) == ["022_S_0004"]


def test_biospecimen_skips_empty_baseline_rows_and_exact_visit(tmp_path, dxsum):
    bio = _write(
        tmp_path / "U.csv",
        [
            (3, "bl", "bl", "", ""),  # empty baseline row: the next visit with a value is used
            (3, "y2", "m24", "700", ""),
            (2, "bl", "bl", "", ""),  # only empty rows: present, every value missing
            (4, "m12", "m12", "900", "30"),
        ],
        ["RID", "VISCODE", "VISCODE2", "ABETA42", "PTAU"],
    )
    ids, feats, names = extract_biospecimen([bio], dxsum)
    f = {p: dict(zip(names, row, strict=True)) for p, row in zip(ids, feats, strict=True)}
    assert f["011_S_0003"]["ABETA42"] == 700 and f["011_S_0003"]["PTAU_missing"] == 1
    assert f["011_S_0002"]["ABETA42_missing"] == 1 and f["011_S_0002"]["PTAU_missing"] == 1
    ids12, feats12, _ = extract_biospecimen([bio], dxsum, visit="m12")
    assert list(ids12) == ["022_S_0004"] and feats12[0, 0] == 900


def test_biospecimen_rid_only_table_needs_an_id_map(tmp_path):
    bio = _write(tmp_path / "b.csv", [(2, "bl", "5")], ["RID", "VISCODE", "ABETA42"])
    with pytest.raises(InputError, match="id_map_csv"):
        extract_biospecimen([bio])


MERGE_COLS = [
    "RID", "PTID", "VISCODE", "EXAMDATE", "DX_bl", "DX", "AGE", "PTGENDER", "MMSE", "FAQ",
    "PTEDUCAT",
]  # fmt: skip


def test_clinical_has_no_diagnosis_columns_and_one_hot_encodes(tmp_path):
    merge = _write(
        tmp_path / "ADNIMERGE.csv",
        [
            (2, "011_S_0002", "bl", "2017-02-01", "LMCI", "MCI", "71.2", "Female", "27", "", "16"),
            (2, "011_S_0002", "m12", "2018-02-01", "LMCI", "Dementia", "71.2", "Female", "22", "9",
             "16"),
            (4, "022_S_0004", "bl", "2011-06-01", "AD", "Dementia", "80.0", "", "-4", "12", "12"),
        ],
        MERGE_COLS,
    )
    # the instruments are refused unless asked for (they nearly define the diagnosis)
    with pytest.raises(InputError, match="instrument"):
        extract_clinical(merge, numeric_columns=["AGE", "MMSE"], categorical_columns=[])
    _, _, default_names = extract_clinical(merge, categorical_columns=["PTGENDER"])
    assert not any(is_diagnostic_instrument(n.split("=")[0]) for n in default_names)
    assert "AGE" in default_names and "MMSE" not in default_names
    ids, feats, names = extract_clinical(
        merge,
        numeric_columns=["AGE", "MMSE", "FAQ"],
        categorical_columns=["PTGENDER"],
        include_instruments=True,
    )
    assert not any(is_diagnosis_column(n.split("=")[0]) for n in names)
    assert not any(n.upper().startswith("DX") for n in names)
    assert names[:5] == ["AGE", "MMSE", "FAQ", "PTGENDER=Male", "PTGENDER=Female"]
    assert list(ids) == ["011_S_0002", "022_S_0004"]
    a = dict(zip(names, feats[0], strict=True))
    assert a["MMSE"] == 27 and a["FAQ"] == 0 and a["FAQ_missing"] == 1  # baseline row used
    assert a["PTGENDER=Female"] == 1 and a["PTGENDER=Male"] == 0
    b = dict(zip(names, feats[1], strict=True))
    assert b["MMSE_missing"] == 1 and b["PTGENDER=Female_missing"] == 1  # -4 and blank
    # the default column set carries no diagnosis column either
    default_cols = pd.read_csv(merge).columns
    assert "DX" in default_cols and "DX_bl" in default_cols
    for leaky in (["DX"], ["DX_bl"], ["DXCHANGE"], ["DIAGNOSIS"]):
        with pytest.raises(InputError, match="diagnosis"):
            extract_clinical(merge, numeric_columns=leaky, categorical_columns=[])
    with pytest.raises(InputError, match="ADAS13"):
        extract_clinical(
            merge, numeric_columns=["ADAS13"], categorical_columns=[], include_instruments=True
        )


def test_diagnosis_only_subjects_are_labelled_but_in_no_modality(tmp_path, dxsum):
    lab = load_diagnosis(dxsum)
    assert "033_S_0007" in set(lab["patient_id"])
    merge = _write(
        tmp_path / "ADNIMERGE.csv",
        [(2, "011_S_0002", "bl", "2017-02-01", "LMCI", "MCI", "71", "Male", "27", "1", "14")],
        MERGE_COLS,
    )
    bio = _write(tmp_path / "U.csv", [(2, "bl", "500")], ["RID", "VISCODE", "ABETA42"])
    for ids in (
        extract_clinical(merge, numeric_columns=["AGE"], categorical_columns=[])[0],
        extract_biospecimen([bio], dxsum)[0],
    ):
        assert "033_S_0007" not in set(ids) and "011_S_0002" in set(ids)


# ---------------------------------------------------------------------------------------------
# PLINK
# ---------------------------------------------------------------------------------------------
RAW = (
    "FID IID PAT MAT SEX PHENOTYPE rs429358_C rs7412_T rs1_A\n"
    "011_S_0002 011_S_0002 0 0 1 -9 1 0 2\n"
    "011_S_0003 011_S_0003 0 0 2 -9 NA 1 NA\n"
    "022_S_0004 022_S_0004 0 0 2 -9 2 0 0.75\n"
)


def test_read_plink_raw_with_na_and_filters(tmp_path):
    p = tmp_path / "g.raw"
    p.write_text(RAW)
    ids, dos, names = read_plink_raw(p)
    assert list(ids) == ["011_S_0002", "011_S_0003", "022_S_0004"]
    assert names == ["rs429358_C", "rs7412_T", "rs1_A"]
    assert dos.dtype == np.float32 and dos.shape == (3, 3)
    assert np.isnan(dos[1, 0]) and np.isnan(dos[1, 2]) and dos[2, 2] == 0.75
    ids2, dos2, names2 = read_plink_raw(p, patient_ids=["022_S_0004", "x"], variants=["rs1_A"])
    assert list(ids2) == ["022_S_0004"] and names2 == ["rs1_A"] and dos2.tolist() == [[0.75]]
    gz = tmp_path / "g.raw.gz"
    gz.write_bytes(gzip.compress(RAW.replace(" ", "\t").encode()))
    _, dos3, _ = read_plink_raw(gz)
    np.testing.assert_array_equal(np.isnan(dos3), np.isnan(dos))
    np.testing.assert_array_equal(np.nan_to_num(dos3), np.nan_to_num(dos))


def test_extract_genomic_fills_missing_with_zero_and_adds_missing_rate(tmp_path):
    p = tmp_path / "g.raw"
    p.write_text(RAW)
    ids, feats, names = extract_genomic(p)
    assert names[-1] == "missing_rate" and feats.shape == (3, 4)
    assert np.isfinite(feats).all()
    np.testing.assert_allclose(feats[:, -1], [0, 2 / 3, 0], atol=1e-6)
    assert feats[1, 0] == 0 and feats[1, 1] == 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("IID FID PAT MAT SEX PHENOTYPE rs1_A\na a 0 0 1 -9 1\n", "malformed PLINK .raw header"),
        ("FID IID PAT MAT SEX\n", "malformed PLINK .raw header"),
        ("FID IID PAT MAT SEX PHENOTYPE\na a 0 0 1 -9\n", "no variant columns"),
        ("", "malformed PLINK .raw header"),
        ("FID IID PAT MAT SEX PHENOTYPE rs1_A rs2_C\na a 0 0 1 -9 1\n", "line 2 .a. has 1 dosages"),
        ("FID IID PAT MAT SEX PHENOTYPE rs1_A\na a 0 0 1 -9 x\n", "line 2 .a.: non-numeric"),
        ("FID IID PAT MAT SEX PHENOTYPE rs1_A\na a 0 0 1 -9 1\na a 0 0 1 -9 1\n", "twice"),
    ],
)
def test_malformed_plink_raises_input_error(tmp_path, text, match):
    p = tmp_path / "bad.raw"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_plink_raw(p)
    assert "bad.raw" in str(err.value)


def test_plink_unknown_variant_is_an_error(tmp_path):
    p = tmp_path / "g.raw"
    p.write_text(RAW)
    with pytest.raises(InputError, match="rs999_A"):
        read_plink_raw(p, variants=["rs999_A"])
