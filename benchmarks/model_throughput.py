"""Training throughput and peak memory of AMC against a concatenated-sequence transformer.

Shapes follow the paper's Table 7 (MIMIC-IV: hidden 64, batch 64; ADNI: hidden 64, batch 32; both
8 heads, 2 layers, 8 experts, top-2). Every modality is a vector of ``--features`` values so the
encoders are cheap and the comparison isolates the fusion transformer:

- ``amc``: :class:`amc.model.AMC` (per-modality tokenizer + vanilla layer, then improved blocks
  that attend within each modality, O(M N^2), with token fusion between blocks), full training
  step including the instance (L_I) and token (L_T) contrastive losses. L_T builds (B N)^2 logits
  for each of the M (M - 1) / 2 modality pairs, so this step is O(M^2 (B N)^2 D) at large sizes.
- ``amc_core``: the same network with L_I and L_T patched to 0 inside AMC's forward (the cost the
  paper's O(M N^2) argument is about: encoders, improved blocks, fusion, head).
- ``concat``: the same tokenizers and per-modality vanilla layer, then ``layers`` standard
  pre-norm blocks (multi-head softmax self-attention + dense MLP) over the concatenated
  (B, M*N, D) sequence, O((M N)^2) (paper section 4.1), mean-pool, linear head.

A training step is forward + backward + AdamW step. Per configuration: ``--warmup`` plain steps,
one memory-profiled step (untimed), then the median of up to ``--repeats`` timed steps (fewer when
``--budget`` seconds of timing are spent, at least one; the count is in the JSON). Peak memory:
on CUDA ``torch.cuda.max_memory_allocated`` over one step; on CPU the bytes of the tensors alive
at step start (parameters, AdamW state, the batch) plus the peak of the CPU allocator's net
allocated bytes during one step, read from ``torch.profiler``'s allocation events
(``profile_memory=True``). This counts tensor storage only: no Python heap, no allocator
fragmentation. Threads: ``torch.set_num_threads`` is set explicitly (default 1 on CPU) and printed.

The fusion step alone (token_scores + modality_importance + replace_uninformative_tokens, forward
and backward on a (B, M, N, N) map and (B, M, N, D) tokens) is timed against one improved block's
forward + backward on the same tokens; goal: < 10 %.

``--token-pairs all ring`` replaces the design comparison by AMC's full training step under each
L_T pair scheme (``loss.token_pairs``: all M(M-1)/2 modality pairs or a ring of M), over
M = 2 4 8 12 at N = 16 by default, with the growth exponent in M per scheme
(output benchmarks/results/token_pairs.json unless ``--out``).

Usage::

    python benchmarks/model_throughput.py [--quick] [--device auto|cpu|cuda]
        [--out benchmarks/results/model_throughput.json] [--token-pairs all ring]
    python benchmarks/model_throughput.py --against <git-rev> [--shapes ...] [--rounds 5]
        # side by side with an earlier revision, see benchmarks/side_by_side.py
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from amc.data.store import atomic_path
from amc.model import AMC, AMCConfig
from amc.model import network as amc_network
from amc.model.block import ImprovedBlock
from amc.model.encoders import ModalityTransformer, VectorTokenizer
from amc.model.fusion import modality_importance, replace_uninformative_tokens, token_scores
from amc.model.losses import classification_loss
from amc.runtime import autocast, autocast_dtype, select_device

logger = logging.getLogger(__name__)

# Table 7 of the paper: what differs per dataset (the rest is shared, see SHARED).
DATASETS: dict[str, dict[str, int]] = {"mimic": {"batch": 64}, "adni": {"batch": 32}}
SHARED = {"hidden": 64, "heads": 8, "layers": 2, "experts": 8, "top_k": 2, "encoder_layers": 1}
DESIGNS = ("amc", "amc_core", "concat")
AUX_WEIGHT = 0.1  # weight of each AMC auxiliary loss; only makes the backward pass complete
FUSION_GOAL = 0.10  # fusion step / one improved block (forward + backward)
FUSION_MIN_REPEATS = 15
FULL_GRID = {"num_modalities": [2, 3, 4, 8], "num_tokens": [16, 32, 64]}
QUICK_GRID = {"num_modalities": [2, 4], "num_tokens": [16]}
DEFAULT_OUT = Path("benchmarks/results/model_throughput.json")


class ConcatTransformer(nn.Module):
    """Baseline: all modalities concatenated into one sequence of M*N tokens.

    Per modality the same :class:`VectorTokenizer` and ``encoder_layers`` vanilla layers as AMC,
    then ``layers`` standard pre-norm blocks (softmax self-attention + dense MLP, the
    ``vanilla``/``dense`` :class:`ImprovedBlock`, which materialises the attention map the same way
    AMC's blocks do) over (B, M*N, D), final LayerNorm, mean over tokens, linear head.
    """

    def __init__(
        self,
        modalities: dict[str, int],
        num_classes: int,
        hidden: int,
        heads: int,
        layers: int,
        tokens: int,
        encoder_layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.names = list(modalities)
        self.encoders = nn.ModuleDict(
            {n: VectorTokenizer(f, tokens, hidden, dropout) for n, f in modalities.items()}
        )
        self.modality_layers = nn.ModuleDict(
            {n: ModalityTransformer(hidden, heads, encoder_layers, dropout) for n in self.names}
        )
        self.blocks = nn.ModuleList(
            ImprovedBlock(hidden, heads, attention="vanilla", ffn="dense", dropout=dropout)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``inputs``: name -> (B, F). Returns logits (B, C)."""
        x = torch.cat(
            [self.modality_layers[n](self.encoders[n](inputs[n])) for n in self.names], dim=1
        )  # (B, M*N, D)
        for block in self.blocks:
            x, _, _ = block(x)
        return self.head(self.norm(x).mean(dim=1))


def attention_flops(design: str, num_modalities: int, num_tokens: int, hidden: int) -> int:
    """Analytic attention cost per sample and layer: M*N^2*D (amc) or (M*N)^2*D (concat)."""
    if design in ("amc", "amc_core"):
        return num_modalities * num_tokens**2 * hidden
    if design == "concat":
        return (num_modalities * num_tokens) ** 2 * hidden
    raise ValueError(f"design={design!r} is not one of {DESIGNS}")


def growth_exponent(sizes: list[float], times: list[float]) -> float:
    """Least-squares slope of log(time) against log(size); nan with fewer than two points."""
    if len(sizes) < 2 or len(set(sizes)) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(times, float)), 1)
    return float(slope)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object],
    device: torch.device,
    warmup: int,
    repeats: int,
    budget_s: float = float("inf"),
) -> tuple[float, int]:
    """Median wall time of ``fn`` in seconds over up to ``repeats`` calls after ``warmup`` calls.

    Stops early once ``budget_s`` seconds were spent timing (at least one call always runs), so
    slow configurations get fewer repeats. Returns (median seconds, number of timed calls).
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times), len(times)


def _tensor_bytes(tensors: list[torch.Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        storage = t.untyped_storage()
        if storage.data_ptr() in seen:
            continue
        seen.add(storage.data_ptr())
        total += storage.nbytes()
    return total


def _profiled_cpu_peak(fn: Callable[[], object]) -> int:
    """Peak of the net bytes the CPU allocator handed out while ``fn`` ran (profiler events)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    events.sort()
    return max([0, *itertools.accumulate(size for _, size in events)])


def peak_memory(
    fn: Callable[[], object], device: torch.device, resident: list[torch.Tensor]
) -> int:
    """Peak bytes allocated during one call of ``fn`` (see the module docstring).

    ``resident``: tensors alive before the call (parameters, optimizer state, batch); on CPU their
    bytes are added to the profiled in-step peak, on CUDA the allocator already counts them.
    """
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device))
    return _tensor_bytes(resident) + _profiled_cpu_peak(fn)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]


def build_model(
    design: str,
    num_modalities: int,
    num_tokens: int,
    features: int,
    dropout: float = 0.1,
    token_pairs: str = "all",
) -> nn.Module:
    """An AMC or concat model at the Table 7 width with ``num_modalities`` vector modalities.

    ``token_pairs``: AMC's L_T pair scheme (``all`` | ``ring``, ``loss.token_pairs``).
    """
    modalities = {f"m{i}": features for i in range(num_modalities)}
    if design in ("amc", "amc_core"):
        config = AMCConfig(
            modalities=dict(modalities),
            num_classes=2,
            tokens=num_tokens,
            dropout=dropout,
            token_pairs=token_pairs,
            **SHARED,
        )
        return AMC(config)
    if design == "concat":
        shared = {k: v for k, v in SHARED.items() if k not in ("experts", "top_k")}
        return ConcatTransformer(
            modalities, num_classes=2, tokens=num_tokens, dropout=dropout, **shared
        )
    raise ValueError(f"design={design!r} is not one of {DESIGNS}")


def _zero_loss(tokens: torch.Tensor, *_: object, **__: object) -> torch.Tensor:
    return tokens.new_zeros((), dtype=torch.float32)


@contextlib.contextmanager
def _without_contrastive_losses() -> Iterator[None]:
    """Inside, AMC's forward skips L_I and L_T (both return 0): the ``amc_core`` design."""
    with (
        mock.patch.object(amc_network, "instance_contrastive_loss", _zero_loss),
        mock.patch.object(amc_network, "token_contrastive_loss", _zero_loss),
    ):
        yield


def measure_training_step(
    design: str,
    batch: int,
    num_modalities: int,
    num_tokens: int,
    features: int,
    device: torch.device,
    dtype: torch.dtype | None,
    warmup: int,
    repeats: int,
    budget_s: float,
    seed: int = 0,
    token_pairs: str = "all",
) -> dict[str, float | int | str]:
    """Time one full training step and measure its peak memory for one design and shape.

    Order: ``warmup`` plain steps, one memory-profiled step (untimed, so it also warms up), then
    up to ``repeats`` timed steps (see :func:`time_call`).
    """
    torch.manual_seed(seed)
    model = build_model(design, num_modalities, num_tokens, features, token_pairs=token_pairs)
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        f"m{i}": torch.randn(batch, features, generator=gen).to(device)
        for i in range(num_modalities)
    }
    labels = torch.randint(0, 2, (batch,), generator=gen).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            if design in ("amc", "amc_core"):
                out = model(inputs, fuse=True)
                loss = classification_loss(out.logits.float(), labels)
                loss = loss + AUX_WEIGHT * sum(v.float() for v in out.aux_losses.values())
            else:
                loss = classification_loss(model(inputs).float(), labels)
        loss.backward()
        optimizer.step()

    patch = _without_contrastive_losses() if design == "amc_core" else contextlib.nullcontext()
    with patch:
        for _ in range(warmup):
            step()
        # Start the measured step as every step starts: gradients freed (the first op of step()).
        optimizer.zero_grad(set_to_none=True)
        resident = [p.detach() for p in model.parameters()] + _optimizer_tensors(optimizer)
        resident += [*inputs.values(), labels]
        peak = peak_memory(step, device, resident)
        seconds, timed = time_call(step, device, 0, repeats, budget_s)
    return {
        "step_s": seconds,
        "steps_per_s": 1.0 / seconds,
        "peak_mem_bytes": peak,
        "peak_mem_mib": peak / 2**20,
        "timed_steps": timed,
        "params": sum(p.numel() for p in model.parameters()),
    }


def measure_fusion(
    batch: int,
    num_modalities: int,
    num_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None,
    warmup: int,
    repeats: int,
    budget_s: float,
    seed: int = 0,
) -> dict[str, float]:
    """Fusion step alone vs one improved block, both forward + backward on (B, M, N, D) tokens."""
    b, m, n, d = batch, num_modalities, num_tokens, SHARED["hidden"]
    torch.manual_seed(seed)
    block = ImprovedBlock(d, SHARED["heads"], experts=SHARED["experts"], top_k=SHARED["top_k"])
    block = block.to(device).train()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, m, n, d, generator=gen).to(device).requires_grad_(True)
    attn = torch.randn(b, m, n, n, generator=gen).softmax(dim=-1).to(device)
    present = torch.ones(b, m, dtype=torch.bool, device=device)
    grad = torch.ones(b, m, n, d, device=device)

    def fusion() -> None:
        with autocast(device, dtype):
            scores = token_scores(attn)
            importance = modality_importance(scores, present)
            x_new, _ = replace_uninformative_tokens(x, scores, importance, present)
        x_new.backward(grad.to(x_new.dtype))

    def block_step() -> None:
        with autocast(device, dtype):
            out, _, balance = block(x.view(b * m, n, d))
        torch.autograd.backward([out, balance], [grad.view_as(out).to(out.dtype), None])

    def both() -> None:
        fusion()
        block_step()

    # Both calls take milliseconds: time more of them than training steps so that the median
    # shrugs off the time slices other processes take.
    repeats = max(repeats, FUSION_MIN_REPEATS)
    fusion_s, _ = time_call(fusion, device, warmup + 1, repeats, budget_s / 2)
    block_s, _ = time_call(block_step, device, warmup + 1, repeats, budget_s / 2)
    ratio = fusion_s / block_s
    return {
        "fusion_s": fusion_s,
        "block_s": block_s,
        "ratio": ratio,
        "goal_met": ratio < FUSION_GOAL,
    }


def run_benchmark(
    datasets: list[str],
    num_modalities: list[int],
    num_tokens: list[int],
    features: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    budget_s: float,
    threads: int,
    seed: int = 0,
) -> dict:
    """Run the whole grid; returns the JSON-ready result (see :func:`main`)."""
    dtype = autocast_dtype(device, "auto")
    grid = list(itertools.product(datasets, num_tokens, num_modalities))
    results: list[dict] = []
    fusion: list[dict] = []
    hidden = SHARED["hidden"]
    bar = tqdm(total=len(grid) * (len(DESIGNS) + 1), desc="throughput", disable=None)
    for dataset, n, m in grid:
        batch = DATASETS[dataset]["batch"]
        for design in DESIGNS:
            bar.set_postfix_str(f"{dataset} {design} M={m} N={n}")
            row: dict = {"dataset": dataset, "batch": batch, "m": m, "n": n, "design": design}
            row["attn_flops"] = attention_flops(design, m, n, hidden)
            try:
                row.update(
                    measure_training_step(
                        design,
                        batch,
                        m,
                        n,
                        features,
                        device,
                        dtype,
                        warmup,
                        repeats,
                        budget_s,
                        seed,
                    )
                )
            except (RuntimeError, MemoryError) as err:  # out of memory: record, keep going
                logger.warning("%s %s M=%d N=%d failed: %s", dataset, design, m, n, err)
                row["error"] = str(err).splitlines()[0][:200]
            logger.info("%s", row)
            results.append(row)
            bar.update()
        bar.set_postfix_str(f"{dataset} fusion M={m} N={n}")
        fusion.append(
            {
                "dataset": dataset,
                "batch": batch,
                "m": m,
                "n": n,
                **measure_fusion(batch, m, n, device, dtype, warmup, repeats, budget_s, seed),
            }
        )
        bar.update()
    bar.close()

    growth = []
    for dataset, n, design in itertools.product(datasets, num_tokens, DESIGNS):
        rows = [
            r
            for r in results
            if (r["dataset"], r["n"], r["design"]) == (dataset, n, design) and "step_s" in r
        ]
        exponent = growth_exponent([r["m"] for r in rows], [r["step_s"] for r in rows])
        growth.append(
            {
                "dataset": dataset,
                "n": n,
                "design": design,
                "exponent": exponent,
                "points": len(rows),
            }
        )
    ratios = [f["ratio"] for f in fusion]
    return {
        "meta": {
            "device": str(device),
            "autocast": str(dtype).replace("torch.", "") if dtype else "fp32",
            "threads": threads,
            "torch": torch.__version__,
            "warmup": warmup,
            "repeats": repeats,
            "budget_s": budget_s,
            "features": features,
            "seed": seed,
            "shared": dict(SHARED),
            "datasets": {k: DATASETS[k] for k in datasets},
            "grid": {"num_modalities": num_modalities, "num_tokens": num_tokens},
            "memory_method": (
                "torch.cuda.max_memory_allocated over one step"
                if device.type == "cuda"
                else "resident tensor bytes (params, AdamW state, batch) + peak net CPU allocator "
                "bytes during one step from torch.profiler allocation events"
            ),
            "attn_flops": "per sample and layer: amc M*N^2*D, concat (M*N)^2*D",
        },
        "results": results,
        "fusion": fusion,
        "growth": growth,
        "summary": {
            "fusion_ratio_max": max(ratios) if ratios else float("nan"),
            "fusion_ratio_median": statistics.median(ratios) if ratios else float("nan"),
            "fusion_goal": FUSION_GOAL,
            "fusion_goal_met": bool(ratios) and max(ratios) < FUSION_GOAL,
        },
    }


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def markdown_tables(report: dict) -> str:
    """The result as markdown: one row per (dataset, M, N), then growth exponents."""
    by_key = {(r["dataset"], r["m"], r["n"], r["design"]): r for r in report["results"]}
    fusion = {(f["dataset"], f["m"], f["n"]): f for f in report["fusion"]}
    nan = float("nan")
    lines = [
        "| dataset | B | M | N | attn FLOPs AMC M·N²·D | concat (MN)²·D "
        "| steps/s amc | amc_core | concat | peak MiB amc | amc_core | concat "
        "| concat/amc_core time | concat/amc_core mem | fusion/block |",
        "|" + "---|" * 15,
    ]
    for (dataset, m, n), f in fusion.items():
        rows = [by_key[(dataset, m, n, d)] for d in DESIGNS]
        core, concat = rows[1], rows[2]
        time_ratio = concat.get("step_s", nan) / core.get("step_s", nan)
        mem_ratio = concat.get("peak_mem_bytes", nan) / core.get("peak_mem_bytes", nan)
        lines.append(
            f"| {dataset} | {f['batch']} | {m} | {n} | {rows[0]['attn_flops']:,} "
            f"| {concat['attn_flops']:,} | "
            + " | ".join(_fmt(r.get("steps_per_s"), ".2f") for r in rows)
            + " | "
            + " | ".join(_fmt(r.get("peak_mem_mib"), ".0f") for r in rows)
            + f" | {_fmt(time_ratio, '.2f')}x | {_fmt(mem_ratio, '.2f')}x"
            + f" | {f['ratio'] * 100:.1f}% |"
        )
    lines += [
        "",
        "Growth exponent in M (log-log slope of step time vs M at fixed N; "
        "goal: AMC ~1, concat ~2 at the largest N):",
        "",
        "| dataset | N | amc | amc_core | concat |",
        "|---|---|---|---|---|",
    ]
    growth = {(g["dataset"], g["n"], g["design"]): g["exponent"] for g in report["growth"]}
    for dataset, n in dict.fromkeys((g["dataset"], g["n"]) for g in report["growth"]):
        lines.append(
            f"| {dataset} | {n} | "
            + " | ".join(_fmt(growth[(dataset, n, d)], ".2f") for d in DESIGNS)
            + " |"
        )
    s = report["summary"]
    lines += [
        "",
        f"Fusion step / improved block (fwd+bwd): median {s['fusion_ratio_median'] * 100:.1f}%, "
        f"max {s['fusion_ratio_max'] * 100:.1f}% (goal < {s['fusion_goal'] * 100:.0f}%: "
        f"{'met' if s['fusion_goal_met'] else 'NOT met'}).",
    ]
    return "\n".join(lines)


PAIR_GRID = {"num_modalities": [2, 4, 8, 12], "num_tokens": [16]}


def run_pair_schemes(
    schemes: list[str],
    datasets: list[str],
    num_modalities: list[int],
    num_tokens: list[int],
    features: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    budget_s: float,
    seed: int = 0,
) -> dict:
    """``--token-pairs``: full AMC training step (L_I + L_T included) per L_T pair scheme.

    Returns ``{"results": [...], "growth": [...]}``; each result row holds dataset, batch, m, n,
    scheme, pairs (modality pairs L_T sums over) and the fields of
    :func:`measure_training_step` (or ``error``); growth: exponent in M per dataset, N, scheme.
    """
    from amc.model.losses import modality_pairs

    dtype = autocast_dtype(device, "auto")
    results: list[dict] = []
    grid = list(itertools.product(datasets, num_tokens, num_modalities, schemes))
    for dataset, n, m, scheme in tqdm(grid, desc="token pairs", disable=None):
        batch = DATASETS[dataset]["batch"]
        row: dict = {"dataset": dataset, "batch": batch, "m": m, "n": n, "scheme": scheme}
        row["pairs"] = len(modality_pairs(m, scheme))
        try:
            row.update(
                measure_training_step(
                    "amc", batch, m, n, features, device, dtype, warmup, repeats, budget_s,
                    seed, token_pairs=scheme,
                )
            )  # fmt: skip
        except (RuntimeError, MemoryError) as err:
            row["error"] = str(err).splitlines()[0][:200]
        logger.info("%s", row)
        results.append(row)
    growth = []
    for dataset, n, scheme in itertools.product(datasets, num_tokens, schemes):
        rows = [
            r
            for r in results
            if (r["dataset"], r["n"], r["scheme"]) == (dataset, n, scheme) and "step_s" in r
        ]
        growth.append(
            {
                "dataset": dataset,
                "n": n,
                "scheme": scheme,
                "exponent": growth_exponent([r["m"] for r in rows], [r["step_s"] for r in rows]),
                "points": len(rows),
            }
        )
    return {"results": results, "growth": growth}


def pair_scheme_tables(report: dict) -> str:
    """Markdown for :func:`run_pair_schemes`: one row per (dataset, N, M), then exponents."""
    schemes = list(dict.fromkeys(r["scheme"] for r in report["results"]))
    by_key = {(r["dataset"], r["n"], r["m"], r["scheme"]): r for r in report["results"]}
    lines = [
        "| dataset | B | N | M | "
        + " | ".join(f"pairs {s} | steps/s {s} | peak MiB {s}" for s in schemes)
        + " |",
        "|" + "---|" * (4 + 3 * len(schemes)),
    ]
    for dataset, n, m in dict.fromkeys((r["dataset"], r["n"], r["m"]) for r in report["results"]):
        rows = [by_key[(dataset, n, m, s)] for s in schemes]
        cells = [
            f"{r['pairs']} | {_fmt(r.get('steps_per_s'), '.2f')} | "
            f"{_fmt(r.get('peak_mem_mib'), '.0f')}"
            for r in rows
        ]
        lines.append(f"| {dataset} | {rows[0]['batch']} | {n} | {m} | " + " | ".join(cells) + " |")
    lines += ["", "Growth exponent in M of the step time (log-log slope):", ""]
    lines += ["| dataset | N | " + " | ".join(schemes) + " |", "|" + "---|" * (2 + len(schemes))]
    growth = {(g["dataset"], g["n"], g["scheme"]): g["exponent"] for g in report["growth"]}
    for dataset, n in dict.fromkeys((g["dataset"], g["n"]) for g in report["growth"]):
        cells = [_fmt(growth[(dataset, n, s)], ".2f") for s in schemes]
        lines.append(f"| {dataset} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, few repeats (< 60 s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--num-modalities", type=int, nargs="+", help="M grid (default 2 3 4 8)")
    parser.add_argument("--num-tokens", type=int, nargs="+", help="N grid (default 16 32 64)")
    parser.add_argument("--features", type=int, default=256, help="features per modality")
    parser.add_argument(
        "--warmup", type=int, default=1, help="plain warm-up steps before the profiled one"
    )
    parser.add_argument("--repeats", type=int, help="timed steps at most (default 5, quick 3)")
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds of timing per configuration after which no further "
        "step is timed (at least one is; default 15, quick 2)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: 1 on CPU, where more threads on a "
        "shared machine make OpenMP spin and time the contention; torch's default on CUDA)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--token-pairs",
        nargs="+",
        choices=["all", "ring"],
        help="instead of the design comparison: AMC's full training step per L_T pair scheme "
        "(loss.token_pairs) over M (default M grid 2 4 8 12, N 16)",
    )
    _side_by_side().add_arguments(parser)
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else FULL_GRID
    if args.token_pairs and not args.quick:
        grid = PAIR_GRID
    args.num_modalities = args.num_modalities or grid["num_modalities"]
    args.num_tokens = args.num_tokens or grid["num_tokens"]
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.budget is None:
        args.budget = 2.0 if args.quick else 15.0
    if (
        min(args.num_modalities) < 2
        or min(args.num_tokens) < 1
        or args.repeats < 1
        or args.warmup < 0
    ):
        parser.error("need M >= 2 (fusion needs two modalities), N >= 1 and --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the markdown table, write the JSON; returns the report.

    JSON keys: ``meta`` (device, threads, settings, memory method), ``results`` (one row per
    dataset, M, N, design: step_s, steps_per_s, peak_mem_bytes, peak_mem_mib, attn_flops, params,
    timed_steps, or ``error``), ``fusion`` (fusion_s, block_s, ratio, goal_met per dataset, M, N),
    ``growth`` (exponent per dataset, N, design) and ``summary``.
    """
    args = parse_args(argv)
    if args.against:
        return _run_side_by_side(args)
    device = select_device(args.device)
    previous_threads = torch.get_num_threads()
    threads = args.threads or (1 if device.type == "cpu" else previous_threads)
    torch.set_num_threads(threads)
    print(f"device={device} torch.set_num_threads({threads}) torch={torch.__version__}")
    if args.token_pairs:
        return _main_pair_schemes(args, device, threads, previous_threads)
    try:
        report = run_benchmark(
            args.datasets,
            args.num_modalities,
            args.num_tokens,
            args.features,
            device,
            args.warmup,
            args.repeats,
            args.budget,
            threads,
            args.seed,
        )
    finally:
        torch.set_num_threads(previous_threads)
    report["meta"]["quick"] = args.quick
    print(markdown_tables(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


def _main_pair_schemes(
    args: argparse.Namespace, device: torch.device, threads: int, previous_threads: int
) -> dict:
    try:
        report = run_pair_schemes(
            args.token_pairs,
            args.datasets,
            args.num_modalities,
            args.num_tokens,
            args.features,
            device,
            args.warmup,
            args.repeats,
            args.budget,
            args.seed,
        )
    finally:
        torch.set_num_threads(previous_threads)
    report["meta"] = {"device": str(device), "threads": threads, "torch": torch.__version__}
    report["meta"].update(features=args.features, repeats=args.repeats, budget_s=args.budget)
    print(pair_scheme_tables(report))
    out = args.out if args.out != DEFAULT_OUT else DEFAULT_OUT.with_name("token_pairs.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return report


def _side_by_side():
    """``benchmarks/side_by_side.py``, loaded by path (this file also runs as a script)."""
    import importlib.util

    path = Path(__file__).resolve().with_name("side_by_side.py")
    spec = importlib.util.spec_from_file_location("amc_side_by_side", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_side_by_side(args: argparse.Namespace) -> dict:
    """``--against REV``: this tree vs REV at the reference and Table 7 shapes (see that file)."""
    device = select_device(args.device).type
    out = args.out if args.out != DEFAULT_OUT else _side_by_side().DEFAULT_OUT
    return _side_by_side().run(
        args.against,
        args.shapes,
        args.rounds,
        args.steps,
        warmup=max(args.warmup, 1),
        threads=args.threads or 1,
        device=device,
        clock=args.clock,
        seed=args.seed,
        out=out,
        tree_optimizer=not args.default_optimizer,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(0 if main() else 1)
