"""Run independent trainings (seeds, study cells) in parallel worker processes on CPU.

The small AMC models of the synthetic cohorts do not keep several cores busy from one process
(intra-op threading wins little at these matrix sizes), while one training per core scales
almost linearly. Every training is seeded, so results do not depend on the order in which the
workers finish; they depend on the torch thread count only through float summation order, which
:func:`threads_per_worker` fixes for a given machine and worker count.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
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
    calling process and ``workers - 1`` worker processes, on CUDA ``workers`` spawned ones.

    ``fn`` and the items must be picklable (a module-level function, plain data). With
    ``workers == 1`` everything runs in this process (no pickling, easiest to debug). Every
    process takes the next item as soon as it is free. Results come back in the order of
    ``items``; the first exception in a worker is raised here. ``gpus`` (default:
    :func:`visible_gpus`): each worker process sees one of them as its only CUDA device,
    round-robin, so that workers on a multi-GPU machine do not share a GPU.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in tqdm(items, desc=desc, disable=None)]
    level = logging.getLogger().getEffectiveLevel()
    gpus = visible_gpus() if gpus is None else list(gpus)
    if not gpus:
        return _map_with_caller(fn, items, workers, threads, desc, _cpu_context(threads), level)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    queue = context.Queue()
    for i in range(workers):
        queue.put(gpus[i % len(gpus)])
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads, level, queue)
    ) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=None))


def _cpu_context(threads: int) -> multiprocessing.context.BaseContext:
    """How CPU workers start: forked when they run one thread each, else spawned.

    A forked worker starts in milliseconds with torch and the training code already imported; a
    spawned one first spends ~3.7 s CPU importing them, a third of a small baseline's run on 2
    cores. Fork is safe only for single-threaded workers: a forked child that opens an OpenMP
    parallel region can hang on the thread pool its parent's libgomp started (pytorch/pytorch
    issues 17199 and 58962), and at one thread torch and MKL open none.
    """
    if threads == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _NextItem:
    """Hands out item indices 0, 1, 2, ... to whichever process is free first, until none is
    left or :meth:`stop` (the first failure) is called."""

    def __init__(self, n_items: int) -> None:
        self._n_items = n_items
        self._taken = itertools.count()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def __call__(self) -> int | None:
        with self._lock:
            i = next(self._taken)
        return None if self._stopped.is_set() or i >= self._n_items else i

    def stop(self) -> None:
        self._stopped.set()


def _feed(pool: ProcessPoolExecutor, fn, items: list, results: list, next_item, bar) -> None:
    """Hand one worker process one item at a time until none is left (runs in a thread)."""
    while (i := next_item()) is not None:
        try:
            results[i] = pool.submit(fn, items[i]).result()
        except BaseException:
            next_item.stop()
            raise
        bar.update()


def _map_with_caller(
    fn: Callable[[T], R], items: list[T], workers: int, threads: int, desc: str, context, level
) -> list[R]:
    """On CPU the calling process is one of the ``workers`` (at ``threads`` torch threads, as a
    worker would; restored afterwards) and ``workers - 1`` worker processes are the others.

    Why the caller works too: it has already loaded torch and the training code, so one process
    fewer starts and one core trains from the start. Why every process takes the next free item
    rather than a fixed share: trainings stop early at different epochs, and a fixed share left
    one core idle for a fifth of a run while the other finished its last seed.
    """
    results: list = [None] * len(items)
    next_item = _NextItem(len(items))
    with ProcessPoolExecutor(
        workers - 1, mp_context=context, initializer=_init_worker, initargs=(threads, level, None)
    ) as pool:
        # The first submission starts the workers: forked ones now, from this thread, before
        # the progress bar and the feeding threads exist, so that no child inherits a lock
        # another thread holds (spawned ones start as items arrive).
        pool.submit(int)
        i = next_item()  # item 0 is the caller's: a spawned worker is still starting
        with (
            tqdm(total=len(items), desc=desc, disable=None) as bar,
            ThreadPoolExecutor(workers - 1) as feeders,
        ):
            fed = [
                feeders.submit(_feed, pool, fn, items, results, next_item, bar)
                for _ in range(workers - 1)
            ]
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                while i is not None:
                    results[i] = fn(items[i])
                    bar.update()
                    i = next_item()
            except BaseException:
                next_item.stop()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            finally:
                torch.set_num_threads(previous)
            for future in fed:
                future.result()  # a worker's exception is raised here
    return results
