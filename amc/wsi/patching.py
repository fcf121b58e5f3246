"""The patch grid over a slide's tissue, the pyramid level to read it from, patch reading."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from amc.errors import InputError
from amc.wsi.slide import slide_mpp
from amc.wsi.tissue import detect_tissue


@dataclass(frozen=True)
class PatchPlan:
    """Where and how to read a slide's patches.

    ``coords`` are level-0 top-left corners (K, 2) int64 ``(x, y)``; each patch covers
    ``size0`` level-0 pixels, read at ``level`` as a ``read_size`` square and resized to
    ``patch_size`` when ``read_size`` differs.
    """

    coords: np.ndarray
    level: int
    read_size: int
    size0: int
    patch_size: int
    mpp: float
    target_mpp: float


def plan_patches(
    slide,
    mask: np.ndarray | None = None,
    target_mpp: float = 0.5,
    patch_size: int = 256,
    min_tissue: float = 0.5,
    fallback_mpp: float | None = None,
) -> PatchPlan:
    """Patch grid plus the pyramid level and region size to read (see :func:`patch_grid`)."""
    if target_mpp <= 0 or patch_size <= 0 or not (0 <= min_tissue <= 1):
        raise InputError(
            f"bad patch parameters target_mpp={target_mpp}, patch_size="
            f"{patch_size}, min_tissue={min_tissue}",
            hint="target_mpp > 0, patch_size > 0, 0 <= min_tissue <= 1",
        )
    mpp = slide_mpp(slide, fallback_mpp)
    downsample = target_mpp / mpp
    size0 = max(1, int(round(patch_size * downsample)))
    level = slide.get_best_level_for_downsample(max(downsample, 1.0) + 1e-6)
    level_ds = float(slide.level_downsamples[level])
    read_size = max(1, int(round(size0 / level_ds)))
    if mask is None:
        mask = detect_tissue(slide)
    W, H = slide.dimensions
    nx, ny = W // size0, H // size0
    if nx == 0 or ny == 0 or not mask.any():
        coords = np.zeros((0, 2), np.int64)
    else:
        # Fraction of tissue per grid cell from the mask's integral image.
        mh, mw = mask.shape
        integral = np.zeros((mh + 1, mw + 1), np.float64)
        integral[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0), axis=1)
        gx = np.arange(nx) * size0
        gy = np.arange(ny) * size0
        x0 = np.floor(gx * mw / W).astype(int)
        x1 = np.maximum(np.ceil((gx + size0) * mw / W).astype(int), x0 + 1).clip(max=mw)
        y0 = np.floor(gy * mh / H).astype(int)
        y1 = np.maximum(np.ceil((gy + size0) * mh / H).astype(int), y0 + 1).clip(max=mh)
        area = (y1 - y0)[:, None] * (x1 - x0)[None, :]
        tissue = (
            integral[y1][:, x1] - integral[y0][:, x1] - integral[y1][:, x0] + integral[y0][:, x0]
        )
        frac = tissue / np.maximum(area, 1)
        iy, ix = np.nonzero(frac >= max(min_tissue, 1e-9))
        coords = np.stack([gx[ix], gy[iy]], axis=1).astype(np.int64)
    return PatchPlan(
        coords=coords,
        level=int(level),
        read_size=read_size,
        size0=size0,
        patch_size=patch_size,
        mpp=mpp,
        target_mpp=target_mpp,
    )


def patch_grid(
    slide,
    mask: np.ndarray | None = None,
    target_mpp: float = 0.5,
    patch_size: int = 256,
    min_tissue: float = 0.5,
    fallback_mpp: float | None = None,
) -> np.ndarray:
    """Non-overlapping patch grid over the tissue.

    Each patch covers ``patch_size * target_mpp`` microns; a grid cell is kept when at least
    ``min_tissue`` of it is tissue in ``mask`` (from :func:`detect_tissue` when None).

    Returns
    -------
    np.ndarray
        (K, 2) int64 level-0 ``(x, y)`` top-left corners, row-major; (0, 2) when no tissue.
    """
    return plan_patches(slide, mask, target_mpp, patch_size, min_tissue, fallback_mpp).coords


def read_patch(slide, plan: PatchPlan, xy: Sequence[int]) -> np.ndarray:
    """One patch as (patch_size, patch_size, 3) uint8 RGB (transparent areas -> white)."""
    region = slide.read_region(
        (int(xy[0]), int(xy[1])), plan.level, (plan.read_size, plan.read_size)
    )
    if region.mode == "RGBA":
        bg = Image.new("RGB", region.size, (255, 255, 255))
        bg.paste(region, mask=region.getchannel("A"))
        region = bg
    else:
        region = region.convert("RGB")
    if plan.read_size != plan.patch_size:
        region = region.resize((plan.patch_size, plan.patch_size), Image.BILINEAR)
    return np.asarray(region)


def subsample(coords: np.ndarray, max_patches: int | None, seed: int, key: str) -> np.ndarray:
    """At most ``max_patches`` rows of ``coords``: a deterministic (seed, slide) subsample."""
    if max_patches is None or len(coords) <= max_patches:
        return coords
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    idx = np.sort(rng.choice(len(coords), size=max_patches, replace=False))
    return coords[idx]
