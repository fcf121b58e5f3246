"""Synthetic slides: H&E-like renders written as pyramidal Aperio-style TIFFs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from tqdm import tqdm

from amc.synthetic.tcga.profiles import _Profile, _shown, _uuid


def aperio_description(
    width: int, height: int, mpp: float | None = 0.5, app_mag: float | None = 20, tile: int = 256
) -> str:
    """Aperio-style ImageDescription for page 0 (OpenSlide's ``aperio`` driver parses it)."""
    desc = f"Aperio Image Library v12.0.0\r\n{width}x{height} [0,0 {width}x{height}] "
    desc += f"({tile}x{tile}) JPEG/RGB Q=80"
    if app_mag is not None:
        desc += f"|AppMag = {app_mag:g}"
    if mpp is not None:
        desc += f"|MPP = {mpp:g}"
    return desc


def write_pyramid_tiff(
    path: Path,
    level0: np.ndarray | Image.Image,
    mpp: float | None = 0.5,
    app_mag: float | None = 20,
    min_level_size: int = 256,
    tile: int = 256,
    quality: int = 80,
    level1: Image.Image | None = None,
) -> None:
    """Write an RGB image as an OpenSlide-readable pyramidal tiled TIFF with JPEG tiles.

    Each level (downsample 1, 2, 4, ... until the shorter side would drop below
    ``min_level_size``) is a separate top-level tiled page (OpenSlide ignores SubIFD pyramids).
    With ``mpp`` or ``app_mag`` set, page 0 carries an Aperio ImageDescription so OpenSlide
    reports ``openslide.mpp-x`` / ``openslide.objective-power``; with both None it is a generic
    TIFF without any resolution information.

    Parameters
    ----------
    level0 : np.ndarray or PIL.Image.Image
        (H, W, 3) uint8 full-resolution RGB image.
    level1 : PIL.Image.Image, optional
        The 2x-downsampled level when the caller already has it.
    """
    arr0 = np.asarray(level0)
    h, w = arr0.shape[:2]
    aperio = mpp is not None or app_mag is not None
    desc = aperio_description(w, h, mpp, app_mag, tile) if aperio else None
    opts = dict(
        tile=(tile, tile),
        compression="jpeg",
        compressionargs={"level": quality},
        photometric="rgb",
        metadata=None,
    )
    with tifffile.TiffWriter(path) as tw:
        tw.write(arr0, description=desc, subfiletype=0, **opts)
        img = None
        size = (w, h)
        while min(size) // 2 >= min_level_size:
            if img is None:
                img = level1 if level1 is not None else Image.fromarray(arr0).reduce(2)
            else:
                img = img.reduce(2)
            size = img.size
            tw.write(np.asarray(img), subfiletype=1, **opts)


def write_pyramid_tiff_tiled(
    path: Path,
    width: int,
    height: int,
    tile_fn: Callable[[int, int, int, int], np.ndarray],
    mpp: float | None = 0.5,
    app_mag: float | None = 20,
    min_level_size: int = 512,
    tile: int = 256,
    quality: int = 80,
    show_progress: bool = True,
) -> None:
    """Write a large pyramidal TIFF tile by tile, never holding a level in memory.

    ``tile_fn(downsample, x, y, size)`` returns the (size, size, 3) uint8 tile whose top-left
    corner is at level-0 pixel ``(x, y)`` rendered at ``downsample`` (1, 2, 4, ...). Levels are
    rendered procedurally rather than downsampled, so memory stays at one tile.
    """
    desc = aperio_description(width, height, mpp, app_mag, tile)
    levels = []
    ds = 1
    while True:
        levels.append(ds)
        if min(width, height) // (ds * 2) < min_level_size:
            break
        ds *= 2

    def tiles(ds: int) -> Iterator[np.ndarray]:
        lw, lh = -(-width // ds), -(-height // ds)
        for ty in range(0, lh, tile):
            for tx in range(0, lw, tile):
                yield tile_fn(ds, tx * ds, ty * ds, tile)

    total = sum(math.ceil(width / ds / tile) * math.ceil(height / ds / tile) for ds in levels)
    bar = tqdm(
        total=total,
        desc=f"writing {path.name}",
        unit="tile",
        disable=None if show_progress else True,
    )

    def counted(it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for t in it:
            bar.update(1)
            yield t

    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i, ds in enumerate(levels):
            tw.write(
                counted(tiles(ds)),
                shape=(-(-height // ds), -(-width // ds), 3),
                dtype=np.uint8,
                tile=(tile, tile),
                compression="jpeg",
                compressionargs={"level": quality},
                photometric="rgb",
                description=desc if i == 0 else None,
                subfiletype=0 if i == 0 else 1,
                metadata=None,
            )
    bar.close()


@dataclass
class _SlideSpec:
    path: str
    seed: int
    width: int
    height: int
    risk_shown: float
    stain: tuple[int, int, int]
    corruption: str  # none | blur | pen | stain_shift | low_tissue
    severity: float  # 0..1


def render_slide(spec: _SlideSpec) -> np.ndarray:
    """Render an H&E-like slide (H, W, 3) uint8 whose nuclei statistics reflect the risk."""
    return _upscale2(_render(spec), spec.width, spec.height)


def _upscale2(half: Image.Image, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour upscale of the half-resolution render to (height, width, 3) uint8."""
    return np.asarray(half.resize((width, height), Image.NEAREST))


def _render(spec: _SlideSpec) -> Image.Image:
    """Render a slide at half resolution (level 1) as a PIL image (see :func:`render_slide`).

    Level 0 is its nearest-neighbour 2x upscale, which keeps generation fast; nuclei are
    several level-0 pixels wide so the upscale is invisible after JPEG.
    """
    rng = np.random.default_rng(spec.seed)
    W, H = spec.width, spec.height
    w, h = max(W // 2, 32), max(H // 2, 32)
    g = 32
    gh, gw = max(h // g, 2), max(w // g, 2)
    gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    field_ = np.full((gh, gw), -1.0, np.float32)
    low_tissue = spec.corruption == "low_tissue"
    n_regions = 1 if low_tissue else int(rng.integers(1, 4))
    for _ in range(n_regions):
        cy, cx = rng.uniform(0.25, 0.75) * gh, rng.uniform(0.25, 0.75) * gw
        scale = (0.03 * (1 - spec.severity)) if low_tissue else rng.uniform(0.15, 0.32)
        ry, rx = scale * gh + 1e-3, scale * rng.uniform(0.7, 1.3) * gw + 1e-3
        field_ = np.maximum(field_, 1 - ((gy - cy) / ry) ** 2 - ((gx - cx) / rx) ** 2)
    if not low_tissue:
        field_ += ndimage.gaussian_filter(rng.normal(0, 0.6, field_.shape).astype(np.float32), 1.5)
    # Upsample the smooth field first and threshold afterwards: round, natural tissue edges.
    fine = Image.fromarray(field_).resize((max(w // 4, 2), max(h // 4, 2)), Image.BILINEAR)
    ramp = np.clip(np.asarray(fine) * 6.0 + 0.5, 0, 1)
    alpha = Image.fromarray((ramp * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    a = np.asarray(alpha)

    # Risk -> nuclei density, size, darkness (hyperchromasia) and pleomorphism.
    s = 1.0 / (1.0 + math.exp(-1.5 * spec.risk_shown))  # 0..1
    density = 0.003 + 0.009 * s  # nuclei per half-res pixel of tissue
    n = int(density * float(a.sum()) / 255.0)
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    keep = a[ys, xs] > 128
    ys, xs = ys[keep], xs[keep]
    # Each nucleus: a 3x3 seed whose value carries its size / darkness (pleomorphism), blurred
    # with PIL's Gaussian (much faster than a float convolution), then contrast-stretched.
    seeds = np.zeros((h + 2, w + 2), np.uint8)
    amp = rng.uniform(1.0 - 0.5 * s, 1.0 + 0.5 * s, ys.size)
    val = np.clip(amp * 170, 0, 255).astype(np.uint8)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            seeds[ys + dy, xs + dx] = np.maximum(seeds[ys + dy, xs + dx], val)
    sigma = 1.8 + 1.4 * s
    nuc = Image.fromarray(seeds[1 : h + 1, 1 : w + 1]).filter(ImageFilter.GaussianBlur(sigma))
    gain = 1.4 * 2 * math.pi * sigma * sigma / 9.0
    nuc_l = nuc.point([min(255, int(v * gain)) for v in range(256)])

    stain = np.asarray(spec.stain, np.float32)
    nuc_rgb = np.array([95, 55, 140], np.float32) * (1.0 - 0.35 * s)
    if spec.corruption == "stain_shift":
        shift = np.array([-40, 25, -30], np.float32) * spec.severity
        stain = stain + shift
        nuc_rgb = nuc_rgb + shift * 0.5
    coarse = stain + rng.normal(0, 1, (gh, gw, 1)).astype(np.float32) * np.array(
        [4, 12, 8], np.float32
    )
    stroma = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize(
        (w, h), Image.BILINEAR
    )
    nuc_color = tuple(int(v) for v in np.clip(nuc_rgb, 0, 255))
    stroma.paste(nuc_color, mask=nuc_l)
    img = Image.new("RGB", (w, h), (243, 242, 244))
    img.paste(stroma, mask=alpha)
    if spec.corruption == "blur":
        img = img.filter(ImageFilter.GaussianBlur(radius=1.0 + 4.0 * spec.severity))
    if spec.corruption == "pen":
        draw = ImageDraw.Draw(img)
        colour = [(30, 120, 60), (30, 60, 160), (20, 20, 20)][int(rng.integers(0, 3))]
        for _ in range(int(rng.integers(1, 4))):
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(4)]
            draw.line(pts, fill=colour, width=max(2, int(w * 0.012 * (0.5 + spec.severity))))
    return img


def _render_and_write_slide(spec: _SlideSpec) -> None:
    half = _render(spec)
    if half.size != (spec.width // 2, spec.height // 2):  # tiny slides: the generic path
        write_pyramid_tiff(Path(spec.path), _upscale2(half, spec.width, spec.height))
    else:
        _write_from_half(Path(spec.path), half, spec.width, spec.height)


def _write_from_half(
    path: Path,
    half: Image.Image,
    width: int,
    height: int,
    tile: int = 256,
    quality: int = 80,
    min_level_size: int = 256,
) -> None:
    """Like :func:`write_pyramid_tiff` for a level 0 that is the 2x nearest upscale of ``half``.

    Level-0 tiles are upscaled one by one from the half-resolution array, so the full-size
    image is never built (the slowest step of generation otherwise).
    """
    th = tile // 2

    def level0_tiles() -> Iterator[np.ndarray]:
        for ty in range(0, height, tile):
            for tx in range(0, width, tile):
                # the level-0 tile is the 2x nearest upscale of a (tile/2)^2 crop (PIL pads
                # crops beyond the edge; tifffile ignores what lies beyond the image)
                crop = half.crop((tx // 2, ty // 2, tx // 2 + th, ty // 2 + th))
                yield np.asarray(crop.resize((tile, tile), Image.NEAREST))

    opts = dict(
        tile=(tile, tile),
        compression="jpeg",
        compressionargs={"level": quality},
        photometric="rgb",
        metadata=None,
    )
    with tifffile.TiffWriter(path) as tw:
        tw.write(
            level0_tiles(),
            shape=(height, width, 3),
            dtype=np.uint8,
            description=aperio_description(width, height, 0.5, 20, tile),
            subfiletype=0,
            **opts,
        )
        img = half
        while True:
            tw.write(np.asarray(img), subfiletype=1, **opts)
            if min(img.size) // 2 < min_level_size:
                break
            img = img.reduce(2)


def draw_slides(
    pid: str,
    orphan: bool,
    prof: _Profile,
    r: float,
    qw: float,
    crng: np.random.Generator,
    size: tuple[int, int],
) -> tuple[list[_SlideSpec], float, str]:
    """One case's slides (none for RNA-only cases and ~4% of the others), its quality and
    corruption label; draws from ``crng`` in a fixed order so the cohort is reproducible."""
    if orphan or crng.random() < 0.04:
        return [], 0.0, "missing"
    corruption, severity = "none", 0.0
    u = crng.random()
    if u < 0.04:
        corruption, severity = "low_tissue", float(crng.uniform(0.5, 1.0))
    elif qw < 0.45:
        corruption = str(crng.choice(["blur", "pen", "stain_shift"]))
        severity = float(np.clip(1 - qw / 0.45 + crng.normal(0, 0.1), 0.1, 1.0))
    n_slides = 2 if crng.random() < 0.1 else 1
    specs = []
    for s in range(n_slides):
        barcode = f"{pid}-01Z-00-DX{s + 1}.{_uuid(crng).upper()}"
        specs.append(
            _SlideSpec(
                path=f"slides/{pid}/{barcode}.tif",
                seed=int(crng.integers(0, 2**31 - 1)),
                width=size[0],
                height=size[1],
                risk_shown=_shown(r, qw, crng),
                stain=tuple(int(v + crng.normal(0, 3)) for v in prof.stain),
                corruption=corruption,
                severity=severity,
            )
        )
    return specs, (qw if corruption != "low_tissue" else 0.0), corruption
