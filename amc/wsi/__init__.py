"""Whole-slide images: slide reading, tissue detection, patching, patch encoders, extraction.

Rooms: :mod:`~amc.wsi.slide` (OpenSlide, MPP, finding slides), :mod:`~amc.wsi.tissue`,
:mod:`~amc.wsi.patching` (grid, level, patch reading), :mod:`~amc.wsi.encoders` (registry by
name) with :mod:`~amc.wsi.nets` (architectures), :mod:`~amc.wsi.embed` (planning, patch
reading, encoding), :mod:`~amc.wsi.store` (per-slide HDF5, content hashes),
:mod:`~amc.wsi.extract` (resume, local engine), :mod:`~amc.wsi.ray_engine` (Ray Data) and
:mod:`~amc.wsi.table` (the case-level Parquet table). Nothing here knows about a particular
cohort (TCGA naming lives in :mod:`amc.features.tcga`).
"""

from amc.wsi.encoders import (
    DEFAULT_ENCODER,
    REGISTRY,
    PatchEncoder,
    encoder_names,
    load_patch_encoder,
)
from amc.wsi.extract import extract_slide_features
from amc.wsi.nets import (
    RESNET_BN_PAIRS,
    ConchVisual,
    ResNet50Features,
    VisionTransformer,
    fold_batchnorm,
)
from amc.wsi.patching import PatchPlan, patch_grid, plan_patches, read_patch
from amc.wsi.slide import SLIDE_SUFFIXES, find_slides, open_slide, slide_mpp
from amc.wsi.store import read_slide_h5
from amc.wsi.table import assemble_wsi_table
from amc.wsi.tissue import detect_tissue, slide_thumbnail

__all__ = [
    "DEFAULT_ENCODER",
    "REGISTRY",
    "RESNET_BN_PAIRS",
    "SLIDE_SUFFIXES",
    "ConchVisual",
    "PatchEncoder",
    "PatchPlan",
    "ResNet50Features",
    "VisionTransformer",
    "assemble_wsi_table",
    "detect_tissue",
    "encoder_names",
    "extract_slide_features",
    "find_slides",
    "fold_batchnorm",
    "load_patch_encoder",
    "open_slide",
    "patch_grid",
    "plan_patches",
    "read_patch",
    "read_slide_h5",
    "slide_mpp",
    "slide_thumbnail",
]
