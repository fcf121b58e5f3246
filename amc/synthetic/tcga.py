"""Synthetic TCGA cohort in the GDC download layout.

Writes, for each project, cases with up to three modalities in the formats the real GDC ships:

- ``slides/<case_id>/<slide_barcode>.tif``: pyramidal tiled TIFF, JPEG tiles, each pyramid level a
  separate top-level page, Aperio-style ImageDescription on page 0 (OpenSlide reports
  ``openslide.mpp-x`` = 0.5 and ``openslide.objective-power`` = 20).
- ``reports/<case_id>.txt``: pathology report free text.
- ``rna/<file_id>/<file_name>``: GDC STAR gene counts TSV (``augmented_star_gene_counts``), plus
  ``gdc_sample_sheet.tsv`` mapping files to cases and samples.
- ``clinical.tsv``: GDC clinical export (``case_id, case_submitter_id, project_id, vital_status,
  days_to_death, days_to_last_follow_up, ...``, ``'--`` for missing, one row per treatment).
- ``quality.csv``: per patient and modality the generator's quality in [0, 1] and the corruption
  applied (for analysis only; training never reads it) and ``README.txt``.

Every case has a latent risk ``r ~ N(0, 1)``. Survival times are Weibull with hazard scaled by
``exp(beta * r)`` and uniformly censored. Each modality sees ``q * r + sqrt(1 - q^2) * eps``,
where ``q`` is the case's quality for that modality (drawn per project, as in Figure 1 of the
paper), and carries visible corruptions when ``q`` is low (blurred slides, pen marks, stain shift,
nearly no tissue; boilerplate or garbled reports; shallow or batch-shifted RNA libraries).
Some cases miss a modality entirely. Generation is seeded and deterministic.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from tqdm import tqdm

from amc.data.store import atomic_path

log = logging.getLogger(__name__)

GDC_MISSING = "'--"
MODALITIES = ("wsi", "report", "rna")
STAR_COLUMNS = (
    "gene_id",
    "gene_name",
    "gene_type",
    "unstranded",
    "stranded_first",
    "stranded_second",
    "tpm_unstranded",
    "fpkm_unstranded",
    "fpkm_uq_unstranded",
)
SAMPLE_SHEET_COLUMNS = (
    "File ID",
    "File Name",
    "Data Category",
    "Data Type",
    "Project ID",
    "Case ID",
    "Sample ID",
    "Sample Type",
)
_ID_CHARS = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@dataclass(frozen=True)
class _Profile:
    """Per-project knobs: tissue source sites, modality quality means, survival scale."""

    tss: tuple[str, ...]
    quality: tuple[float, float, float]  # mean quality of (wsi, report, rna)
    weibull_scale: float  # days, for r = 0
    censor_max: float  # days, censoring ~ U(30, censor_max)
    stain: tuple[int, int, int]  # stroma RGB


_PROFILES: dict[str, _Profile] = {
    "UCEC": _Profile(
        ("AX", "B5", "BG", "D1", "EO"), (0.75, 0.55, 0.80), 3800.0, 4000.0, (236, 160, 196)
    ),
    "LUAD": _Profile(
        ("05", "44", "55", "78", "MP"), (0.55, 0.75, 0.60), 2400.0, 3000.0, (232, 150, 190)
    ),
    "LGG": _Profile(
        ("DU", "HT", "FG", "TM", "S9"), (0.80, 0.45, 0.70), 4200.0, 4500.0, (226, 168, 206)
    ),
    "BRCA": _Profile(
        ("A2", "AR", "BH", "E2", "A8"), (0.60, 0.80, 0.55), 4500.0, 4800.0, (238, 156, 188)
    ),
    "BLCA": _Profile(
        ("BT", "DK", "FD", "GD", "XF"), (0.50, 0.60, 0.75), 1900.0, 2600.0, (230, 154, 194)
    ),
}
_DEFAULT_PROFILE = _Profile(("ZZ", "ZY", "ZX"), (0.6, 0.6, 0.6), 3000.0, 3500.0, (234, 158, 194))
_BETA = 0.9  # log hazard ratio per unit of latent risk
_WEIBULL_SHAPE = 1.3


# Fine corruption labels of this generator -> the shared vocabulary of amc.synthetic.quality
# (``quality.csv`` keeps both: ``corruption`` shared, ``detail`` fine).
_CORRUPTION_CLASS = {
    "none": "none",
    "missing": "missing",
    "empty": "missing",
    "no_clinical": "none",
    "blur": "noise",
    "pen": "noise",
    "stain_shift": "batch",
    "low_tissue": "sparse",
    "boilerplate": "template",
    "ocr_noise": "noise",
    "low_depth": "sparse",
    "batch_shift": "batch",
}


def _profile(project: str) -> _Profile:
    return _PROFILES.get(project.upper(), _DEFAULT_PROFILE)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _shown(r: float, q: float, rng: np.random.Generator) -> float:
    """What a modality of quality ``q`` reveals of risk ``r``: correlation ``q`` with ``r``."""
    return float(q * r + math.sqrt(max(0.0, 1.0 - q * q)) * rng.normal())


# --------------------------------------------------------------------------------------------
# Slides
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# RNA-seq
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GeneModel:
    gene_id: np.ndarray  # (G,) str
    gene_name: np.ndarray
    gene_type: np.ndarray
    length_kb: np.ndarray  # (G,) float
    mu: np.ndarray  # (G,) base log expression
    loading: np.ndarray  # (G,) risk loading (0 for most genes)
    project_shift: dict[str, np.ndarray]
    batch_shift: np.ndarray  # (n_batches, G)
    normal_shift: np.ndarray  # (G,) solid tissue normal vs tumour
    prefix: list[str] = field(default_factory=list)  # "gene_id\tgene_name\tgene_type\t"


def _gene_model(rng: np.random.Generator, n_genes: int, projects: Sequence[str]) -> _GeneModel:
    types = np.array(
        [
            "protein_coding",
            "lncRNA",
            "processed_pseudogene",
            "unprocessed_pseudogene",
            "misc_RNA",
            "snRNA",
            "miRNA",
            "TEC",
        ]
    )
    probs = np.array([0.62, 0.2, 0.05, 0.04, 0.03, 0.03, 0.02, 0.01])
    gtype = types[rng.choice(len(types), size=n_genes, p=probs)]
    ids = np.sort(rng.choice(np.arange(1000, 300000), size=n_genes, replace=False))
    versions = rng.integers(1, 20, n_genes)
    gene_id = np.array([f"ENSG{i:011d}.{v}" for i, v in zip(ids, versions, strict=True)])
    n_par = min(5, n_genes // 100)  # chrY pseudo-autosomal copies, as real GENCODE v36 has
    if n_par:
        par = rng.choice(np.flatnonzero(gtype == "protein_coding"), n_par, replace=False)
        gene_id[par] = [g + "_PAR_Y" for g in gene_id[par]]
    prefix_of = {
        "protein_coding": "SG",
        "lncRNA": "LINC",
        "processed_pseudogene": "SGP",
        "unprocessed_pseudogene": "SGU",
        "misc_RNA": "Y_RNA",
        "snRNA": "RNU",
        "miRNA": "MIR",
        "TEC": "TEC",
    }
    gene_name = np.array([f"{prefix_of[t]}{k}" for k, t in enumerate(gtype)])
    mu = rng.normal(1.5, 1.8, n_genes)
    mu[gtype != "protein_coding"] -= 1.0
    loading = np.zeros(n_genes)
    pc = np.flatnonzero(gtype == "protein_coding")
    informative = rng.choice(pc, size=max(4, min(60, len(pc) // 10)), replace=False)
    loading[informative] = rng.choice([-1.0, 1.0], informative.size) * rng.uniform(
        0.5, 1.1, informative.size
    )
    mu[informative] = np.maximum(mu[informative], rng.uniform(2.5, 5.0, informative.size))
    shifts = {p: rng.normal(0, 0.5, n_genes) for p in projects}
    model = _GeneModel(
        gene_id=gene_id,
        gene_name=gene_name,
        gene_type=gtype,
        length_kb=np.exp(rng.normal(0.8, 0.7, n_genes)),
        mu=mu,
        loading=loading,
        project_shift=shifts,
        batch_shift=rng.normal(0, 0.6, (4, n_genes)),
        normal_shift=rng.normal(0, 0.8, n_genes),
    )
    model.prefix.extend(
        f"{i}\t{n}\t{t}\t" for i, n, t in zip(gene_id, gene_name, gtype, strict=True)
    )
    return model


@dataclass
class _RnaSpec:
    path: str
    seed: int
    project: str
    risk_shown: float
    noise_sd: float
    batch: int  # -1: no batch shift
    depth: float  # library size (reads)
    normal: bool  # solid tissue normal sample


def write_star_counts(spec: _RnaSpec, genes: _GeneModel) -> None:
    """Write one GDC ``augmented_star_gene_counts`` TSV."""
    rng = np.random.default_rng(spec.seed)
    lexpr = genes.mu + genes.project_shift.get(spec.project, 0.0)
    if spec.normal:
        lexpr = lexpr + genes.normal_shift
    else:
        lexpr = lexpr + genes.loading * spec.risk_shown
    if spec.batch >= 0:
        lexpr = lexpr + genes.batch_shift[spec.batch]
    lexpr = lexpr + rng.normal(0, spec.noise_sd, lexpr.shape)
    rate = np.exp(lexpr) * genes.length_kb
    mapped = spec.depth * rng.uniform(0.75, 0.9)
    counts = rng.poisson(rate / rate.sum() * mapped)
    counts[np.char.endswith(genes.gene_id.astype(str), "_PAR_Y")] = 0
    first = rng.binomial(counts, 0.02)
    second = counts - first - rng.binomial(counts - first, 0.01)
    per_kb = counts / genes.length_kb
    tpm = per_kb / max(per_kb.sum(), 1.0) * 1e6
    fpkm = per_kb / (max(counts.sum(), 1) / 1e6)
    pc_counts = counts[genes.gene_type == "protein_coding"]
    uq = max(float(np.percentile(pc_counts, 75)), 1.0)
    fpkm_uq = per_kb / (uq / 1e6) / 1e3
    n_unmapped = int(spec.depth * rng.uniform(0.02, 0.06))
    lines = ["# gene-model: GENCODE v36", "\t".join(STAR_COLUMNS)]
    for name in ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"):
        v = n_unmapped if name == "N_unmapped" else int(spec.depth * rng.uniform(0.01, 0.05))
        lines.append(f"{name}\t\t\t{v}\t{v}\t{v}\t\t\t")
    rows = zip(
        genes.prefix,
        counts.tolist(),
        first.tolist(),
        second.tolist(),
        tpm.tolist(),
        fpkm.tolist(),
        fpkm_uq.tolist(),
        strict=True,
    )
    # %-formatting: about 3x faster than f-strings for these 2000+ rows per file
    lines.extend(p + "%d\t%d\t%d\t%.4f\t%.4f\t%.4f" % tuple(r) for p, *r in rows)  # noqa: UP031
    Path(spec.path).parent.mkdir(parents=True, exist_ok=True)
    Path(spec.path).write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------

_ROMAN = ["I", "II", "III", "IV"]


def _stage(x: float) -> int:
    return int(np.digitize(x, [-0.6, 0.15, 0.9]))  # 0..3


def _grade(x: float) -> int:
    return int(np.digitize(x, [-0.5, 0.5])) + 1  # 1..3


def _report_text(project: str, x: float, rng: np.random.Generator) -> str:
    """Free-text report whose grade / stage / size / node wording reflects ``x``."""
    g, st = _grade(x + rng.normal(0, 0.2)), _stage(x + rng.normal(0, 0.2))
    size = max(0.4, 2.0 + 1.3 * x + rng.normal(0, 0.5))
    n_total = int(rng.integers(6, 25))
    n_pos = min(n_total, int(rng.poisson(max(0.0, x + 0.3) * 2.5)))
    lvi = "present, extensive" if x > 0.9 else ("present, focal" if x > 0.2 else "not identified")
    margin = (
        f"involved by carcinoma at the {rng.choice(['deep', 'radial', 'lateral'])} margin"
        if x > 1.1
        else f"negative; closest margin {rng.uniform(0.3, 2.5):.1f} cm"
    )
    diff = {1: "well differentiated", 2: "moderately differentiated", 3: "poorly differentiated"}[g]
    side = rng.choice(["left", "right"])
    p = project.upper()
    if p == "UCEC":
        hist = "serous carcinoma" if x > 1.2 else "endometrioid adenocarcinoma"
        depth = int(np.clip(20 + 35 * x + rng.normal(0, 10), 2, 98))
        spec_ = (
            "Uterus, cervix, bilateral fallopian tubes and ovaries: total hysterectomy and "
            "bilateral salpingo-oophorectomy"
        )
        diag = (
            f"{hist.capitalize()}, FIGO grade {g} ({diff}).\n"
            f"Myometrial invasion: {depth}% of myometrial thickness.\n"
            f"FIGO stage: {_ROMAN[st]}{rng.choice(['A', 'B'])}."
        )
    elif p == "LUAD":
        pattern = ["lepidic", "acinar", "papillary", "solid", "micropapillary"][
            int(np.clip(round(1.5 + 1.2 * x + rng.normal(0, 0.4)), 0, 4))
        ]
        spec_ = f"Lung, {side} {rng.choice(['upper', 'lower'])} lobe: lobectomy"
        pleura = "present (PL1)" if x > 0.6 else "not identified"
        diag = (
            f"Invasive adenocarcinoma, {pattern} predominant, {diff}.\n"
            f"Visceral pleural invasion: {pleura}.\n"
            f"pT{min(4, st + 1)} pN{min(2, n_pos // 3)}."
        )
    elif p == "LGG":
        if x < -0.3:
            hist = "Oligodendroglioma, IDH-mutant and 1p/19q-codeleted, CNS WHO grade 2"
        elif x < 0.6:
            hist = "Astrocytoma, IDH-mutant, CNS WHO grade 2"
        else:
            hist = "Astrocytoma, IDH-mutant, CNS WHO grade 3 (anaplastic)"
        ki67 = float(np.clip(4 + 8 * x + rng.normal(0, 2), 1, 60))
        mitoses = int(max(0, rng.poisson(max(0.2, 2 + 3 * x))))
        spec_ = f"Brain, {side} {rng.choice(['frontal', 'temporal', 'parietal'])} lobe: resection"
        diag = (
            f"{hist}.\nMitotic figures: {mitoses} per 10 high-power fields.\n"
            f"Ki-67 labeling index: approximately {ki67:.0f}%.\n"
            f"Microvascular proliferation: {'present' if x > 1.3 else 'not identified'}.\n"
            "Necrosis: not identified."
        )
        return _assemble_report(spec_, diag, size, None, None, None, rng)
    elif p == "BRCA":
        parts = [
            int(np.clip(round(1 + 0.8 * (x + 1) + rng.normal(0, 0.4)), 1, 3)) for _ in range(3)
        ]
        er = "negative" if x > 1.0 else "positive (90%, strong)"
        her2 = "positive (3+)" if x > 1.4 else "negative (1+)"
        spec_ = f"Breast, {side}: {rng.choice(['modified radical mastectomy', 'lumpectomy'])}"
        diag = (
            f"Invasive ductal carcinoma, Nottingham grade {g} ({diff}); tubule formation "
            f"{parts[0]}, nuclear pleomorphism {parts[1]}, mitotic count {parts[2]}; "
            f"total score {sum(parts)}/9.\n"
            f"Estrogen receptor: {er}. HER2: {her2}.\n"
            f"AJCC pathologic stage {_ROMAN[st]}."
        )
    elif p == "BLCA":
        invasion = [
            "lamina propria",
            "muscularis propria (detrusor muscle)",
            "perivesical soft tissue",
            "adjacent organs (prostate / vagina)",
        ][st]
        spec_ = "Urinary bladder, prostate and seminal vesicles: radical cystoprostatectomy"
        diag = (
            f"Invasive urothelial carcinoma, {'high' if g >= 2 else 'low'} grade.\n"
            f"Tumor invades {invasion}.\npT{st + 1}."
        )
    else:
        spec_ = f"{project} primary tumor: resection"
        diag = f"Carcinoma, {diff}, histologic grade {g}.\nPathologic stage {_ROMAN[st]}."
    return _assemble_report(spec_, diag, size, (n_pos, n_total), lvi, margin, rng)


def _assemble_report(
    specimen: str,
    diagnosis: str,
    size: float,
    nodes: tuple[int, int] | None,
    lvi: str | None,
    margin: str | None,
    rng: np.random.Generator,
) -> str:
    lines = [
        "SURGICAL PATHOLOGY REPORT",
        "",
        f"SPECIMEN: {specimen}.",
        "",
        "FINAL DIAGNOSIS:",
        diagnosis,
        f"Tumor size: {size:.1f} cm in greatest dimension.",
    ]
    if lvi is not None:
        lines.append(f"Lymphovascular invasion: {lvi}.")
    if margin is not None:
        lines.append(f"Margins: {margin}.")
    if nodes is not None:
        pos, tot = nodes
        lines.append(
            f"Lymph nodes: {'metastatic carcinoma in' if pos else 'negative for'} "
            f"{f'{pos} of ' if pos else ''}{tot} lymph nodes examined."
        )
    lines += [
        "",
        "GROSS DESCRIPTION:",
        f"Received fresh labeled with the patient's name, a specimen measuring "
        f"{rng.uniform(5, 20):.1f} x {rng.uniform(3, 12):.1f} x {rng.uniform(1, 6):.1f} cm. "
        "Representative sections are submitted.",
        "",
        "Electronically signed out by the attending pathologist.",
    ]
    return "\n".join(lines) + "\n"


_BOILERPLATE = [
    "SURGICAL PATHOLOGY REPORT\n\nFINAL DIAGNOSIS: See synoptic report and addendum.\n"
    "Specimen received in formalin. Gross description dictated.\n"
    "Electronically signed out.\n",
    "PATHOLOGY CONSULTATION\n\nSlides and blocks received from outside institution for "
    "review. Please refer to the original report for diagnosis.\n",
    "ADDENDUM REPORT\n\nAdditional immunohistochemical stains were performed on block A3. "
    "Controls are appropriate. The original diagnosis is unchanged.\n",
]


def _garble(text: str, severity: float, rng: np.random.Generator) -> str:
    """OCR-like noise: drop / swap characters and lines."""
    chars = np.array(list(text))
    n = int(len(chars) * 0.25 * severity)
    idx = rng.choice(len(chars), size=n, replace=False)
    chars[idx] = rng.choice(list("il1|o0O rn.,~"), size=n)
    lines = "".join(chars).split("\n")
    keep = [ln for ln in lines if rng.random() > 0.3 * severity]
    return "\n".join(keep) + "\n"


# --------------------------------------------------------------------------------------------
# Cohort
# --------------------------------------------------------------------------------------------


def _case_ids(rng: np.random.Generator, project: str, n: int, taken: set[str]) -> list[str]:
    prof = _profile(project)
    out: list[str] = []
    while len(out) < n:
        tss = prof.tss[int(rng.integers(0, len(prof.tss)))]
        pid = f"TCGA-{tss}-{''.join(rng.choice(_ID_CHARS, 4))}"
        if pid not in taken:
            taken.add(pid)
            out.append(pid)
    return out


def _beta(rng: np.random.Generator, mean: float, conc: float = 6.0) -> float:
    return float(rng.beta(mean * conc, (1 - mean) * conc))


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


def _work(task: tuple[str, object]) -> None:
    kind, spec = task
    if kind == "slide":
        _render_and_write_slide(spec)  # type: ignore[arg-type]
    else:
        write_star_counts(spec, _WORKER_GENES)  # type: ignore[arg-type]


_WORKER_GENES: _GeneModel | None = None


def _init_worker(genes: _GeneModel) -> None:
    global _WORKER_GENES
    _WORKER_GENES = genes


def generate_tcga_cohort(
    out_dir: Path,
    projects: Sequence[str] = ("UCEC", "LUAD", "LGG", "BRCA", "BLCA"),
    cases_per_project: int = 80,
    seed: int = 0,
    slide_size: tuple[int, int] = (2048, 2048),
    n_genes: int = 2000,
    n_jobs: int = 2,
    show_progress: bool = True,
) -> dict:
    """Write a synthetic TCGA cohort in the GDC layout (see the module docstring).

    Parameters
    ----------
    out_dir : Path
        Output folder; written atomically (built next to it, renamed on success).
    projects : sequence of str
        TCGA project codes without the ``TCGA-`` prefix; unknown codes get a generic profile.
    cases_per_project : int
        Cases with a clinical record per project (a few extra RNA-only cases are added).
    seed : int
        Same seed, same bytes.
    slide_size : (int, int)
        Level-0 (width, height) of each slide in pixels (0.5 micron per pixel).
    n_genes : int
        Rows of each STAR-counts file (all gene types; ~62% protein coding).
    n_jobs : int
        Worker processes for slides and RNA files (output does not depend on it).

    Returns
    -------
    dict
        Counts (cases, slides, reports, RNA files, events, dropped edge cases) and paths.
    """
    out_dir = Path(out_dir)
    projects = [p.upper().removeprefix("TCGA-") for p in projects]
    if cases_per_project < 1:
        raise ValueError(f"cases_per_project must be >= 1, got {cases_per_project}")
    root = np.random.SeedSequence(seed)
    rng = np.random.default_rng(root.spawn(1)[0])
    genes = _gene_model(
        np.random.default_rng(zlib.crc32(f"genes-{seed}".encode())), n_genes, projects
    )
    width, height = int(slide_size[0]), int(slide_size[1])

    taken: set[str] = set()
    clinical_rows: list[dict] = []
    sheet_rows: list[dict] = []
    quality_rows: list[dict] = []
    reports: dict[str, str] = {}
    slide_specs: list[_SlideSpec] = []
    rna_specs: list[_RnaSpec] = []
    stats = {"cases": 0, "rna_only_cases": 0, "events": 0, "no_usable_time": 0}

    def q_row(pid: str, mod: str, q: float, corruption: str) -> None:
        quality_rows.append(
            {"patient_id": pid, "modality": mod, "quality": round(q, 4), "detail": corruption}
        )

    for project in projects:
        prof = _profile(project)
        n_orphans = max(1, cases_per_project // 40)
        ids = _case_ids(rng, project, cases_per_project + n_orphans, taken)
        for k, pid in enumerate(ids):
            orphan = k >= cases_per_project
            case_seed = int(rng.integers(0, 2**31 - 1))
            crng = np.random.default_rng(case_seed)
            r = float(crng.normal())
            qw, qr, qn = (_beta(crng, m) for m in prof.quality)
            # ---- clinical
            if not orphan:
                stats["cases"] += 1
                u = crng.random()
                t = prof.weibull_scale * (-math.log(u) / math.exp(_BETA * r)) ** (
                    1 / _WEIBULL_SHAPE
                )
                c = crng.uniform(30, prof.censor_max)
                dead = t <= c
                time_ = max(1, int(round(min(t, c))))
                row = {
                    "case_id": _uuid(crng),
                    "case_submitter_id": pid,
                    "project_id": f"TCGA-{project}",
                    "age_at_index": int(crng.integers(30, 85)),
                    "gender": ["female", "male"][int(crng.integers(0, 2))]
                    if project not in ("UCEC", "BRCA")
                    else "female",
                    "vital_status": "Dead" if dead else "Alive",
                    "days_to_death": str(time_) if dead else GDC_MISSING,
                    "days_to_last_follow_up": GDC_MISSING if dead else str(time_),
                }
                if dead and crng.random() < 0.3:  # GDC often also fills follow-up for the dead
                    row["days_to_last_follow_up"] = str(max(1, time_ - int(crng.integers(0, 60))))
                if crng.random() < 0.02:  # no usable time: dropped by the loader
                    row["days_to_death"] = GDC_MISSING
                    row["days_to_last_follow_up"] = GDC_MISSING
                    stats["no_usable_time"] += 1
                elif dead:
                    stats["events"] += 1
                for treatment in ("Pharmaceutical Therapy, NOS", "Radiation Therapy, NOS"):
                    clinical_rows.append({**row, "treatment_type": treatment})
            else:
                stats["rna_only_cases"] += 1

            # ---- slides
            if orphan or crng.random() < 0.04:
                q_row(pid, "wsi", 0.0, "missing")
            else:
                corruption, severity = "none", 0.0
                u = crng.random()
                if u < 0.04:
                    corruption, severity = "low_tissue", float(crng.uniform(0.5, 1.0))
                elif qw < 0.45:
                    corruption = str(crng.choice(["blur", "pen", "stain_shift"]))
                    severity = float(np.clip(1 - qw / 0.45 + crng.normal(0, 0.1), 0.1, 1.0))
                n_slides = 2 if crng.random() < 0.1 else 1
                for s in range(n_slides):
                    barcode = f"{pid}-01Z-00-DX{s + 1}.{_uuid(crng).upper()}"
                    slide_specs.append(
                        _SlideSpec(
                            path=f"slides/{pid}/{barcode}.tif",
                            seed=int(crng.integers(0, 2**31 - 1)),
                            width=width,
                            height=height,
                            risk_shown=_shown(r, qw, crng),
                            stain=tuple(int(v + crng.normal(0, 3)) for v in prof.stain),
                            corruption=corruption,
                            severity=severity,
                        )
                    )
                q_row(pid, "wsi", qw if corruption != "low_tissue" else 0.0, corruption)

            # ---- report
            u = crng.random()
            if orphan or u < 0.08:
                q_row(pid, "report", 0.0, "missing")
            elif u < 0.10:
                reports[pid] = "\n"  # empty file: treated as missing by the reader
                q_row(pid, "report", 0.0, "empty")
            elif qr < 0.3:
                reports[pid] = _BOILERPLATE[int(crng.integers(0, len(_BOILERPLATE)))]
                q_row(pid, "report", 0.0, "boilerplate")
            else:
                text = _report_text(project, _shown(r, qr, crng), crng)
                corruption = "none"
                if qr < 0.5:
                    text = _garble(text, (0.5 - qr) / 0.2, crng)
                    corruption = "ocr_noise"
                reports[pid] = text
                q_row(pid, "report", qr, corruption)

            # ---- RNA
            if not orphan and crng.random() < 0.06:
                q_row(pid, "rna", 0.0, "missing")
            else:
                corruption = "none"
                depth = float(crng.uniform(2e7, 6e7))
                batch = -1
                if qn < 0.45:
                    if crng.random() < 0.5:
                        corruption, depth = "low_depth", float(crng.uniform(2e5, 2e6))
                    else:
                        corruption, batch = "batch_shift", int(crng.integers(0, 4))
                noise_sd = 0.15 + 1.0 * (1 - qn)
                samples = [("01A", False)]
                if crng.random() < 0.04:
                    samples.append(("01B", False))
                if crng.random() < 0.06:
                    samples.append(("11A", True))
                shown = _shown(r, qn, crng)
                for sample, normal in samples:
                    file_id = _uuid(crng)
                    name = f"{_uuid(crng)}.rna_seq.augmented_star_gene_counts.tsv"
                    rna_specs.append(
                        _RnaSpec(
                            path=f"rna/{file_id}/{name}",
                            seed=int(crng.integers(0, 2**31 - 1)),
                            project=project,
                            risk_shown=shown,
                            noise_sd=noise_sd,
                            batch=batch,
                            depth=depth,
                            normal=normal,
                        )
                    )
                    sheet_rows.append(
                        {
                            "File ID": file_id,
                            "File Name": name,
                            "Data Category": "Transcriptome Profiling",
                            "Data Type": "Gene Expression Quantification",
                            "Project ID": f"TCGA-{project}",
                            "Case ID": pid,
                            "Sample ID": f"{pid}-{sample}",
                            "Sample Type": "Solid Tissue Normal" if normal else "Primary Tumor",
                        }
                    )
                q_row(pid, "rna", qn, "no_clinical" if orphan else corruption)

    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for sub in ("slides", "reports", "rna"):
            (tmp / sub).mkdir()
        tasks: list[tuple[str, object]] = []
        for spec in slide_specs:
            (tmp / spec.path).parent.mkdir(parents=True, exist_ok=True)
            tasks.append(("slide", _replace_path(spec, tmp)))
        for spec in rna_specs:
            tasks.append(("rna", _replace_path(spec, tmp)))
        n_jobs = max(1, min(n_jobs, os.cpu_count() or 1))
        bar = tqdm(
            total=len(tasks),
            desc="synthetic TCGA files",
            unit="file",
            disable=None if show_progress else True,
        )
        if n_jobs == 1:
            _init_worker(genes)
            for task in tasks:
                _work(task)
                bar.update(1)
        else:
            with ProcessPoolExecutor(n_jobs, initializer=_init_worker, initargs=(genes,)) as ex:
                for _ in ex.map(_work, tasks, chunksize=8):
                    bar.update(1)
        bar.close()
        for pid, text in sorted(reports.items()):
            (tmp / "reports" / f"{pid}.txt").write_text(text)
        pd.DataFrame(clinical_rows).to_csv(tmp / "clinical.tsv", sep="\t", index=False)
        pd.DataFrame(sheet_rows, columns=list(SAMPLE_SHEET_COLUMNS)).to_csv(
            tmp / "gdc_sample_sheet.tsv", sep="\t", index=False
        )
        quality = pd.DataFrame(quality_rows)
        quality.insert(3, "corruption", quality["detail"].map(_CORRUPTION_CLASS))
        quality = quality.sort_values(["patient_id", "modality"], kind="stable")
        quality.to_csv(tmp / "quality.csv", index=False)
        (tmp / "README.txt").write_text(_README.format(seed=seed, projects=", ".join(projects)))

    n_clin = stats["cases"] - stats["no_usable_time"]
    summary = {
        "out_dir": str(out_dir),
        "projects": projects,
        "cases": stats["cases"],
        "rna_only_cases": stats["rna_only_cases"],
        "cases_without_usable_time": stats["no_usable_time"],
        "events": stats["events"],
        "event_rate": stats["events"] / max(n_clin, 1),
        "slides": len(slide_specs),
        "reports": sum(1 for t in reports.values() if t.strip()),
        "rna_files": len(rna_specs),
        "genes": n_genes,
    }
    log.info("synthetic TCGA cohort: %s", summary)
    return summary


def _replace_path(spec, root: Path):
    import dataclasses

    return dataclasses.replace(spec, path=str(root / spec.path))


_README = """SYNTHETIC DATA - NOT REAL PATIENTS.

Generated by amc.synthetic.tcga.generate_tcga_cohort(seed={seed}) for projects {projects}.
Layout mirrors a GDC download: slides/<case>/<barcode>.tif (pyramidal Aperio-style TIFF),
reports/<case>.txt, rna/<file_id>/<file>.rna_seq.augmented_star_gene_counts.tsv with
gdc_sample_sheet.tsv, and clinical.tsv. quality.csv records the generator's per-patient
modality quality and corruption; it is for analysis only and never used for training.
"""
