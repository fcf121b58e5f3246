"""amc.training.parallel: worker counts and order-preserving parallel map."""

import os
import time
from pathlib import Path

import pytest
import torch

from amc.training.parallel import (
    available_cores,
    parallel_map,
    resolve_workers,
    threads_per_worker,
    visible_gpus,
)


def _square_and_threads(x: int) -> tuple[int, int]:
    return x * x, torch.get_num_threads()


def test_resolve_workers():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_workers(3, 10, cpu) == 3
    assert resolve_workers(8, 2, cpu) == 2  # never more workers than jobs
    assert resolve_workers("auto", 10, cuda) == max(1, len(visible_gpus()))
    assert resolve_workers(8, 10, cuda) == max(1, len(visible_gpus()))  # one process per GPU
    assert 1 <= resolve_workers("auto", 10, cpu) <= 10
    assert resolve_workers("auto", 1, cpu) == 1
    cores = available_cores()
    assert threads_per_worker(1, num_threads=1) == 1
    # never more threads in all than cores: an explicit request is capped at the even share
    assert threads_per_worker(2, num_threads=cores) == max(1, cores // 2)
    assert threads_per_worker(1) == cores
    assert threads_per_worker(10_000) == 1


def test_parallel_map_keeps_order_and_sets_worker_threads():
    items = [5, 1, 4, 2, 3]
    out = parallel_map(_square_and_threads, items, workers=2, threads=1)
    assert [v for v, _ in out] == [25, 1, 16, 4, 9]
    assert {t for _, t in out} == {1}
    serial = parallel_map(_square_and_threads, items, workers=1)
    assert [v for v, _ in serial] == [25, 1, 16, 4, 9]


def _pid_and_threads(x: int) -> tuple[int, int, int]:
    if x == 99:
        raise ValueError("job 99 failed")
    return x, os.getpid(), torch.get_num_threads()


def _first_waits_for_the_others(job: tuple[int, str]) -> tuple[int, int, int]:
    """Item 0 returns only once items 1-4 have run (each leaves a file in ``folder``)."""
    x, folder = job
    if x == 0:
        deadline = time.monotonic() + 120
        while len(list(Path(folder).glob("done-*"))) < 4:
            if time.monotonic() > deadline:
                raise TimeoutError("items 1-4 did not run while item 0 was running")
            time.sleep(0.02)
    else:
        (Path(folder) / f"done-{x}").touch()
    return x, os.getpid(), torch.get_num_threads()


def test_on_cpu_the_caller_works_and_a_free_worker_takes_the_next_item(tmp_path):
    """Item 0 runs in the calling process (at the workers' thread count, restored afterwards);
    while it runs, the free worker process takes every other item: no fixed share per process
    (with one, items 2 and 4 would wait for the caller, which waits for them)."""
    before = torch.get_num_threads()
    jobs = [(x, str(tmp_path)) for x in range(5)]
    out = parallel_map(_first_waits_for_the_others, jobs, workers=2, threads=1, gpus=[])
    assert [x for x, _, _ in out] == [0, 1, 2, 3, 4]
    pids = [pid for _, pid, _ in out]
    assert pids[0] == os.getpid()
    assert len(set(pids[1:])) == 1 and pids[1] != os.getpid()
    assert {t for _, _, t in out} == {1}
    assert torch.get_num_threads() == before


def test_single_threaded_workers_are_forked_others_spawned():
    """A forked worker skips the imports a spawned one repeats; only single-threaded ones are
    forked (a forked child's OpenMP region can hang on its parent's thread pool)."""
    import multiprocessing

    from amc.training.parallel import _cpu_context

    can_fork = "fork" in multiprocessing.get_all_start_methods()  # not on Windows
    assert _cpu_context(1).get_start_method() == ("fork" if can_fork else "spawn")
    assert _cpu_context(2).get_start_method() == "spawn"
    items = [5, 1, 4]
    out = parallel_map(_square_and_threads, items, workers=2, threads=2, gpus=[])
    assert out == [(25, 2), (1, 2), (16, 2)]  # spawned workers at two threads each


def test_a_failing_job_raises_in_the_caller():
    for failing in ([99, 1, 2], [0, 99, 2]):  # the caller's own item, then a worker's
        with pytest.raises(ValueError, match="job 99 failed"):
            parallel_map(_pid_and_threads, failing, workers=2, threads=1, gpus=[])


def _visible_gpu(_: int) -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def test_parallel_map_gives_each_worker_its_own_gpu():
    out = parallel_map(_visible_gpu, range(6), workers=2, threads=1, gpus=["3", "5"])
    assert set(out) <= {"3", "5"} and out  # every job saw exactly one of the two GPUs
