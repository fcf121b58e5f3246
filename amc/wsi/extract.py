"""Slide-level extraction: every slide of a cohort to one HDF5 file, resumable.

Slides are the unit of work. A slide whose per-slide file already exists with the same
encoder, parameters and slide content is skipped, so an interrupted run resumes and a replaced
slide is embedded again. The ``local`` engine embeds on this machine (:mod:`amc.wsi.embed`),
in windows of about ``window_patches`` patches so memory does not grow with the cohort; the
``ray`` engine (:mod:`amc.wsi.ray_engine`) spreads the slides over a Ray cluster's actors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from amc.errors import InputError
from amc.wsi.embed import (
    ON_ERROR,
    SlideJob,
    SlideReadError,
    SlideSettings,
    collect_jobs,
    config_hash,
    embed_window,
    error_message,
    plan_job,
)
from amc.wsi.encoders import PatchEncoder
from amc.wsi.store import SUFFIX, SlideHashes, read_done, write_slide_h5

log = logging.getLogger(__name__)


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


def _plan_run(
    paths: Mapping[str, Sequence[str | os.PathLike]], out_dir: Path, config: str
) -> tuple[list[SlideJob], list[SlideJob], dict[str, str], dict[str, Any]]:
    """Every slide job, the ones still to embed (no output with this ``config`` and slide
    content yet), the slide hashes and the run summary so far; creates ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = collect_jobs(paths)
    pending, shas = pending_jobs(jobs, out_dir, config, SlideHashes(out_dir / ".slide_sha256.json"))
    return jobs, pending, shas, _new_summary(len(jobs), len(pending))


def _new_summary(n_slides: int, n_pending: int) -> dict[str, Any]:
    """The run summary before any slide is embedded (slides already done count as skipped)."""
    summary: dict[str, Any] = {
        "slides": n_slides,
        "computed": 0,
        "skipped": n_slides - n_pending,
        "no_tissue": 0,
        "patches": 0,
        "failed": {},
    }
    if summary["skipped"]:
        log.info(
            "%d of %d slides done; resuming with %d", n_slides - n_pending, n_slides, n_pending
        )
    return summary


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
    _check_choices(on_no_tissue=on_no_tissue, on_error=on_error, engine=engine)
    settings = SlideSettings(
        target_mpp, patch_size, max_patches, seed, min_tissue, thumb_size, fallback_mpp
    )
    settings.check()
    out_dir = Path(out_dir)
    config = config_hash(encoder.info, settings.params())
    jobs, pending, shas, summary = _plan_run(paths, out_dir, config)
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
    summary["outputs"] = [f"{j.key}{SUFFIX}" for j in jobs if j.key not in summary["failed"]]
    _log_summary(summary)
    return summary


_CHOICES = {
    "on_no_tissue": ("skip", "error"),
    "on_error": ON_ERROR,
    "engine": ("local", "ray"),
}


def _check_choices(**values: str) -> None:
    for key, value in values.items():
        if value not in _CHOICES[key]:
            raise InputError(f"{key}={value!r} is not one of {', '.join(_CHOICES[key])}")


def _log_summary(summary: Mapping[str, Any]) -> None:
    log.info(
        "WSI extraction: %d slides (%d computed, %d already done, %d without tissue, "
        "%d unreadable and skipped), %d patches embedded",
        summary["slides"],
        summary["computed"],
        summary["skipped"],
        summary["no_tissue"],
        len(summary["failed"]),
        summary["patches"],
    )


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
