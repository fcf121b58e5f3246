"""ADNI MRI: NIfTI T1 volumes to fixed-size, RAS-oriented, intensity-normalised arrays.

One volume per subject (``<mri_dir>/<PTID>/**/*.nii[.gz]``); see :func:`load_mri_volume` for the
steps (oblique scans to a world-aligned grid, RAS reorientation, anti-aliased field-of-view
resampling, robust z-scoring) and :func:`extract_mri_features` for the ``fail`` / ``skip``
policy on unreadable files.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from scipy import ndimage
from tqdm.auto import tqdm

from amc.errors import InputError

logger = logging.getLogger("amc.features.adni")


def _resample_fov(data: np.ndarray, vox: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Pad to a cube of physical size, anti-alias, and zoom to ``shape`` (order 1)."""
    extent = np.asarray(data.shape) * vox
    side = float(extent.max())
    n_cube = np.maximum(np.round(side / vox).astype(int), np.asarray(data.shape))
    pad = n_cube - np.asarray(data.shape)
    data = np.pad(data, [(p // 2, p - p // 2) for p in pad], mode="constant", constant_values=0.0)
    factors = np.asarray(shape, dtype=float) / n_cube
    sigma = np.maximum(0.0, (1.0 / factors - 1.0) / 2.0)
    if np.any(sigma > 0):
        data = ndimage.gaussian_filter(data, sigma=sigma, mode="constant", cval=0.0)
    out = ndimage.zoom(data, factors, order=1, grid_mode=True, mode="grid-constant", cval=0.0)
    if out.shape != tuple(shape):  # rounding guard; never hit for sane inputs
        out = out[tuple(slice(0, s) for s in shape)]
        out = np.pad(out, [(0, s - o) for s, o in zip(shape, out.shape, strict=True)])
    return out.astype(np.float32, copy=False)


def _normalise(vol: np.ndarray, path: Path) -> np.ndarray:
    """Percentile clip (1-99) and z-score with brain-voxel statistics."""
    if vol.min() < 0:
        vol = vol - vol.min()
    pos = vol[vol > 0]
    if pos.size < 10:
        raise InputError(f"{path}: volume is empty (no positive voxels)", hint="check the file")
    fg = vol > 0.1 * np.percentile(pos, 99)
    lo, hi = np.percentile(vol[fg], [1.0, 99.0])
    vol = np.minimum(vol, hi)
    vol[fg] = np.maximum(vol[fg], lo)
    mu, sd = float(vol[fg].mean()), float(vol[fg].std())
    if not sd > 0:
        raise InputError(f"{path}: volume has constant intensity", hint="check the file")
    return ((vol - mu) / sd).astype(np.float32)


def _deoblique(img: Any) -> Any:
    """``img`` resampled onto a world-aligned grid when its affine is oblique, else itself.

    The grid keeps the scan's shape, voxel sizes and world centre (so the field of view and
    the scale match an axis-aligned acquisition of the same head); corners rotated out of it
    (background) are cropped.
    """
    from nibabel.affines import obliquity

    if float(np.max(np.abs(obliquity(img.affine)))) < 1e-3:
        return img
    from nibabel.processing import resample_from_to

    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    shape = np.asarray(data.shape[:3])
    vox = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    # axis j of the scan is mostly along world axis `world[j]`: keep that pairing
    world = np.argmax(np.abs(img.affine[:3, :3]), axis=0)
    target = np.zeros((4, 4))
    target[world, np.arange(3)] = vox * np.sign(img.affine[world, np.arange(3)])
    target[3, 3] = 1.0
    centre = img.affine @ np.append((shape - 1) / 2.0, 1.0)
    target[:3, 3] = centre[:3] - target[:3, :3] @ ((shape - 1) / 2.0)
    logger.info("oblique affine: resampled to a world-aligned grid (voxels %s mm)", vox.round(2))
    return resample_from_to(nib.Nifti1Image(data, img.affine), (tuple(shape), target), order=1)


def load_mri_volume(path: str | os.PathLike, shape: Sequence[int] = (32, 32, 32)) -> np.ndarray:
    """Load a NIfTI T1 volume as a fixed-size, RAS-oriented, intensity-normalised array.

    Steps
    -----
    1. ``nibabel.load`` and read the data (a truncated ``.nii.gz`` or unreadable file raises
       :class:`~amc.errors.InputError` naming it); a 4-D file with one volume is squeezed.
    2. Oblique scans (axes rotated against the world frame by more than ~0.06 degrees) are
       first resampled onto a world-aligned grid of the same shape, voxel sizes and centre with
       ``nibabel.processing.resample_from_to`` (trilinear); then
       ``nibabel.as_closest_canonical`` permutes / flips the axes to RAS+ (LPS, LAS, sagittal
       slice orders all give the same array, with no interpolation).
    3. Field of view (kept rather than ``nibabel.processing.conform``, which has no
       anti-aliasing: on a textured phantom the same field of view at 1 mm and 2 mm differed by
       a mean 0.056 z-units through ``conform`` vs 0.002 here, ``benchmarks/README.md``): the
       volume is zero-padded symmetrically to a cube whose side is its
       largest physical extent (voxel size x voxels, from the affine), so anisotropic voxels
       and non-cubic FOVs keep the true aspect ratio; then a Gaussian anti-aliasing filter
       (sigma = (1/f - 1)/2 voxels for zoom factor f < 1) and ``scipy.ndimage.zoom`` (order 1,
       ``grid_mode=True``: voxel edges, not centres, are aligned) to ``shape``. The same FOV
       sampled at 1 mm or 2 mm therefore gives (nearly) the same output.
    4. Intensity: brain voxels = voxels above 10 % of the 99th percentile of positive
       intensities (excludes air / zero background); clip to their 1st-99th percentiles (upper
       bound for all voxels), then z-score with their mean and standard deviation.

    Returns
    -------
    np.ndarray
        ``shape`` float32.
    """
    path = Path(path)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 2:
        raise InputError(f"shape={shape}", hint="three sizes >= 2, e.g. [32, 32, 32]")
    if not path.is_file():
        raise InputError(f"{path}: NIfTI file not found")
    try:
        img = _deoblique(nib.load(path))
        img = nib.as_closest_canonical(img)
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except (ImageFileError, OSError, EOFError, zlib.error, ValueError, MemoryError) as exc:
        raise InputError(
            f"{path}: unreadable or truncated NIfTI file ({type(exc).__name__}: {exc})",
            hint="re-download or re-convert this scan, or remove it (the subject then has no MRI)",
        ) from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(
            f"{path}: expected a 3-D volume, got shape {data.shape}",
            hint="give one T1 volume per file",
        )
    if not np.all(np.isfinite(data)):
        logger.warning("%s: %d non-finite voxels set to 0", path, int((~np.isfinite(data)).sum()))
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    vox = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    if not np.all(vox > 0):
        raise InputError(f"{path}: affine has a zero voxel size {vox}", hint="fix the header")
    return _normalise(_resample_fov(data, vox, shape), path)


def find_mri_files(
    mri_dir: str | os.PathLike, patient_ids: Iterable[str] | None = None
) -> dict[str, Path]:
    """One NIfTI file per subject under ``mri_dir``.

    Layouts: ``<mri_dir>/<PTID>/**/*.nii[.gz]`` (ADNI download folders: series / date / image
    id) and, when ``patient_ids`` is given, flat files ``<mri_dir>/<PTID>_*.nii[.gz]`` or
    ``<PTID>.nii[.gz]``. With several files for a subject, one whose name contains the
    baseline token (``_bl_`` / ``_bl.`` / ``_sc_``) is preferred, else the first in sorted path
    order (ADNI folders carry the acquisition date, so that is the earliest scan).
    """
    root = Path(mri_dir)
    if not root.is_dir():
        raise InputError(f"{root}: MRI folder not found", hint="check the ADNI MRI path in params")
    if patient_ids is None:
        ids = sorted(p.name for p in root.iterdir() if p.is_dir())
    else:
        ids = [str(p) for p in dict.fromkeys(patient_ids)]
    found: dict[str, Path] = {}
    for pid in ids:
        cands: list[Path] = []
        sub = root / pid
        if sub.is_dir():
            cands += [p for p in sub.rglob("*") if p.is_file() and _is_nifti(p)]
        if patient_ids is not None:
            cands += [
                p
                for p in root.glob(f"{_glob_escape(pid)}*")
                if p.is_file() and _is_nifti(p) and re.match(rf"{re.escape(pid)}([._]|$)", p.name)
            ]
        if not cands:
            continue
        cands.sort()
        base = [p for p in cands if re.search(r"_(bl|sc)([._])", p.name)]
        found[pid] = (base or cands)[0]
    return found


def _glob_escape(text: str) -> str:
    """Escape glob metacharacters in a literal path part."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _is_nifti(p: Path) -> bool:
    return p.name.endswith((".nii", ".nii.gz"))


def extract_mri_features(
    mri_dir: str | os.PathLike,
    patient_ids: Iterable[str] | None = None,
    shape: Sequence[int] = (32, 32, 32),
    on_error: str = "fail",
    skipped: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load every subject's T1 volume with :func:`load_mri_volume`.

    Subjects without a file are absent (missing modality, counted in the log). An unreadable
    file stops with an :class:`~amc.errors.InputError` naming it (``on_error="fail"``, the
    default) or, with ``on_error="skip"``, is logged as a warning naming it, counted, and the
    subject has no MRI; the skipped paths are appended to ``skipped`` when given (for the
    table's metadata).

    Returns
    -------
    ids : np.ndarray
        (P,) PTIDs with a volume (order of ``patient_ids``, else sorted folder names).
    volumes : np.ndarray
        (P, X, Y, Z) float32.
    """
    if on_error not in ("fail", "skip"):
        raise InputError(f"sources.adni.on_error={on_error!r}", hint="one of fail, skip")
    shape = tuple(int(s) for s in shape)
    files = find_mri_files(mri_dir, patient_ids)
    n_req = len(dict.fromkeys(patient_ids)) if patient_ids is not None else len(files)
    ids = list(files)
    volumes = np.empty((len(ids), *shape), dtype=np.float32)
    kept: list[str] = []
    skipped = [] if skipped is None else skipped
    for pid in tqdm(ids, desc="ADNI MRI", unit="scan", disable=None):
        try:
            volumes[len(kept)] = load_mri_volume(files[pid], shape)
        except InputError as err:
            if on_error == "fail":
                raise InputError(
                    str(err).splitlines()[0],
                    hint="re-download or re-convert this scan, remove it, or set "
                    "sources.adni.on_error: skip (the subject then has no MRI)",
                ) from err
            logger.warning("skipped (on_error=skip): %s", str(err).splitlines()[0])
            skipped.append(str(files[pid]))
            continue
        kept.append(pid)
    if ids and not kept:
        raise InputError(
            f"{mri_dir}: none of the {len(ids)} NIfTI files could be read (on_error=skip)",
            hint="check the MRI folder; an empty MRI table is never written",
        )
    logger.info(
        "%s: %d MRI volumes %s; %d requested subjects without a scan; %d unreadable skipped",
        mri_dir,
        len(kept),
        shape,
        n_req - len(ids),
        len(skipped),
    )
    return np.asarray(kept, dtype=object), volumes[: len(kept)]
