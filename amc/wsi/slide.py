"""Slide files: opening with OpenSlide, resolution (microns per pixel), finding slides.

Slides (``.svs``, pyramidal ``.tif``, ...) are read with OpenSlide; the micron-per-pixel comes
from the slide's properties (``openslide.mpp-x``, else the objective power: MPP = 10 / power),
or from ``fallback_mpp`` when the slide documents neither.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from amc.errors import InputError

SLIDE_SUFFIXES = (
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".mrxs",
    ".scn",
    ".vms",
    ".vmu",
    ".bif",
    ".svslide",
)


def open_slide(path: str | os.PathLike):
    """Open a slide with OpenSlide.

    Raises
    ------
    InputError
        Naming the file when it is missing, not a format OpenSlide reads, or corrupt.
    """
    import openslide

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: slide file not found", hint="check the slide folder in params")
    try:
        return openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, OSError, ValueError) as err:
        kind = type(err).__name__
        raise InputError(
            f"{path}: cannot open slide ({kind}: {err})",
            hint="the file is corrupt or not a whole-slide format OpenSlide reads "
            "(svs, pyramidal tif, ndpi, mrxs, ...); re-download or remove it",
        ) from err


def slide_mpp(slide, fallback_mpp: float | None = None) -> float:
    """Level-0 microns per pixel of an open slide.

    From ``openslide.mpp-x``; else from ``openslide.objective-power`` (MPP = 10 / power, the
    usual 20x = 0.5 um/px convention); else ``fallback_mpp``; else an error.

    Raises
    ------
    InputError
        Naming the file and the parameter to set (``fallback_mpp``).
    """
    props = slide.properties
    for key in ("openslide.mpp-x", "openslide.mpp-y"):
        try:
            value = float(props.get(key, "nan"))
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
    try:
        power = float(props.get("openslide.objective-power", "nan"))
    except ValueError:
        power = math.nan
    if math.isfinite(power) and power > 0:
        return 10.0 / power
    if fallback_mpp is not None:
        if not (fallback_mpp > 0):
            raise InputError(
                f"fallback_mpp={fallback_mpp} must be > 0",
                hint="set it to the scanner's microns per pixel, e.g. 0.5 at 20x",
            )
        return float(fallback_mpp)
    name = getattr(slide, "_filename", None) or getattr(slide, "_amc_path", "slide")
    raise InputError(
        f"{name}: the slide documents neither its microns per pixel (openslide.mpp-x) nor its "
        "objective power",
        hint="set the WSI extraction parameter fallback_mpp (e.g. 0.5 for a 20x scan) or give "
        "slides with resolution metadata",
    )


def slide_key(path: Path) -> str:
    """The slide's name without its slide suffix (the per-slide output name)."""
    name = path.name
    for suffix in SLIDE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def parent_folder_patient(path: Path) -> str:
    """Default patient of a slide: the name of its parent folder (``<patient>/<slide>``)."""
    return path.parent.name


def find_slides(
    slide_dir: str | os.PathLike,
    suffixes: Sequence[str] = SLIDE_SUFFIXES,
    patient_of: Callable[[Path], str] = parent_folder_patient,
) -> dict[str, list[Path]]:
    """Slides under a folder, grouped by patient.

    ``patient_of`` names a slide's patient (default: its parent folder; the TCGA reader passes
    a rule that reads the case barcode from the file name).

    Returns
    -------
    dict
        ``patient_id -> sorted list of slide paths``, patients sorted.
    """
    root = Path(slide_dir)
    if not root.is_dir():
        raise InputError(f"{root}: slide folder not found", hint="set the TCGA slide path")
    out: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in suffixes:
            out.setdefault(patient_of(p), []).append(p)
    return dict(sorted(out.items()))
