"""Synthetic ADNI-like cohort written in ADNI's real raw formats.

What is written under ``out_dir`` (all seeded, deterministic, byte-identical for the same seed):

- ``mri/<PTID>/<PTID>_bl_T1.nii.gz``: one T1 volume per subject (int16 NIfTI), built from the MNI152
  template and grey/white-matter probability maps that nilearn ships (offline, inside the
  package; skull-stripped like the preprocessed images the paper used). The template is
  resampled once to a working grid of ``volume_shape`` voxels covering a 192 mm cube; per subject
  it gets class-dependent atrophy (medial-temporal "hippocampal" grey matter and cortical grey
  matter pulled towards CSF intensity, ventricles expanded by a radial warp), a random smooth
  affine + elastic deformation, a multiplicative bias field, a scanner gain, magnitude noise
  and, for low-quality scans, blur or extra noise. Scanners differ: voxel size (coarse
  ``192/shape`` mm, fine ``x 0.8`` or anisotropic) and on-disk orientation (RAS, LAS, LPS, or
  permuted axes like a sagittal acquisition), always with a correct affine.
- ``DXSUM_PDXCONV.csv``: RID, PTID, PHASE, VISCODE, VISCODE2, EXAMDATE, DIAGNOSIS (1=CN, 2=MCI,
  3=AD), plus DXCURREN (ADNI1 rows) and DXCHANGE (ADNIGO/2 rows) as the real merged file has;
  several visits per subject, some without any diagnosis, some ADNI2 rows with DXCHANGE only.
- ``UPENNBIOMK.csv``: RID, VISCODE, BATCH, RUNDATE, CSF ABETA42 / TAU / PTAU (Elecsys-style, values
  out of the assay range written ``<200`` / ``>1700`` etc.) and plasma markers, several visits,
  realistic missingness.
- ``APOERES.csv``: RID, APGEN1, APGEN2 (alleles 2/3/4), for subjects with biospecimens.
- ``ADNIMERGE.csv``: RID, PTID, VISCODE, EXAMDATE, DX_bl, DX, AGE, PTGENDER, PTEDUCAT, PTETHCAT,
  PTRACCAT, PTMARRY, APOE4, MMSE, CDRSB, ADAS11, ADAS13, FAQ, MOCA, RAVLT_immediate, ...
- ``genotypes.raw``: PLINK ``--recode A`` dosages (``FID IID PAT MAT SEX PHENOTYPE rs..._A ...``,
  ``NA`` for missing calls), IID = PTID; APOE SNPs rs429358_C / rs7412_T agree with APOERES and a
  few GWAS-hit variants carry class signal.
- ``quality.csv``: patient_id, modality, quality in [0, 1], corruption (``none``, ``missing`` or the
  degradation applied). Ground truth for analysis only; training never reads it.
- ``README.txt``: says the data are synthetic.

Class signal: one latent severity per subject (class mean + shared + modality-specific noise);
each modality observes it mixed with noise according to its per-subject quality, so each modality
alone is moderately predictive (roughly 50-70 % 3-class accuracy) and fusion helps. Missing
modalities follow ADNI: some subjects lack MRI, biospecimens or genotypes, and a few appear only in
the diagnosis table.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform
from scipy import ndimage
from tqdm import tqdm

from amc.data.store import atomic_path
from amc.errors import InputError

log = logging.getLogger(__name__)

CLASS_NAMES = ("CN", "MCI", "AD")
CLASS_PROBS = (0.35, 0.40, 0.25)
MODALITIES = ("mri", "biospecimen", "clinical", "genomic")

#: Side of the cubic field of view (mm) of every synthetic scan, centred on the template brain.
FOV_MM = 192.0
_BRAIN_CENTER_MM = np.array([0.0, -17.0, 5.0])
_HIPPO_CENTERS_MM = np.array([[-27.0, -22.0, -14.0], [27.0, -22.0, -14.0]])
_HIPPO_RADII_MM = np.array([9.0, 20.0, 10.0])
_VENT_CENTERS_MM = np.array([[-13.0, -8.0, 18.0], [13.0, -8.0, 18.0]])
_SITES = (
    "002", "003", "005", "006", "007", "009", "011", "012", "013", "014", "016", "018", "019",
    "022", "023", "024", "027", "029", "031", "032", "033", "035", "036", "037", "041", "051",
    "052", "053", "057", "062", "067", "068", "070", "072", "073", "082", "094", "098", "099",
    "100", "114", "116", "123", "126", "127", "128", "130", "131", "135", "136", "137", "141",
)  # fmt: skip
_PHASES = {  # phase: (probability, RID range, baseline year range)
    "ADNI1": (0.30, (2, 1450), (2005, 2007)),
    "ADNIGO": (0.10, (2000, 2450), (2009, 2010)),
    "ADNI2": (0.30, (4000, 5300), (2011, 2013)),
    "ADNI3": (0.30, (6000, 7300), (2016, 2019)),
}
# (name, counted allele, base frequency, effect on log-odds of the counted allele per class step)
_GWAS_VARIANTS = (
    ("rs6656401", "A", 0.19, 0.45),
    ("rs6733839", "T", 0.39, 0.45),
    ("rs11136000", "T", 0.38, -0.40),
    ("rs3851179", "A", 0.36, -0.40),
    ("rs3764650", "G", 0.10, 0.50),
    ("rs9331896", "C", 0.38, -0.35),
    ("rs610932", "A", 0.42, -0.35),
    ("rs983392", "G", 0.40, -0.35),
    ("rs10792832", "A", 0.36, -0.35),
    ("rs4147929", "A", 0.19, 0.40),
    ("rs28834970", "C", 0.37, 0.35),
    ("rs11218343", "C", 0.04, -0.60),
    ("rs17125944", "C", 0.09, 0.45),
    ("rs10498633", "T", 0.22, -0.35),
    ("rs8093731", "T", 0.02, 0.70),
    ("rs35349669", "T", 0.47, 0.30),
    ("rs190982", "G", 0.41, -0.30),
    ("rs2718058", "G", 0.37, -0.30),
    ("rs1476679", "C", 0.29, -0.30),
    ("rs10948363", "G", 0.27, 0.35),
    ("rs9271192", "C", 0.28, 0.35),
    ("rs75932628", "T", 0.05, 0.80),
)
# APOE allele (2, 3, 4) frequencies per class (CN, MCI, AD): e4 enriched with disease.
_APOE_FREQ = np.array([[0.10, 0.78, 0.12], [0.05, 0.63, 0.32], [0.02, 0.48, 0.50]])
_MARRY = ("Married", "Widowed", "Divorced", "Never married", "Unknown")
_RACE = ("White", "Black", "Asian", "More than one", "Am Indian/Alaskan", "Unknown")
_DX_TEXT = {0: "CN", 1: "MCI", 2: "Dementia"}
_ORIENTATIONS = (  # on-disk axis codes and probability
    (("R", "A", "S"), 0.45),
    (("L", "A", "S"), 0.15),
    (("L", "P", "S"), 0.25),
    (("A", "S", "L"), 0.10),  # sagittal acquisition stored slice-last
    (("P", "I", "R"), 0.05),
)


# --------------------------------------------------------------------------------------------
# template
# --------------------------------------------------------------------------------------------
def load_mni152() -> dict[str, nib.Nifti1Image]:
    """The 1 mm MNI152 (ICBM 2009a sym) T1, GM and WM templates that nilearn ships, scaled 0..1.

    Same files and same 0..1 rescaling as ``nilearn.datasets.load_mni152_template(resolution=1)``,
    ``load_mni152_gm_template`` and ``load_mni152_wm_template``, read straight from nilearn's
    package data with nibabel: importing ``nilearn.datasets`` costs seconds (it pulls
    scikit-learn). Falls back to those loaders if the files are not where nilearn keeps them.
    """
    spec = importlib.util.find_spec("nilearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if locations:
        data_dir = Path(locations[0]) / "datasets" / "data"
        files = {
            k: data_dir / f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz"
            for k in ("t1", "gm", "wm")
        }
        if all(f.is_file() for f in files.values()):
            out = {}
            for k, f in files.items():
                img = nib.load(f)
                arr = np.asarray(img.dataobj, dtype=np.float32)
                out[k] = nib.Nifti1Image(arr / arr.max(), img.affine)
            return out
    from nilearn import datasets  # pragma: no cover - layout changed in a future nilearn

    return {
        "t1": datasets.load_mni152_template(resolution=1),
        "gm": datasets.load_mni152_gm_template(resolution=1),
        "wm": datasets.load_mni152_wm_template(resolution=1),
    }


@functools.lru_cache(maxsize=4)
def _working_template(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """MNI152 T1 and GM/WM probabilities resampled to a ``shape`` grid over the ``FOV_MM`` cube.

    Returns float32 arrays of ``shape``: ``t1`` (0..1), ``gm`` and ``wm`` (probabilities),
    ``hippo`` (medial-temporal GM weight), plus ``vox`` (voxel size, mm) and ``origin`` (mm).
    """
    imgs = load_mni152()
    t1_img = imgs["t1"]
    vox = FOV_MM / np.asarray(shape, dtype=float)
    origin = _BRAIN_CENTER_MM - FOV_MM / 2 + vox / 2  # centre of voxel 0
    grids = np.meshgrid(
        *[origin[i] + vox[i] * np.arange(shape[i]) for i in range(3)], indexing="ij"
    )
    world = np.stack([g.ravel() for g in grids])  # (3, V) mm
    inv = np.linalg.inv(t1_img.affine)
    ijk = inv[:3, :3] @ world + inv[:3, 3:4]

    def _sample(img: nib.Nifti1Image, sigma: float) -> np.ndarray:
        arr = ndimage.gaussian_filter(np.asarray(img.dataobj, dtype=np.float32), sigma)
        out = ndimage.map_coordinates(arr, ijk, order=1, mode="constant", cval=0.0)
        return out.reshape(shape).astype(np.float32)

    aa = max(0.5, (vox.max() / 1.0 - 1) / 2)  # anti-aliasing for the 1 mm -> working-grid step
    t1 = _sample(t1_img, aa)
    gm = _sample(imgs["gm"], aa)
    wm = _sample(imgs["wm"], aa)
    hippo = np.zeros(shape, dtype=np.float32)
    for c in _HIPPO_CENTERS_MM:
        d2 = sum(((grids[i] - c[i]) / _HIPPO_RADII_MM[i]) ** 2 for i in range(3))
        hippo = np.maximum(hippo, np.exp(-d2).astype(np.float32))
    return {"t1": t1, "gm": gm, "wm": wm, "hippo": hippo * gm, "vox": vox, "origin": origin}


# --------------------------------------------------------------------------------------------
# subjects
# --------------------------------------------------------------------------------------------
def _quality(rng: np.random.Generator) -> float:
    """Per-subject, per-modality quality: mostly good, a fifth poor."""
    if rng.random() < 0.2:
        return float(np.clip(rng.beta(2.0, 3.5), 0.02, 1.0))
    return float(np.clip(rng.beta(9.0, 1.8), 0.02, 1.0))


def _make_subjects(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Demographics, class, latent severities, missingness pattern and qualities per subject."""
    cls = rng.choice(3, size=n, p=CLASS_PROBS)
    if len(set(cls.tolist())) < 3:  # tiny cohorts: every class present
        cls[:3] = [0, 1, 2]
    phases = list(_PHASES)
    phase = rng.choice(len(phases), size=n, p=[_PHASES[p][0] for p in phases])
    rids: list[int] = []
    used: set[int] = set()
    for ph in phase:
        lo, hi = _PHASES[phases[ph]][1]
        while True:
            rid = int(rng.integers(lo, hi))
            if rid not in used:
                used.add(rid)
                rids.append(rid)
                break
    sites = rng.choice(len(_SITES), size=n)
    ptid = [f"{_SITES[s]}_S_{r:04d}" for s, r in zip(sites, rids, strict=True)]
    female_p = np.array([0.52, 0.42, 0.45])[cls]
    age = np.array([73.5, 72.8, 75.0])[cls] + rng.normal(0, 6.5, n)
    age = np.clip(age, 55.0, 91.0)
    shared = rng.normal(0, 0.25, n)
    base = cls.astype(float)
    df = pd.DataFrame(
        {
            "RID": rids,
            "PTID": ptid,
            "site": sites,
            "phase": [phases[p] for p in phase],
            "cls": cls,
            "age": np.round(age, 1),
            "female": rng.random(n) < female_p,
            "educ": np.clip(np.round(rng.normal(16.2 - 0.4 * cls, 2.8)), 6, 20).astype(int),
        }
    )
    # modality-specific latent severity (0 = CN ... 2 = AD on average)
    for m, sd in (("mri", 0.35), ("biospecimen", 0.40), ("clinical", 0.35), ("genomic", 0.0)):
        df[f"sev_{m}"] = base + shared + rng.normal(0, sd, n) if sd else base
    for m in MODALITIES:
        df[f"q_{m}"] = [_quality(rng) for _ in range(n)]
    # missingness as in ADNI: a few subjects in the diagnosis table only; then per modality
    diag_only = rng.random(n) < 0.05
    has = {
        "mri": rng.random(n) > 0.12,
        "biospecimen": rng.random(n) > 0.25,
        "clinical": rng.random(n) > 0.02,
        "genomic": rng.random(n) > 0.15,
    }
    if n >= 20:  # small cohorts still show every pattern (tests rely on it)
        if not diag_only.any():
            diag_only[n - 1] = True
        others = np.flatnonzero(~diag_only)
        for k, m in enumerate(("mri", "biospecimen", "genomic")):
            if has[m][~diag_only].all():
                has[m][others[k]] = False
                has["clinical"][others[k]] = True
    none = ~np.any(np.stack(list(has.values())), axis=0)
    has["clinical"] = has["clinical"] | none  # every subject not diag-only has >= 1 modality
    for m in MODALITIES:
        df[f"has_{m}"] = has[m] & ~diag_only
    df["diag_only"] = diag_only
    # a few subjects never get a diagnosis (data but no label): the caller decides
    df["no_dx"] = (rng.random(n) < 0.015) & ~diag_only
    return df


def _observed(sev: float, q: float, rng: np.random.Generator) -> float:
    """A modality's view of the severity: poor quality mixes in an unrelated severity."""
    return q * sev + (1 - q) * rng.normal(1.0, 0.8)


# --------------------------------------------------------------------------------------------
# MRI
# --------------------------------------------------------------------------------------------
def _scanner(site: int) -> dict[str, Any]:
    """Deterministic per-site scanner: resolution regime, orientation and intensity gain."""
    r = np.random.default_rng(10_000 + site)
    regime = r.choice(["coarse", "fine", "aniso"], p=[0.55, 0.30, 0.15])
    codes = _ORIENTATIONS[r.choice(len(_ORIENTATIONS), p=[p for _, p in _ORIENTATIONS])][0]
    return {"regime": str(regime), "codes": codes, "gain": float(r.uniform(300, 1200))}


def _subject_grid(shape: tuple[int, int, int], regime: str) -> np.ndarray:
    """Output array shape for a resolution regime over the same ``FOV_MM`` cube."""
    fine = [int(np.ceil(s * 1.25)) for s in shape]
    if regime == "fine":
        return np.array(fine)
    if regime == "aniso":
        return np.array([fine[0], fine[1], shape[2]])
    return np.array(shape)


@functools.lru_cache(maxsize=16)
def _upsample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights from a coarse control grid to ``n_out`` points."""
    pos = (np.arange(n_out) + 0.5) / n_out * n_in - 0.5
    eye = np.eye(n_in, dtype=np.float32)
    cols = [np.interp(pos, np.arange(n_in), eye[k]) for k in range(n_in)]
    return np.stack(cols, axis=1).astype(np.float32)


def _synth_mri(
    subj: pd.Series, shape: tuple[int, int, int], rng: np.random.Generator
) -> tuple[nib.Nifti1Image, str]:
    """One subject's T1 volume (on-disk orientation applied) and its corruption label."""
    tpl = _working_template(shape)
    q = float(subj["q_mri"])
    sev = max(0.0, _observed(float(subj["sev_mri"]), q, rng))
    age_eff = max(0.0, (float(subj["age"]) - 65.0) / 25.0)
    # atrophy on the working grid: GM pulled towards CSF intensity
    csf = 0.22
    f = np.clip(0.50 * sev * tpl["hippo"] + (0.12 * sev + 0.05 * age_eff) * tpl["gm"], 0, 0.85)
    t1 = tpl["t1"] - f * np.maximum(tpl["t1"] - csf, 0)
    # subject grid in world mm (same FOV, scanner-specific voxel size)
    scanner = _scanner(int(subj["site"]))
    out_shape = _subject_grid(shape, scanner["regime"])
    vox = FOV_MM / out_shape
    origin = _BRAIN_CENTER_MM - FOV_MM / 2 + vox / 2
    axes = [(origin[i] + vox[i] * np.arange(out_shape[i])).astype(np.float32) for i in range(3)]
    grid = np.meshgrid(*axes, indexing="ij", sparse=True)  # output world mm, sparse
    # backward map, output point -> template voxel index. First ventricle enlargement (sample
    # closer to the ventricle centres; separable Gaussian weight), then a random affine (head
    # pose and size) and a smooth elastic field from a coarse control grid.
    a = np.float32(0.20 * sev + 0.05 * age_eff)
    pts = list(grid)
    for vc in _VENT_CENTERS_MM:
        d = [grid[i] - np.float32(vc[i]) for i in range(3)]
        g = [np.exp(-(d[i] ** 2) / np.float32(2 * 14.0**2)) for i in range(3)]
        w = (a * g[0]) * g[1] * g[2]
        pts = [pts[i] - w * d[i] for i in range(3)]
    ang = np.deg2rad(rng.normal(0, 3.0, 3))
    cx, cy, cz = np.cos(ang)
    sx, sy, sz = np.sin(ang)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    mat = rx @ ry @ rz / rng.uniform(0.95, 1.05)
    shift = rng.normal(0, 3.0, 3)
    c = _BRAIN_CENTER_MM
    to_idx = np.diag(1.0 / tpl["vox"])
    m = (to_idx @ mat).astype(np.float32)
    b = (to_idx @ (c + shift - tpl["origin"] - mat @ c)).astype(np.float32)
    up = [_upsample_matrix(5, int(n)) for n in out_shape]
    ijk = np.empty((3, *out_shape), dtype=np.float64)  # float64: faster in map_coordinates
    for i in range(3):
        ctrl = (rng.normal(0, 2.5, (5, 5, 5)) / tpl["vox"][i]).astype(np.float32)
        ijk[i] = np.einsum("ia,jb,kc,abc->ijk", *up, ctrl, optimize=True)
        ijk[i] += m[i, 0] * pts[0] + b[i]
        ijk[i] += m[i, 1] * pts[1]
        ijk[i] += m[i, 2] * pts[2]
    img = ndimage.map_coordinates(t1, ijk, order=1, mode="constant", cval=0.0)
    brain = img > 0.02  # the template is skull-stripped: background stays exactly 0
    # quality degradations
    corruption = "none"
    noise_sd = 0.015 + 0.06 * (1 - q)
    bias = 0.05 + 0.25 * (1 - q)
    if q < 0.55:
        corruption = str(rng.choice(["noise", "bias_field", "motion_blur", "low_contrast"]))
        if corruption == "noise":
            noise_sd *= 2.5
        elif corruption == "bias_field":
            bias *= 2.0
        elif corruption == "motion_blur":
            img = ndimage.gaussian_filter(img, sigma=0.7 + 1.2 * (1 - q))
        else:
            img = 0.35 + (img - 0.35) * (0.4 + 0.5 * q)
            img = np.clip(img, 0, None)
    up3 = [_upsample_matrix(3, int(n)) for n in out_shape]
    log_bias = rng.normal(0, bias, (3, 3, 3)).astype(np.float32)
    img *= np.exp(np.einsum("ia,jb,kc,abc->ijk", *up3, log_bias, optimize=True))
    # magnitude-image noise |signal + Gaussian| (Rician-like) inside the skull-stripped brain
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(noise_sd)
    img += noise
    np.abs(img, out=img)
    img *= brain
    gain = scanner["gain"] * rng.uniform(0.9, 1.1)
    data = np.clip(np.round(img * gain), 0, 32767).astype(np.int16)
    affine = np.eye(4)
    affine[:3, :3] = np.diag(vox)
    affine[:3, 3] = origin
    transform = ornt_transform(axcodes2ornt(("R", "A", "S")), axcodes2ornt(scanner["codes"]))
    data = apply_orientation(data, transform)
    affine = affine @ inv_ornt_aff(transform, tuple(out_shape))
    nii = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    nii.header.set_xyzt_units("mm", "sec")
    nii.set_qform(affine, code=1)
    nii.set_sform(affine, code=1)
    return nii, corruption


def _save_nifti_gz(img: nib.Nifti1Image, path: Path) -> None:
    """Write ``.nii.gz`` deterministically (gzip mtime 0, no embedded file name)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=1, mtime=0) as gz:
        gz.write(img.to_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
_VISITS = (("sc", -1), ("bl", 0), ("m06", 6), ("m12", 12), ("m24", 24), ("m36", 36))
_ADNI3_CODES = {"sc": "sc", "bl": "bl", "m12": "y1", "m24": "y2", "m36": "y3"}


def _visit_plan(subj: pd.Series, rng: np.random.Generator) -> list[tuple[str, str, int, int]]:
    """(VISCODE, VISCODE2, month, class at that visit) for each diagnosis visit."""
    n_follow = int(rng.choice([0, 1, 2, 3, 4], p=[0.15, 0.2, 0.25, 0.25, 0.15]))
    visits = [v for v in _VISITS if v[1] <= 0]
    if rng.random() < 0.5:  # about half the subjects have a screening row
        visits = [v for v in visits if v[0] != "sc"]
    follow = [v for v in _VISITS if v[1] > 0]
    if subj["phase"] == "ADNI3":
        follow = [v for v in follow if v[0] != "m06"]
    visits = visits + follow[:n_follow]
    cls = int(subj["cls"])
    convert_at = 10**6
    if cls == 1 and rng.random() < 0.35:
        convert_at = int(rng.choice([12, 24, 36]))
    elif cls == 0 and rng.random() < 0.07:
        convert_at = int(rng.choice([24, 36]))
    plan = []
    for code, month in visits:
        c = min(cls + 1, 2) if month >= convert_at else cls
        code1 = _ADNI3_CODES.get(code, code) if subj["phase"] == "ADNI3" else code
        plan.append((code1, code, month, c))
    return plan


def _bl_date(phase: str, rng: np.random.Generator) -> date:
    y0, y1 = _PHASES[phase][2]
    return date(int(rng.integers(y0, y1 + 1)), 1, 1) + timedelta(days=int(rng.integers(0, 365)))


def _visit_date(bl: date, month: int, rng: np.random.Generator) -> str:
    days = -28 if month < 0 else int(round(month * 30.44))
    return (bl + timedelta(days=days + int(rng.integers(-10, 11)) * (month > 0))).isoformat()


_DXCHANGE = {(0, 0): 1, (1, 1): 2, (2, 2): 3, (0, 1): 4, (1, 2): 5, (0, 2): 6}


def _dxsum_rows(subj: pd.Series, plan, bl: date, rng: np.random.Generator) -> list[dict]:
    rows = []
    prev = int(subj["cls"])
    for i, (code, code2, month, c) in enumerate(plan):
        row = {
            "PHASE": subj["phase"],
            "RID": int(subj["RID"]),
            "PTID": subj["PTID"],
            "VISCODE": code,
            "VISCODE2": code2,
            "EXAMDATE": _visit_date(bl, month, rng),
            "DXCURREN": "",
            "DXCHANGE": "",
            "DIAGNOSIS": str(c + 1),
        }
        if subj["phase"] == "ADNI1":
            row["DXCURREN"] = str(c + 1)
        elif subj["phase"] in ("ADNIGO", "ADNI2"):
            row["DXCHANGE"] = str(_DXCHANGE[(prev, c)])
            if rng.random() < 0.15:  # older export: DXCHANGE only
                row["DIAGNOSIS"] = ""
        prev = c
        if subj["no_dx"] or (month > 0 and rng.random() < 0.08):
            row.update(DIAGNOSIS="", DXCURREN="", DXCHANGE="")
        if code2 == "bl" and i > 0 and rng.random() < 0.25:
            # baseline without diagnosis: screening (visit before) carries it
            row.update(DIAGNOSIS="", DXCURREN="", DXCHANGE="")
        rows.append(row)
    return rows


def _fmt(x: float, nd: int = 1) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _censor(x: float, lo: float, hi: float, nd: int = 1) -> str:
    """Format an assay value; out of the measuring range as ADNI does ('<200', '>1700')."""
    if not np.isfinite(x):
        return ""
    if x < lo:
        return f"<{lo:g}"
    if x > hi:
        return f">{hi:g}"
    return f"{x:.{nd}f}"


def _biomk_rows(subj, plan, bl, rng) -> tuple[list[dict], str]:
    """UPENNBIOMK-style rows (CSF Elecsys + plasma) for the subject's biospecimen visits."""
    q = float(subj["q_biospecimen"])
    corruption = "none"
    noise = 0.06 + 0.25 * (1 - q)
    batch_shift = rng.normal(0, 0.05)
    if q < 0.55:
        corruption = str(rng.choice(["batch_shift", "assay_noise", "hemolysis"]))
        if corruption == "batch_shift":
            batch_shift += rng.choice([-1, 1]) * rng.uniform(0.25, 0.5)
        elif corruption == "assay_noise":
            noise *= 2.0
    has_csf = rng.random() < 0.75
    has_plasma = rng.random() < 0.8 or not has_csf
    rows = []
    visits = [v for v in plan if v[2] >= 0][:3]
    if rng.random() < 0.1 and len(visits) > 1:
        visits = visits[1:]  # first sample only at a follow-up
    for code, code2, month, c in visits:
        sev = max(
            -0.3, _observed(float(subj["sev_biospecimen"]) + 0.25 * (c - subj["cls"]), q, rng)
        )
        e = rng.normal(0, noise, 6) + batch_shift
        abeta = np.exp(np.log(1450) - 0.36 * sev + e[0] + rng.normal(0, 0.15))
        tau = np.exp(np.log(215) + 0.20 * sev + 0.004 * (subj["age"] - 73) + e[1])
        ptau = np.exp(np.log(19) + 0.27 * sev + e[2])
        nfl = np.exp(np.log(28) + 0.12 * sev + 0.02 * (subj["age"] - 73) + e[3])
        ptau217 = np.exp(np.log(0.14) + 0.45 * sev + 1.5 * e[4])
        ratio = 0.102 - 0.0085 * sev + 0.04 * e[5]
        if corruption == "hemolysis":
            nfl *= 1.6
            abeta *= 0.7
        csf_here = has_csf and rng.random() < 0.85
        pl_here = has_plasma and rng.random() < 0.9
        if not (csf_here or pl_here):
            continue
        rows.append(
            {
                "RID": int(subj["RID"]),
                "VISCODE": code,
                "VISCODE2": code2,
                "BATCH": f"UPENNBIOMK{int(rng.integers(9, 13))}",
                "RUNDATE": _visit_date(bl, month + 2, rng),
                "ABETA42": _censor(abeta, 200, 1700) if csf_here else "",
                "TAU": _censor(tau, 80, 1300) if csf_here else "",
                "PTAU": _censor(ptau, 8, 120, 2) if csf_here else "",
                "PLASMA_NFL": _fmt(nfl, 2) if pl_here and rng.random() > 0.05 else "",
                "PLASMA_PTAU217": _censor(ptau217, 0.03, 5.0, 3) if pl_here else "",
                "PLASMA_AB42_AB40": _fmt(ratio, 4) if pl_here and rng.random() > 0.1 else "",
                "COMMENT": "" if rng.random() > 0.05 else "Repeat of earlier run",
            }
        )
    return rows, corruption


def _adnimerge_rows(subj, plan, bl, apoe4: int, rng) -> tuple[list[dict], str]:
    """ADNIMERGE-style rows for the visits the subject attended (bl onward)."""
    q = float(subj["q_clinical"])
    corruption = "none"
    rater = 1.0 + 1.5 * (1 - q)
    drop = 0.03
    if q < 0.55:
        corruption = str(rng.choice(["rater_noise", "incomplete"]))
        if corruption == "rater_noise":
            rater *= 1.8
        else:
            drop = 0.45
    cls0 = int(subj["cls"])
    dx_bl = ["CN", "LMCI", "AD"][cls0]
    if cls0 == 1 and rng.random() < 0.4:
        dx_bl = "EMCI"
    if cls0 == 0 and rng.random() < 0.15:
        dx_bl = "SMC"
    gender = "Female" if subj["female"] else "Male"
    marry = _MARRY[int(rng.choice(5, p=[0.72, 0.12, 0.09, 0.04, 0.03]))]
    race = _RACE[int(rng.choice(6, p=[0.88, 0.05, 0.03, 0.02, 0.01, 0.01]))]
    eth = "Not Hisp/Latino" if rng.random() < 0.95 else "Hisp/Latino"
    rows = []
    for _code, code2, month, c in plan:
        if month < 0:
            continue
        sev = _observed(float(subj["sev_clinical"]) + 0.6 * (c - cls0) + month / 120, q, rng)

        def item(mean: float, slope: float, sd: float, sev: float = sev) -> float:
            val = mean + slope * sev + rng.normal(0, sd * rater)
            return val if rng.random() > drop else np.nan

        mmse = np.clip(np.round(item(29.0, -2.0, 1.3)), 0, 30)
        cdrsb = np.clip(np.round(item(0.2, 1.6, 0.9) * 2) / 2, 0, 18)
        adas13 = np.clip(item(9.5, 7.5, 4.5), 0, 85)
        adas11 = np.clip(adas13 * 0.68 + rng.normal(0, 1.0), 0, 70)
        faq = np.clip(np.round(item(0.5, 3.5, 3.0)), 0, 30)
        moca = np.clip(np.round(item(26.0, -3.0, 2.0)), 0, 30)
        if subj["phase"] == "ADNI1":
            moca = np.nan  # MoCA was introduced in ADNIGO/2
        ravlt = np.clip(np.round(item(44.0, -8.0, 9.0)), 0, 75)
        rows.append(
            {
                "RID": int(subj["RID"]),
                "COLPROT": subj["phase"],
                "ORIGPROT": subj["phase"],
                "PTID": subj["PTID"],
                "SITE": int(subj["PTID"][:3]),
                "VISCODE": code2,
                "EXAMDATE": _visit_date(bl, month, rng),
                "DX_bl": dx_bl,
                "AGE": f"{subj['age']:.1f}",
                "PTGENDER": gender,
                "PTEDUCAT": int(subj["educ"]),
                "PTETHCAT": eth,
                "PTRACCAT": race,
                "PTMARRY": marry,
                "APOE4": "" if apoe4 < 0 else str(apoe4),
                "CDRSB": _fmt(cdrsb, 1),
                "ADAS11": _fmt(adas11, 2),
                "ADAS13": _fmt(adas13, 2),
                "MMSE": _fmt(mmse, 0),
                "RAVLT_immediate": _fmt(ravlt, 0),
                "FAQ": _fmt(faq, 0),
                "MOCA": _fmt(moca, 0),
                "DX": _DX_TEXT[c] if month == 0 or rng.random() > 0.1 else "",
                "Month": max(month, 0),
            }
        )
    return rows, corruption


def _genotypes(
    subjects: pd.DataFrame, apoe: dict[int, tuple[int, int]], n_variants: int, rng
) -> tuple[list[str], np.ndarray, dict[str, tuple[float, str]]]:
    """Variant names and dosages (P, V) float32 with NaN for missing calls, plus quality."""
    n = len(subjects)
    n_gwas = min(len(_GWAS_VARIANTS), max(0, n_variants - 2))
    n_null = max(0, n_variants - 2 - n_gwas)
    used = {429358, 7412} | {int(v[0][2:]) for v in _GWAS_VARIANTS}
    null_ids: list[int] = []
    while len(null_ids) < n_null:
        r = int(rng.integers(1000, 80_000_000))
        if r not in used:
            used.add(r)
            null_ids.append(r)
    alleles = np.array(list("ACGT"))
    names = ["rs429358_C", "rs7412_T"]
    names += [f"{v[0]}_{v[1]}" for v in _GWAS_VARIANTS[:n_gwas]]
    names += [f"rs{r}_{alleles[rng.integers(4)]}" for r in null_ids]
    cls = subjects["cls"].to_numpy()
    dos = np.empty((n, len(names)), dtype=np.float32)
    for i, rid in enumerate(subjects["RID"]):
        a1, a2 = apoe[int(rid)]
        dos[i, 0] = (a1 == 4) + (a2 == 4)  # rs429358 C allele <-> e4
        dos[i, 1] = (a1 == 2) + (a2 == 2)  # rs7412 T allele <-> e2
    for j, (_, _, p, beta) in enumerate(_GWAS_VARIANTS[:n_gwas]):
        logit = np.log(p / (1 - p)) + 2.6 * beta * (cls - 1.0)
        dos[:, 2 + j] = rng.binomial(2, 1 / (1 + np.exp(-logit)))
    maf = rng.uniform(0.03, 0.5, n_null)
    dos[:, 2 + n_gwas :] = rng.binomial(2, maf[None, :], size=(n, n_null))
    # column order as in a real file (by position): shuffle deterministically
    order = rng.permutation(len(names))
    names = [names[k] for k in order]
    dos = dos[:, order]
    quality: dict[str, tuple[float, str]] = {}
    for i, (pid, q) in enumerate(zip(subjects["PTID"], subjects["q_genomic"], strict=True)):
        corruption = "none"
        miss = 0.002 + 0.03 * (1 - q)
        err = 0.002 + 0.02 * (1 - q)
        if q < 0.55:
            corruption = str(rng.choice(["low_call_rate", "genotype_errors"]))
            if corruption == "low_call_rate":
                miss = 0.1 + 0.3 * (1 - q)
            else:
                err = 0.05 + 0.25 * (1 - q)
        flip = rng.random(len(names)) < err
        dos[i, flip] = rng.integers(0, 3, int(flip.sum()))
        dos[i, rng.random(len(names)) < miss] = np.nan
        quality[pid] = (q, corruption)
    return names, dos, quality


def _write_raw(
    path: Path, ids: list[str], sex: list[int], names: list[str], dos: np.ndarray
) -> None:
    """PLINK ``--recode A`` text: space separated, ``NA`` for missing."""
    tokens = np.array(["0", "1", "2", "NA"])
    with open(path, "w", newline="\n") as fh:
        fh.write(" ".join(["FID", "IID", "PAT", "MAT", "SEX", "PHENOTYPE", *names]) + "\n")
        for i, pid in enumerate(ids):
            codes = np.where(np.isnan(dos[i]), 3, np.nan_to_num(dos[i])).astype(np.int64)
            fh.write(f"{pid} {pid} 0 0 {sex[i]} -9 " + " ".join(tokens[codes]) + "\n")


def _apoe_genotype(cls: int, rng: np.random.Generator) -> tuple[int, int]:
    a = sorted(int(x) for x in rng.choice([2, 3, 4], size=2, p=_APOE_FREQ[cls]))
    return a[0], a[1]


_README = """SYNTHETIC DATA - NOT REAL ADNI DATA.

Generated by amc.synthetic.adni.generate_adni_cohort (seed={seed}, n_subjects={n}).
Files imitate the layout of ADNI downloads (DXSUM_PDXCONV.csv, UPENNBIOMK.csv, APOERES.csv,
ADNIMERGE.csv, PLINK --recode A genotypes.raw, NIfTI T1 volumes built from the MNI152 template
shipped with nilearn) so the same loaders run on real data. No value describes a real person.
quality.csv holds the ground-truth per-subject modality quality; training must not read it.
"""


def generate_adni_cohort(
    out_dir: Path,
    n_subjects: int = 300,
    seed: int = 0,
    n_variants: int = 2000,
    volume_shape: tuple[int, int, int] = (64, 64, 64),
) -> dict[str, Any]:
    """Write a synthetic ADNI-like cohort into ``out_dir`` (replaced atomically).

    Parameters
    ----------
    out_dir
        Output folder; written to a temporary sibling and renamed on success.
    n_subjects
        Number of subjects (RIDs); about 5 % appear only in the diagnosis table.
    seed
        Everything is derived from it; same seed, byte-identical files.
    n_variants
        Number of genotype columns in ``genotypes.raw`` (>= 2; the first two are the APOE SNPs).
    volume_shape
        Working grid of the MRI: coarse-resolution scans have this shape over a 192 mm cube,
        fine ones ``ceil(shape * 1.25)``.

    Returns
    -------
    dict
        ``out_dir``, ``files`` (relative paths), ``n_subjects``, ``classes`` (baseline class
        counts), ``modalities`` (subjects with each modality), ``diagnosis_only`` count.
    """
    if n_subjects < 3:
        raise InputError(
            f"n_subjects={n_subjects}", hint="need at least 3 subjects (one per class)"
        )
    if n_variants < 2:
        raise InputError(f"n_variants={n_variants}", hint="need at least 2 variants")
    shape = tuple(int(s) for s in volume_shape)
    if len(shape) != 3 or min(shape) < 8:
        raise InputError(f"volume_shape={volume_shape}", hint="three sizes, each >= 8")
    out_dir = Path(out_dir)
    root = np.random.SeedSequence(seed)
    s_subj, s_tab, s_gen, s_mri = root.spawn(4)
    subjects = _make_subjects(n_subjects, np.random.default_rng(s_subj))
    subjects = subjects.sort_values("PTID", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(s_tab)
    quality_rows: list[dict] = []
    dx_rows: list[dict] = []
    bio_rows: list[dict] = []
    apoe_rows: list[dict] = []
    merge_rows: list[dict] = []
    apoe: dict[int, tuple[int, int]] = {}
    for _, subj in subjects.iterrows():
        bl = _bl_date(subj["phase"], rng)
        plan = _visit_plan(subj, rng)
        dx_rows += _dxsum_rows(subj, plan, bl, rng)
        apoe[int(subj["RID"])] = _apoe_genotype(int(subj["cls"]), rng)
        if subj["diag_only"]:
            continue
        a1, a2 = apoe[int(subj["RID"])]
        pid = subj["PTID"]
        if subj["has_biospecimen"]:
            rows, corr = _biomk_rows(subj, plan, bl, rng)
            bio_rows += rows
            apoe_rows.append(
                {
                    "PHASE": subj["phase"],
                    "RID": int(subj["RID"]),
                    "VISCODE": "sc",
                    "APTESTDT": bl.isoformat(),
                    "APGEN1": a1,
                    "APGEN2": a2,
                }
            )
            quality_rows.append(
                {"patient_id": pid, "modality": "biospecimen", "quality": subj["q_biospecimen"],
                 "corruption": corr}
            )  # fmt: skip
        if subj["has_clinical"]:
            n_e4 = (a1 == 4) + (a2 == 4) if subj["has_biospecimen"] else -1
            rows, corr = _adnimerge_rows(subj, plan, bl, int(n_e4), rng)
            merge_rows += rows
            quality_rows.append(
                {"patient_id": pid, "modality": "clinical", "quality": subj["q_clinical"],
                 "corruption": corr}
            )  # fmt: skip
    # genotypes
    grng = np.random.default_rng(s_gen)
    gsub = subjects[subjects["has_genomic"]].reset_index(drop=True)
    names, dos, gq = _genotypes(gsub, apoe, n_variants, grng)
    for pid, (q, corr) in gq.items():
        quality_rows.append(
            {"patient_id": pid, "modality": "genomic", "quality": q, "corruption": corr}
        )
    # MRI: one child generator per subject (order independent)
    mri_subj = subjects[subjects["has_mri"]]
    child = s_mri.spawn(len(subjects))
    files: dict[str, str] = {}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        _working_template(shape)  # load nilearn once, outside the progress bar
        for k, subj in tqdm(
            mri_subj.iterrows(), total=len(mri_subj), desc="synthetic ADNI MRI", disable=None
        ):
            img, corr = _synth_mri(subj, shape, np.random.default_rng(child[k]))
            pid = subj["PTID"]
            _save_nifti_gz(img, tmp / "mri" / pid / f"{pid}_bl_T1.nii.gz")
            quality_rows.append(
                {"patient_id": pid, "modality": "mri", "quality": subj["q_mri"], "corruption": corr}
            )
        files["mri"] = "mri"
        tables = {
            "DXSUM_PDXCONV.csv": pd.DataFrame(dx_rows),
            "UPENNBIOMK.csv": pd.DataFrame(bio_rows),
            "APOERES.csv": pd.DataFrame(apoe_rows),
            "ADNIMERGE.csv": pd.DataFrame(merge_rows),
        }
        for name, df in tables.items():
            df.to_csv(tmp / name, index=False, lineterminator="\n")
            files[name.split(".")[0].lower()] = name
        sex = [2 if f else 1 for f in gsub["female"]]
        _write_raw(tmp / "genotypes.raw", list(gsub["PTID"]), sex, names, dos)
        files["genotypes"] = "genotypes.raw"
        # quality: one row per subject with any data and modality; absent -> "missing"
        qdf = pd.DataFrame(quality_rows)
        present = set(zip(qdf["patient_id"], qdf["modality"], strict=True)) if len(qdf) else set()
        extra = [
            {"patient_id": pid, "modality": m, "quality": 0.0, "corruption": "missing"}
            for pid, diag_only in zip(subjects["PTID"], subjects["diag_only"], strict=True)
            for m in MODALITIES
            if not diag_only and (pid, m) not in present
        ]
        qdf = pd.concat([qdf, pd.DataFrame(extra)], ignore_index=True)
        qdf["quality"] = qdf["quality"].astype(float).round(4)
        qdf = qdf.sort_values(["patient_id", "modality"], kind="stable").reset_index(drop=True)
        qdf.to_csv(tmp / "quality.csv", index=False, lineterminator="\n")
        files["quality"] = "quality.csv"
        (tmp / "README.txt").write_text(_README.format(seed=seed, n=n_subjects))
        files["readme"] = "README.txt"
    counts = subjects["cls"].value_counts().reindex(range(3), fill_value=0)
    summary = {
        "out_dir": str(out_dir),
        "files": files,
        "n_subjects": int(n_subjects),
        "classes": {CLASS_NAMES[i]: int(counts[i]) for i in range(3)},
        "modalities": {m: int(subjects[f"has_{m}"].sum()) for m in MODALITIES},
        "diagnosis_only": int(subjects["diag_only"].sum()),
    }
    log.info("synthetic ADNI cohort in %s: %s", out_dir, summary)
    return summary
