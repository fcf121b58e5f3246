"""Measured cost of a model (paper Table 10): parameters, forward FLOPs per sample
(``torch.utils.flop_counter``), training step time and peak training memory.

Generic over any ``nn.Module`` with AMC's ``forward(inputs, present)`` interface whose output has
``.logits`` and ``.aux_losses``. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA; on
CPU (no allocator statistics) it is counted: parameters + gradients + AdamW state + every tensor
autograd saves for the backward pass.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from amc.training.optim import FusedAdamW


def random_inputs(
    sizes: dict[str, Any], encoders: dict[str, str], batch: int, bag_items: int = 8
) -> dict[str, Any]:
    """Random inputs of the given per-modality sizes (int F, or a volume shape)."""
    gen = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {}
    for name, size in sizes.items():
        if isinstance(size, list | tuple):
            shape = tuple(size) if len(size) == 4 else (1, *size)
            out[name] = torch.randn(batch, *shape, generator=gen)
        elif encoders.get(name) == "bag":
            bag = torch.randn(batch, bag_items, int(size), generator=gen)
            out[name] = (bag, torch.ones(batch, bag_items, dtype=torch.bool))
        else:
            out[name] = torch.randn(batch, int(size), generator=gen)
    return out


def _move(inputs: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: tuple(t.to(device) for t in v) if isinstance(v, tuple) else v.to(device)
        for k, v in inputs.items()
    }


def _loss(out: Any) -> torch.Tensor:
    aux = sum((v.float() for v in (out.aux_losses or {}).values()), torch.zeros(()))
    return out.logits.float().square().mean() + aux.to(out.logits.device)


def measure(
    model: nn.Module,
    inputs: dict[str, Any],
    steps: int = 5,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """{params, gflops (forward, per sample), step_ms (median), peak_mb} of one model."""
    device = torch.device(device)
    model = model.to(device)
    inputs = _move(inputs, device)
    batch = next(iter(v[0] if isinstance(v, tuple) else v for v in inputs.values())).shape[0]
    present = torch.ones(batch, len(inputs), dtype=torch.bool, device=device)
    params = sum(p.numel() for p in model.parameters())
    model.eval()
    # Grad stays enabled: under no_grad the counter's module tracker cannot hook a parameter
    # that a method passes to a submodule as an input (MUSE's modality nodes).
    with FlopCounterMode(display=False) as counter:
        model(inputs, present)
    gflops = counter.get_total_flops() / batch / 1e9
    model.train()
    optimizer = FusedAdamW(model.parameters(), lr=1e-4)  # the optimizer training uses
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    times = []
    for step in range(steps + 1):
        saved[0] = 0
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = _loss(model(inputs, present))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step allocates optimizer state
            times.append(time.perf_counter() - start)
    state = sum(p.numel() * p.element_size() for p in model.parameters()) * 4  # w, grad, 2 moments
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = state + saved[0]
    return {
        "params": float(params),
        "gflops": float(gflops),
        "step_ms": 1000 * statistics.median(times),
        "peak_mb": peak / 2**20,
    }
