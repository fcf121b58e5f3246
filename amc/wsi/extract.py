"""Slide-level extraction: plan each slide's patches, embed them, write one HDF5 file per slide.

Slides are the unit of work. A slide whose per-slide file already exists with the same
encoder, parameters and slide content is skipped, so an interrupted run resumes. The
``local`` engine reads patches in DataLoader worker processes (each opens its own OpenSlide
handles; whole levels are never read into memory) and embeds them on this machine, in windows
of about ``window_patches`` patches so memory does not grow with the cohort; the ``ray``
engine (:mod:`amc.wsi.ray_engine`) spreads the slides over a Ray cluster's actors.
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
from tqdm.auto import tqdm

from amc.errors import InputError
from amc.wsi.encoders import PatchEncoder
from amc.wsi.patching import PatchPlan, plan_patches, read_patch, subsample
from amc.wsi.slide import open_slide, slide_key
from amc.wsi.store import SUFFIX, SlideHashes, read_done, write_slide_h5
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


def pending_jobs(
    jobs: list[SlideJob], out_dir: Path, config: str, hashes: SlideHashes
) -> tuple[list[SlideJob], dict[str, str]]:
    """Jobs whose per-slide file is missing or stale (other config or slide content).

    Returns the pending jobs and ``slide key -> content hash`` of every job.
    """
    shas = {}
    pending = []
    for job in jobs:
        try:
            shas[job.key] = hashes(job.path)
        except OSError:
            shas[job.key] = ""  # missing / unreadable: planning names the file
        done = read_done(out_dir / f"{job.key}{SUFFIX}")
        if (
            done is None
            or done.get("config") != config
            or done.get("slide_sha256") != shas[job.key]
        ):
            pending.append(job)
    hashes.save()
    return pending, shas


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
    on_error: str = "fail",
    engine: str = "local",
    ray_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Embed the tissue patches of every slide; one ``<slide>.h5`` per slide in ``out_dir``.

    Slides whose output already exists with the same encoder, parameters and slide content
    are skipped, so an interrupted run resumes and a replaced slide is embedded again.

    Parameters
    ----------
    paths : mapping
        ``patient_id -> slide paths`` (e.g. from :func:`amc.wsi.slide.find_slides`).
    encoder : PatchEncoder
        From :func:`amc.wsi.encoders.load_patch_encoder`.
    max_patches : int, optional
        Keep at most this many patches per slide, a deterministic (``seed``, slide) subsample.
    fallback_mpp : float, optional
        MPP for slides that document neither MPP nor objective power.
    on_no_tissue : {"skip", "error"}
        A slide without tissue is recorded with zero patches and its patient is absent from
        the modality (``skip``, counted in the log), or raises :class:`InputError`.
    on_error : {"fail", "skip"}
        A slide that cannot be read (corrupt file, corrupt tile in the level read) stops the
        run with a message naming the slide and the location (``fail``), or is left out,
        logged and listed in the summary's ``failed`` (``skip``).
    engine : {"local", "ray"}
        Where the slides are embedded (see :mod:`amc.wsi.ray_engine` for ``ray_options``).

    Returns
    -------
    dict
        ``slides``, ``computed``, ``skipped`` (already done), ``no_tissue``, ``patches``,
        ``failed`` (slide -> error), ``outputs`` (per-slide file names of finished slides).
    """
    if on_no_tissue not in ("skip", "error"):
        raise InputError(f"on_no_tissue={on_no_tissue!r} is not one of skip, error")
    if on_error not in ON_ERROR:
        raise InputError(f"on_error={on_error!r} is not one of fail, skip")
    if engine not in ("local", "ray"):
        raise InputError(f"engine={engine!r} is not one of local, ray")
    settings = SlideSettings(
        target_mpp, patch_size, max_patches, seed, min_tissue, thumb_size, fallback_mpp
    )
    settings.check()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = config_hash(encoder.info, settings.params())
    jobs = collect_jobs(paths)
    pending, shas = pending_jobs(jobs, out_dir, config, SlideHashes(out_dir / ".slide_sha256.json"))
    summary: dict[str, Any] = {
        "slides": len(jobs),
        "computed": 0,
        "skipped": len(jobs) - len(pending),
        "no_tissue": 0,
        "patches": 0,
        "failed": {},
    }
    if summary["skipped"]:
        log.info(
            "%d of %d slides already extracted; resuming with %d",
            summary["skipped"],
            len(jobs),
            len(pending),
        )
    run = dict(
        encoder=encoder,
        out_dir=out_dir,
        settings=settings,
        config=config,
        shas=shas,
        batch_size=batch_size,
        num_workers=num_workers,
        on_error=on_error,
        on_no_tissue=on_no_tissue,
        summary=summary,
    )
    if engine == "ray":
        from amc.wsi.ray_engine import run_ray

        run_ray(pending, ray_options=dict(ray_options or {}), **run)
    else:
        _run_local(pending, window_patches, show_progress, **run)
    failed = summary["failed"]
    summary["outputs"] = [f"{j.key}{SUFFIX}" for j in jobs if j.key not in failed]
    log.info(
        "WSI extraction: %d slides (%d computed, %d already done, %d without tissue, "
        "%d unreadable and skipped), %d patches embedded",
        summary["slides"],
        summary["computed"],
        summary["skipped"],
        summary["no_tissue"],
        len(failed),
        summary["patches"],
    )
    return summary


def prepare_job(job: SlideJob, run: Mapping[str, Any]) -> int:
    """Plan one slide; write the empty file of a slide without tissue.

    Returns the number of patches to embed (0: nothing left to do for this slide, including
    an unreadable slide skipped under ``on_error="skip"``).
    """
    summary = run["summary"]
    encoder = run["encoder"]
    try:
        plan_job(job, run["settings"], run["config"], encoder, run["shas"].get(job.key, ""))
    except SlideReadError as err:
        if run["on_error"] == "fail":
            raise
        log.warning("%s; slide skipped (on_error=skip)", error_message(err))
        summary["failed"][job.key] = error_message(err)
        return 0
    n = len(job.plan.coords)
    if n == 0:
        summary["no_tissue"] += 1
        msg = f"{job.path}: no tissue found (patient {job.patient_id})"
        if run["on_no_tissue"] == "error":
            raise InputError(msg, hint="check the slide or use on_no_tissue=skip")
        log.warning("%s; the slide contributes no patches", msg)
        write_slide_h5(
            run["out_dir"] / f"{job.key}{SUFFIX}",
            np.zeros((0, encoder.dim), np.float32),
            np.zeros((0, 2), np.int64),
            job.meta,
        )
        summary["computed"] += 1
    return n


def _run_local(
    pending: list[SlideJob], window_patches: int, show_progress: bool, **run: Any
) -> None:
    """The local engine: windows of slides through one DataLoader each."""
    summary = run["summary"]
    disable = None if show_progress else True
    slide_bar = tqdm(total=len(pending), desc="slides", unit="slide", position=0, disable=disable)
    patch_bar = tqdm(desc="patches", unit="patch", position=1, leave=False, disable=disable)
    try:
        i = 0
        while i < len(pending):
            window: list[SlideJob] = []
            n_window = 0
            while i < len(pending) and (not window or n_window < window_patches):
                job = pending[i]
                i += 1
                n = prepare_job(job, run)
                if n == 0:
                    slide_bar.update(1)
                    continue
                window.append(job)
                n_window += n
            if not window:
                continue
            patch_bar.total = (patch_bar.total or 0) + n_window
            patch_bar.refresh()
            failed = embed_window(
                window,
                run["encoder"],
                run["out_dir"],
                run["batch_size"],
                run["num_workers"],
                run["on_error"],
                on_slide_done=lambda _job: slide_bar.update(1),
                on_patches=patch_bar.update,
            )
            summary["failed"].update(failed)
            summary["computed"] += len(window) - len(failed)
            summary["patches"] += sum(len(j.plan.coords) for j in window if j.key not in failed)
    finally:
        patch_bar.close()
        slide_bar.close()
