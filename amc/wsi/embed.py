"""Embedding slides: the per-slide job, planning its patches, reading and encoding them.

A slide is planned (tissue mask, patch grid at the target resolution, deterministic
subsample), then its patches are read by DataLoader workers (each opens its own OpenSlide
handles; whole levels are never read into memory) and encoded in batches that never span two
slides; each slide's HDF5 file is written as soon as all its patches are embedded. A patch that
cannot be read (a corrupt tile) is reported with the slide and the location.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc.errors import InputError
from amc.wsi.encoders import PatchEncoder
from amc.wsi.patching import PatchPlan, plan_patches, read_patch, subsample
from amc.wsi.slide import open_slide, slide_key
from amc.wsi.store import SUFFIX, write_slide_h5
from amc.wsi.tissue import detect_tissue

log = logging.getLogger(__name__)

_PER_SLIDE_VERSION = 1
ON_ERROR = ("fail", "skip")
_SKIP_HINT = "set sources.tcga.wsi.on_error: skip to leave the slide out"


@dataclass(frozen=True)
class SlideSettings:
    """What a per-slide output depends on besides the encoder (recorded in its metadata)."""

    target_mpp: float = 0.5
    patch_size: int = 256
    max_patches: int | None = None
    seed: int = 0
    min_tissue: float = 0.5
    thumb_size: int = 1024
    fallback_mpp: float | None = None

    def check(self) -> None:
        if self.target_mpp <= 0 or self.patch_size <= 0 or not (0 <= self.min_tissue <= 1):
            raise InputError(
                f"bad patch parameters target_mpp={self.target_mpp}, patch_size="
                f"{self.patch_size}, min_tissue={self.min_tissue}",
                hint="target_mpp > 0, patch_size > 0, 0 <= min_tissue <= 1",
            )

    def params(self) -> dict[str, Any]:
        return {**asdict(self), "version": _PER_SLIDE_VERSION}


@dataclass
class SlideJob:
    """One slide to embed: where it is, whose it is, and (once planned) its patches."""

    patient_id: str
    path: Path
    key: str  # per-slide output name
    plan: PatchPlan | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class SlideReadError(InputError):
    """A slide (or a region of it) could not be read; the message names slide and location."""


def error_message(err: InputError) -> str:
    """An :class:`InputError`'s message without its hint."""
    return str(err).split("\n  hint: ")[0]


def config_hash(encoder_info: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """Short hash of the encoder identity and the per-slide parameters."""
    blob = json.dumps(
        {"encoder": dict(encoder_info), "params": dict(params)}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def collect_jobs(paths: Mapping[str, Sequence[str | os.PathLike]]) -> list[SlideJob]:
    """One job per slide; slide names must be unique (they name the per-slide files)."""
    jobs: list[SlideJob] = []
    seen: dict[str, str] = {}
    for pid, slide_paths in paths.items():
        for p in slide_paths:
            p = Path(p)
            key = slide_key(p)
            if key in seen:
                raise InputError(
                    f"{p}: slide name {key!r} also used by {seen[key]}",
                    hint="slide file names must be unique across the cohort",
                )
            seen[key] = str(p)
            jobs.append(SlideJob(str(pid), p, key))
    return jobs


def plan_job(
    job: SlideJob, settings: SlideSettings, config: str, encoder: PatchEncoder, sha: str
) -> None:
    """Tissue mask, patch grid and subsample of one slide; fills ``job.plan`` / ``job.meta``.

    Raises
    ------
    SlideReadError
        The slide cannot be opened or its thumbnail level cannot be read.
    """
    try:
        with contextlib.closing(open_slide(job.path)) as slide:
            mask = detect_tissue(slide, thumb_size=settings.thumb_size)
            plan = plan_patches(
                slide,
                mask,
                settings.target_mpp,
                settings.patch_size,
                settings.min_tissue,
                settings.fallback_mpp,
            )
    except InputError as err:
        if "microns per pixel" in str(err):  # a parameter to set, not a broken file
            raise
        raise SlideReadError(error_message(err), hint=f"{err.hint}; or {_SKIP_HINT}") from err
    except Exception as err:  # OpenSlide errors from a corrupt thumbnail level
        raise SlideReadError(
            f"{job.path}: cannot read the thumbnail for tissue detection "
            f"({type(err).__name__}: {err})",
            hint=f"the slide file is corrupt; re-download it, or {_SKIP_HINT}",
        ) from err
    coords = subsample(plan.coords, settings.max_patches, settings.seed, job.key)
    job.plan = PatchPlan(
        coords, plan.level, plan.read_size, plan.size0, plan.patch_size, plan.mpp, plan.target_mpp
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
        "params": settings.params(),
        "dim": encoder.dim,
        "slide_sha256": sha,
    }


class PatchDataset(torch.utils.data.Dataset):
    """Patches of a window of slides; each worker opens its own OpenSlide handles.

    An item is ``(patch (S, S, 3) uint8, index, error)``: a patch that cannot be read comes
    back as zeros with an error naming the slide and the location, so the caller decides
    (fail or skip the slide) instead of a worker traceback.
    """

    def __init__(self, jobs: list[SlideJob]) -> None:
        self.paths = [str(j.path) for j in jobs]
        self.plans = [j.plan for j in jobs]
        counts = [len(j.plan.coords) for j in jobs]
        self.slide_of = np.repeat(np.arange(len(jobs)), counts).astype(np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._handles: dict[int, Any] = {}
        self._broken: dict[int, str] = {}

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

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        s = int(self.slide_of[i])
        plan = self.plans[s]
        if s in self._broken:  # OpenSlide handles stay in error: do not read the rest
            return (
                torch.zeros((plan.patch_size, plan.patch_size, 3), dtype=torch.uint8),
                i,
                self._broken[s],
            )
        xy = plan.coords[i - self.offsets[s]]
        try:
            patch = read_patch(self._handle(s), plan, xy)
        except Exception as err:
            self._broken[s] = (
                f"{self.paths[s]}: cannot read the patch at level-0 (x={int(xy[0])}, "
                f"y={int(xy[1])}), pyramid level {plan.level}, {plan.read_size}x"
                f"{plan.read_size} px ({type(err).__name__}: {str(err)[:200]})"
            )
            return (
                torch.zeros((plan.patch_size, plan.patch_size, 3), dtype=torch.uint8),
                i,
                self._broken[s],
            )
        return torch.from_numpy(patch.copy()), i, ""


def slide_batches(offsets: np.ndarray, batch_size: int) -> list[list[int]]:
    """Batches of patch indices that never span two slides.

    A slide's embeddings then do not depend on its neighbours in the window (float results
    of a batch can depend on its size and content), so the local and the Ray engine, which
    embeds slide by slide, write the same bytes.
    """
    return [
        list(range(start, min(start + batch_size, int(end))))
        for begin, end in zip(offsets[:-1], offsets[1:])
        for start in range(int(begin), int(end), batch_size)
    ]


def _loader(dataset: PatchDataset, batch_size: int, num_workers: int, device: torch.device):
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=slide_batches(dataset.offsets, batch_size),
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
        # fork on Linux: workers start fast and inherit the plans; spawn elsewhere
        multiprocessing_context="fork" if num_workers > 0 and sys.platform == "linux" else None,
    )


def embed_window(
    window: list[SlideJob],
    encoder: PatchEncoder,
    out_dir: Path,
    batch_size: int,
    num_workers: int,
    on_error: str = "fail",
    on_slide_done: Callable[[SlideJob], None] | None = None,
    on_patches: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Embed the planned patches of ``window`` and write each slide's file when complete.

    Returns
    -------
    dict
        ``slide key -> error`` of slides left out (``on_error="skip"``); with ``fail`` the
        first read error raises :class:`SlideReadError`.
    """
    dataset = PatchDataset(window)
    loader = _loader(dataset, batch_size, num_workers, encoder.preprocess["device"])
    buffers: dict[int, list[np.ndarray]] = {}
    filled = np.zeros(len(window), np.int64)
    sizes = np.diff(dataset.offsets)
    failed: dict[int, str] = {}
    for patches, idx, errors in loader:
        idx = idx.numpy()
        slides = dataset.slide_of[idx]
        for s, err in zip(slides, errors):
            if err and int(s) not in failed:
                failed[int(s)] = err
                if on_error == "fail":
                    raise SlideReadError(
                        err, hint=f"the slide file is corrupt; re-download it, or {_SKIP_HINT}"
                    )
                log.warning("%s; slide skipped (on_error=skip)", err)
                buffers.pop(int(s), None)
        ok = np.array([int(s) not in failed for s in slides])
        feats = encoder.encode(patches[torch.from_numpy(ok)]) if ok.any() else None
        for s in np.unique(slides[ok]):
            sel = slides[ok] == s
            buffers.setdefault(int(s), []).append(feats[sel])
            filled[s] += int(sel.sum())
            if filled[s] == sizes[s]:
                job = window[s]
                write_slide_h5(
                    out_dir / f"{job.key}{SUFFIX}",
                    np.concatenate(buffers.pop(int(s))),
                    job.plan.coords,
                    job.meta,
                )
                if on_slide_done is not None:
                    on_slide_done(job)
        if on_patches is not None:
            on_patches(len(idx))
    return {window[s].key: err for s, err in failed.items()}
