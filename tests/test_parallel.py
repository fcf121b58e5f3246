"""amc.training.parallel: worker counts and order-preserving parallel map."""

import torch

from amc.training.parallel import parallel_map, resolve_workers, threads_per_worker


def _square_and_threads(x: int) -> tuple[int, int]:
    return x * x, torch.get_num_threads()


def test_resolve_workers():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_workers(3, 10, cpu) == 3
    assert resolve_workers(8, 2, cpu) == 2  # never more workers than jobs
    assert resolve_workers("auto", 10, cuda) == 1
    assert 1 <= resolve_workers("auto", 10, cpu) <= 10
    assert resolve_workers("auto", 1, cpu) == 1
    assert threads_per_worker(2, num_threads=3) == 3
    assert threads_per_worker(10_000) == 1


def test_parallel_map_keeps_order_and_sets_worker_threads():
    items = [5, 1, 4, 2, 3]
    out = parallel_map(_square_and_threads, items, workers=2, threads=1)
    assert [v for v, _ in out] == [25, 1, 16, 4, 9]
    assert {t for _, t in out} == {1}
    serial = parallel_map(_square_and_threads, items, workers=1)
    assert [v for v, _ in serial] == [25, 1, 16, 4, 9]
