"""Run independent trainings (seeds, study cells) in parallel worker processes on CPU.

The small AMC models of the synthetic cohorts do not keep several cores busy from one process
(intra-op threading wins little at these matrix sizes), while one training per core scales
almost linearly. Every training is seeded, so results do not depend on the order in which the
workers finish; they depend on the torch thread count only through float summation order, which
:func:`threads_per_worker` fixes for a given machine and worker count.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from amc.runtime import (  # noqa: F401  (threads_per_worker re-exported)
    available_cores,
    threads_per_worker,
    visible_gpus,
)

T = TypeVar("T")
R = TypeVar("R")

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


def resolve_workers(workers: int | str, jobs: int, device: torch.device) -> int:
    """Number of worker processes for ``jobs`` trainings.

    ``"auto"`` (or 0) gives one process per GPU on CUDA (each GPU is a shared resource of its
    own) and one per available core on CPU; never more than ``jobs``, nor on CUDA more than the
    GPUs (two trainings on one GPU only contend for it).
    """
    if device.type == "cuda":
        gpus = max(1, len(visible_gpus()))
        workers = gpus if workers in ("auto", 0, None) else min(int(workers), gpus)
    elif workers in ("auto", 0, None):
        workers = available_cores()
    return max(1, min(int(workers), jobs))


def _init_worker(threads: int, log_level: int, gpus) -> None:
    if gpus is not None:
        # Before CUDA starts in this process: "cuda" here is the GPU handed to this worker.
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()
    torch.set_num_threads(threads)
    logging.basicConfig(level=log_level, format=LOG_FORMAT, datefmt="%H:%M:%S", stream=sys.stderr)


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T] | Iterable[T],
    workers: int,
    threads: int = 1,
    desc: str = "",
    gpus: Sequence[str] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` on ``workers`` processes of ``threads`` threads: on CPU the
    calling process and ``workers - 1`` spawned ones, on CUDA ``workers`` spawned ones.

    ``fn`` and the items must be picklable (a module-level function, plain data). With
    ``workers == 1`` everything runs in this process (no pickling, easiest to debug). Results
    come back in the order of ``items``; the first exception in a worker is raised here.
    ``gpus`` (default: :func:`visible_gpus`): each worker process sees one of them as its only
    CUDA device, round-robin, so that workers on a multi-GPU machine do not share a GPU.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in tqdm(items, desc=desc, disable=None)]
    context = multiprocessing.get_context("spawn")  # fork after torch threads start can hang
    level = logging.getLogger().getEffectiveLevel()
    gpus = visible_gpus() if gpus is None else list(gpus)
    if not gpus:
        return _map_with_caller(fn, items, workers, threads, desc, context, level)
    queue = context.Queue()
    for i in range(workers):
        queue.put(gpus[i % len(gpus)])
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads, level, queue)
    ) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=None))


def _map_with_caller(
    fn: Callable[[T], R], items: list[T], workers: int, threads: int, desc: str, context, level
) -> list[R]:
    """On CPU the calling process is one of the ``workers``: it takes items 0, w, 2w, ... itself
    (at ``threads`` torch threads, as a worker would) and ``workers - 1`` spawned processes take
    the others. Why: a spawned worker spends ~3.7 s CPU importing torch and the training code
    before its first item, which the caller has already loaded; one process fewer to start, and
    one core trains from the start instead of every core waiting on imports."""
    results: list = [None] * len(items)
    with (
        tqdm(total=len(items), desc=desc, disable=None) as bar,
        ProcessPoolExecutor(
            workers - 1,
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads, level, None),
        ) as pool,
    ):
        futures = {i: pool.submit(fn, item) for i, item in enumerate(items) if i % workers}
        for future in futures.values():
            future.add_done_callback(lambda _: bar.update())
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for i in range(0, len(items), workers):
                results[i] = fn(items[i])
                bar.update()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            torch.set_num_threads(previous)
        for i, future in futures.items():
            results[i] = future.result()
    return results
