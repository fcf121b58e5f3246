"""Synthetic ADNI T1 volumes: the MNI152 template nilearn ships, resampled to a working grid,
with per-subject atrophy, pose, elastic warp, bias field, noise and scanner-specific voxel size
and on-disk orientation; written as deterministic ``.nii.gz``."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform
from scipy import ndimage

from amc.synthetic.adni.subjects import _observed

#: Side of the cubic field of view (mm) of every synthetic scan, centred on the template brain.
FOV_MM = 192.0
_BRAIN_CENTER_MM = np.array([0.0, -17.0, 5.0])
_HIPPO_CENTERS_MM = np.array([[-27.0, -22.0, -14.0], [27.0, -22.0, -14.0]])
_HIPPO_RADII_MM = np.array([9.0, 20.0, 10.0])
_VENT_CENTERS_MM = np.array([[-13.0, -8.0, 18.0], [13.0, -8.0, 18.0]])
_ORIENTATIONS = (  # on-disk axis codes and probability
    (("R", "A", "S"), 0.45),
    (("L", "A", "S"), 0.15),
    (("L", "P", "S"), 0.25),
    (("A", "S", "L"), 0.10),  # sagittal acquisition stored slice-last
    (("P", "I", "R"), 0.05),
)


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


def _backward_map(
    grid: list[np.ndarray],
    out_shape: np.ndarray,
    tpl: dict[str, np.ndarray],
    atrophy: np.float32,
    rng: np.random.Generator,
) -> np.ndarray:
    """Template voxel index ``(3, *out_shape)`` for each output point (world mm ``grid``).

    First ventricle enlargement (sample closer to the ventricle centres; separable Gaussian
    weight, strength ``atrophy``), then a random affine (head pose and size) and a smooth elastic
    field from a coarse control grid.
    """
    pts = list(grid)
    for vc in _VENT_CENTERS_MM:
        d = [grid[i] - np.float32(vc[i]) for i in range(3)]
        g = [np.exp(-(d[i] ** 2) / np.float32(2 * 14.0**2)) for i in range(3)]
        w = (atrophy * g[0]) * g[1] * g[2]
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
    return ijk


def _degrade(img: np.ndarray, q: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Quality degradations of a resampled volume (0..1 intensities): a low-quality scan gets
    noise, a strong bias field, motion blur or low contrast; every scan a smooth bias field and
    magnitude noise inside the skull-stripped brain."""
    brain = img > 0.02  # the template is skull-stripped: background stays exactly 0
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
    up3 = [_upsample_matrix(3, int(n)) for n in img.shape]
    log_bias = rng.normal(0, bias, (3, 3, 3)).astype(np.float32)
    img *= np.exp(np.einsum("ia,jb,kc,abc->ijk", *up3, log_bias, optimize=True))
    # magnitude-image noise |signal + Gaussian| (Rician-like) inside the skull-stripped brain
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(noise_sd)
    img += noise
    np.abs(img, out=img)
    img *= brain
    return img, corruption


def _to_nifti(
    data: np.ndarray, vox: np.ndarray, origin: np.ndarray, codes: tuple[str, str, str]
) -> nib.Nifti1Image:
    """RAS volume ``data`` stored in the scanner's on-disk axis ``codes``, with a correct affine."""
    affine = np.eye(4)
    affine[:3, :3] = np.diag(vox)
    affine[:3, 3] = origin
    transform = ornt_transform(axcodes2ornt(("R", "A", "S")), axcodes2ornt(codes))
    out_shape = data.shape
    data = apply_orientation(data, transform)
    affine = affine @ inv_ornt_aff(transform, tuple(out_shape))
    nii = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    nii.header.set_xyzt_units("mm", "sec")
    nii.set_qform(affine, code=1)
    nii.set_sform(affine, code=1)
    return nii


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
    atrophy = np.float32(0.20 * sev + 0.05 * age_eff)
    ijk = _backward_map(grid, out_shape, tpl, atrophy, rng)
    img = ndimage.map_coordinates(t1, ijk, order=1, mode="constant", cval=0.0)
    img, corruption = _degrade(img, q, rng)
    gain = scanner["gain"] * rng.uniform(0.9, 1.1)
    data = np.clip(np.round(img * gain), 0, 32767).astype(np.int16)
    return _to_nifti(data, vox, origin, scanner["codes"]), corruption


def _save_nifti_gz(img: nib.Nifti1Image, path: Path) -> None:
    """Write ``.nii.gz`` deterministically (gzip mtime 0, no embedded file name)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=1, mtime=0) as gz:
        gz.write(img.to_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
