"""Tissue detection on a slide thumbnail (Otsu on saturation, pen ink removed)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def detect_tissue(
    slide,
    thumb_size: int = 1024,
    min_saturation: int = 20,
    exclude_pen: bool = True,
    min_downsample: float = 8.0,
) -> np.ndarray:
    """Tissue mask of a slide from a thumbnail.

    Otsu threshold on the HSV saturation of a thumbnail (whose longer side is at most
    ``thumb_size``, and each of whose pixels covers at least ``min_downsample`` level-0 pixels
    so that small slides are not analysed at needless resolution), floored at
    ``min_saturation`` so that a blank slide yields no tissue, with
    green / blue pen ink removed by hue, then a small morphological cleanup (opening, closing,
    hole filling, removal of specks).

    Returns
    -------
    np.ndarray
        (h, w) bool mask over the thumbnail; it spans the whole level-0 extent, so level-0
        pixel (x, y) maps to mask cell (y * h / H, x * w / W).
    """
    longer = max(slide.dimensions)
    thumb = slide_thumbnail(slide, max(16, min(thumb_size, int(longer / min_downsample))))
    hsv = np.asarray(thumb.convert("HSV"))
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    threshold = max(_otsu(sat), min_saturation)
    mask = sat > threshold
    mask &= val > 30  # black ink / scanner borders
    if exclude_pen:
        # PIL hue is 0..255; green..blue inks sit between ~70 and ~185 (100..260 degrees),
        # H&E stains are pink / purple (beyond ~190 or below ~20).
        mask &= ~((hue > 70) & (hue < 185))
    if not mask.any():
        return mask
    return _clean_mask(mask)


def _clean_mask(mask: np.ndarray) -> np.ndarray:
    """Opening, closing (separable square min / max filters, fast), hole filling, specks."""
    m = mask.astype(np.uint8)
    m = ndimage.maximum_filter(ndimage.minimum_filter(m, size=3), size=3)  # opening
    m = ndimage.minimum_filter(ndimage.maximum_filter(m, size=5), size=5)  # closing
    mask = m.astype(bool)
    # holes: background components that do not touch the border
    background, n_bg = ndimage.label(~mask)
    if n_bg:
        border = np.unique(
            np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
        )
        hole = np.ones(n_bg + 1, bool)
        hole[border] = False
        hole[0] = False
        mask = mask | hole[background]
    labels, n = ndimage.label(mask)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = sizes >= max(4, int(0.0005 * mask.size))
        keep[0] = False
        mask = keep[labels]
    return mask


def slide_thumbnail(slide, thumb_size: int = 1024, chunk: int = 2048) -> Image.Image:
    """RGB thumbnail whose longer side is at most ``thumb_size``, on a white background.

    Read from the coarsest pyramid level that is still at least as fine as the thumbnail;
    when that level is large (a slide without a pyramid), it is read in ``chunk``-sized
    regions that are shrunk one by one, so memory stays bounded by the chunk size.
    """
    W, H = slide.dimensions
    ds = max(W / thumb_size, H / thumb_size, 1.0)
    tw, th = max(1, int(round(W / ds))), max(1, int(round(H / ds)))
    level = slide.get_best_level_for_downsample(ds)
    lw, lh = slide.level_dimensions[level]
    level_ds = float(slide.level_downsamples[level])
    thumb = Image.new("RGB", (tw, th), (255, 255, 255))
    for ly in range(0, lh, chunk):
        for lx in range(0, lw, chunk):
            cw, ch = min(chunk, lw - lx), min(chunk, lh - ly)
            region = slide.read_region((int(lx * level_ds), int(ly * level_ds)), level, (cw, ch))
            rgb = Image.new("RGB", region.size, (255, 255, 255))
            rgb.paste(region, mask=region.getchannel("A") if region.mode == "RGBA" else None)
            x0, y0 = int(lx * tw / lw), int(ly * th / lh)
            x1, y1 = int(round((lx + cw) * tw / lw)), int(round((ly + ch) * th / lh))
            if x1 > x0 and y1 > y0:
                if rgb.size != (x1 - x0, y1 - y0):
                    rgb = rgb.resize((x1 - x0, y1 - y0), Image.BOX)
                thumb.paste(rgb, (x0, y0))
    return thumb


def _otsu(values: np.ndarray) -> int:
    """Otsu threshold of uint8 values."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    w1 = total - w0
    m0 = np.cumsum(hist * levels)
    mu_t = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu_t * w0 / total - m0) ** 2 / (w0 * w1 / total)
    between[~np.isfinite(between)] = 0
    return int(np.argmax(between))
