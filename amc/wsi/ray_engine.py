"""The ``ray`` engine: slides spread over a Ray cluster with Ray Data's actor pool.

Each actor loads the patch encoder once (on its GPU when ``gpus_per_actor`` > 0) and embeds
whole slides: it plans the slide, reads its patches with its own DataLoader workers and writes
the slide's HDF5 file to the shared output folder, exactly as the local engine does, so the
per-slide files and the table are the same. Actors that die (a killed worker, a lost node) are
restarted and their slide retried by Ray; a run that is stopped altogether resumes from the
finished per-slide files like the local engine.

Options (``ray_options``): ``address`` (else ``RAY_ADDRESS``, else a local Ray started for
this run), ``actors`` (pool size), ``gpus_per_actor``, ``cpus_per_actor``, ``num_cpus`` (of a
local Ray), ``encoder_factory`` (a picklable callable returning the encoder inside each actor;
default: the driver's encoder, shipped to the actors).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amc.errors import InputError
from amc.wsi.embed import SlideJob, SlideReadError, embed_window
from amc.wsi.encoders import PatchEncoder
from amc.wsi.extract import prepare_job

log = logging.getLogger(__name__)


class SlideEmbedder:
    """A Ray Data actor: embeds the slides of each batch of rows, one per-slide file each.

    Rows hold ``patient_id``, ``path``, ``key``; the output rows ``key``, ``status``
    (``done``, ``no_tissue``, ``failed`` (unreadable), ``error`` (bad input)), ``patches``
    and ``message``.
    """

    def __init__(self, encoder_factory: Callable[[], PatchEncoder], run: Mapping[str, Any]):
        self.run = {**run, "encoder": encoder_factory(), "on_error": "skip"}

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"key": [], "status": [], "patches": [], "message": []}
        for pid, path, key in zip(batch["patient_id"], batch["path"], batch["key"]):
            status, n, message = self._one(SlideJob(str(pid), Path(str(path)), str(key)))
            out["key"].append(str(key))
            out["status"].append(status)
            out["patches"].append(n)
            out["message"].append(message)
        return out

    def _one(self, job: SlideJob) -> tuple[str, int, str]:
        summary = {"failed": {}, "no_tissue": 0, "computed": 0}
        run = {**self.run, "summary": summary}
        try:
            n = prepare_job(job, run)
        except InputError as err:
            return "error", 0, str(err)
        if job.key in summary["failed"]:
            return "failed", 0, summary["failed"][job.key]
        if n == 0:
            return "no_tissue", 0, ""
        failed = embed_window(
            [job], run["encoder"], run["out_dir"], run["batch_size"], run["num_workers"], "skip"
        )
        if failed:
            return "failed", 0, failed[job.key]
        return "done", n, ""


def _init_ray(options: Mapping[str, Any]) -> None:
    import ray

    if ray.is_initialized():
        return
    address = options.get("address") or os.environ.get("RAY_ADDRESS") or None
    import amc

    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    package = Path(amc.__file__).resolve().parent
    if address is None:
        # a local Ray's workers inherit this environment: point them at this checkout's code
        paths = [str(package.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        if options.get("num_cpus"):
            kwargs["num_cpus"] = int(options["num_cpus"])
    else:
        # a cluster: ship this checkout's library, so workers run the driver's code
        kwargs["runtime_env"] = {"py_modules": [str(package)]}
    log.info("Ray: %s", f"connecting to {address}" if address else "starting a local instance")
    ray.init(address=address, **kwargs)


def run_ray(pending: list[SlideJob], ray_options: Mapping[str, Any], **run: Any) -> None:
    """Embed ``pending`` slides on Ray; fills ``run["summary"]`` as the local engine does."""
    if not pending:
        return
    try:
        import ray
    except ImportError as err:
        raise InputError(
            "sources.tcga.wsi.engine=ray but Ray is not installed",
            hint='pip install "ray[data]", or use engine: local',
        ) from err
    _init_ray(ray_options)
    encoder = run["encoder"]
    factory = ray_options.get("encoder_factory") or (lambda: encoder)
    static = {k: v for k, v in run.items() if k not in ("encoder", "summary")}
    actors = max(1, min(int(ray_options.get("actors") or 1), len(pending)))
    rows = [{"patient_id": j.patient_id, "path": str(j.path), "key": j.key} for j in pending]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        SlideEmbedder,
        fn_constructor_args=(factory, static),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=float(ray_options.get("gpus_per_actor") or 0),
        num_cpus=float(ray_options.get("cpus_per_actor") or 1),
    )  # Ray Data restarts a dead actor and retries its slide (max_restarts = -1 by default)
    results = {r["key"]: r for r in ds.take_all()}
    _collect(pending, results, run)


def _collect(pending: list[SlideJob], results: Mapping[str, Mapping], run: Mapping) -> None:
    summary = run["summary"]
    for job in pending:  # in job order, so the first error reported is deterministic
        r = results.get(job.key)
        if r is None:
            raise InputError(f"{job.path}: no result from the Ray workers", hint="run again")
        if r["status"] == "error":
            raise InputError(r["message"])
        if r["status"] == "failed":
            if run["on_error"] == "fail":
                raise SlideReadError(
                    r["message"],
                    hint="the slide file is corrupt; re-download it, or set "
                    "sources.tcga.wsi.on_error: skip to leave it out",
                )
            log.warning("%s; slide skipped (on_error=skip)", r["message"])
            summary["failed"][job.key] = r["message"]
            continue
        summary["computed"] += 1
        summary["no_tissue"] += r["status"] == "no_tissue"
        summary["patches"] += int(r["patches"])
