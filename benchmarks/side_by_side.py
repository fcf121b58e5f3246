"""Side-by-side training-step throughput of this tree against an earlier git revision.

``python benchmarks/model_throughput.py --against <git-rev>`` (or this file directly) checks the
revision out into a temporary ``git worktree``, starts one worker process per tree (each imports
``amc`` from its own tree only, through ``PYTHONPATH``) and then alternates them: per round and
shape each worker times ``--steps`` training steps in turn, the order flipping every round, so
both see the same machine load. The speed-up is a ratio from one run: the median over rounds of
(base step time / this tree's step time), with the range over rounds.

A step is forward + backward + optimizer step of :class:`amc.model.AMC` on random vector
modalities, loss = task loss + ``AUX_WEIGHT`` x the sum of the auxiliary losses. Shapes:

- ``reference``: B=64, N=32, hidden 64, 8 heads, 2 improved blocks, 4 encoder layers, 8 experts
  top-2, three vector modalities of 768 / 768 / 790 features, fusion on, Adam.
- ``t7-*``: the paper's Table 7 settings (hidden, batch, improved blocks) with the project's
  default tokens (16) and encoder layers (1), three modalities of 256 features, AdamW.

Only the workers' step loop (``_worker``) runs under the other revision, and it uses only
``AMC``, ``AMCConfig`` and ``classification_loss``, which every revision has. The optimizer is
each tree's own choice: the arguments of ``amc.runtime.optimizer_options`` (the fused kernel)
where the tree has it, torch's defaults otherwise; ``--default-optimizer`` gives both trees
torch's defaults, isolating the model's share of a speed-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

AUX_WEIGHT = 0.1
REFERENCE = {
    "batch": 64,
    "tokens": 32,
    "hidden": 64,
    "heads": 8,
    "layers": 2,
    "encoder_layers": 4,
    "experts": 8,
    "top_k": 2,
    "features": [768, 768, 790],
    "optimizer": "adam",
}
# Table 7 (paper appendix B): (hidden, batch, improved blocks) per dataset group.
TABLE7 = {
    "t7-adni": (64, 32, 2),
    "t7-mimic-tcga": (64, 64, 2),
    "t7-ucec": (128, 64, 2),
    "t7-enrico": (128, 128, 4),
}
DEFAULT_OUT = Path("benchmarks/results/side_by_side.json")


def shapes(names: list[str] | None = None) -> dict[str, dict]:
    """The benchmark shapes by name (all when ``names`` is None)."""
    table = {"reference": dict(REFERENCE)}
    for name, (hidden, batch, layers) in TABLE7.items():
        table[name] = {
            **REFERENCE,
            "batch": batch,
            "tokens": 16,
            "hidden": hidden,
            "layers": layers,
            "encoder_layers": 1,
            "features": [256, 256, 256],
            "optimizer": "adamw",
        }
    if names is None:
        return table
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; choose from {sorted(table)}")
    return {n: table[n] for n in names}


def _build(shape: dict, seed: int, device):
    """Model, optimizer, inputs and labels of one shape (imports ``amc`` of the running tree)."""
    import torch

    from amc.model import AMC, AMCConfig

    torch.manual_seed(seed)
    mods = {f"m{i}": f for i, f in enumerate(shape["features"])}
    sizes = {k: shape[k] for k in ("tokens", "hidden", "heads", "layers", "encoder_layers")}
    config = AMCConfig(
        modalities=mods, num_classes=2, experts=shape["experts"], top_k=shape["top_k"], **sizes
    )
    model = AMC(config).to(device).train()
    opt_cls = torch.optim.Adam if shape["optimizer"] == "adam" else torch.optim.AdamW
    gen = torch.Generator().manual_seed(seed)
    inputs = {k: torch.randn(shape["batch"], f, generator=gen).to(device) for k, f in mods.items()}
    labels = torch.randint(0, 2, (shape["batch"],), generator=gen).to(device)
    options = optimizer_options(device) if shape.get("tree_optimizer", True) else {}
    return model, opt_cls(model.parameters(), lr=1e-3, **options), inputs, labels


def optimizer_options(device) -> dict:
    """The optimizer arguments the running tree's training loop uses (``amc.runtime``), or
    torch's defaults for a revision that predates that choice: the step is the tree's own."""
    try:
        from amc.runtime import optimizer_options as tree_options
    except ImportError:
        return {}
    return tree_options(device)


def _time_steps(state: tuple, device, warmup: int, steps: int, clock=time.perf_counter) -> list:
    """Seconds per training step by ``clock`` (``warmup`` untimed first); bf16 autocast on CUDA."""
    import torch

    from amc.model.losses import classification_loss

    model, optimizer, inputs, labels = state
    cuda = device.type == "cuda"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext():
            out = model(inputs, fuse=True)
            loss = classification_loss(out.logits.float(), labels)
            loss = loss + AUX_WEIGHT * sum(v.float() for v in out.aux_losses.values())
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = clock()
        step()
        times.append(clock() - start)
    return times


def _worker() -> None:
    """Serve timing requests on stdin (one JSON per line), answer on stdout; runs in either tree.

    Request: ``{"shape": {...}, "steps": k, "warmup": w, "threads": t, "device": d, "seed": s,
    "clock": "wall" | "cpu"}``.
    Answer: ``{"times": [seconds per step], "fused_optimizer": bool}``. Models are built once
    per shape and kept (the first request of a shape runs at least one warm-up step).
    """
    import torch

    states: dict[str, tuple] = {}
    for line in sys.stdin:
        req = json.loads(line)
        torch.set_num_threads(req["threads"])
        device = torch.device(req["device"])
        key = json.dumps(req["shape"], sort_keys=True)
        warmup = req["warmup"]
        if key not in states:
            states[key] = _build(req["shape"], req["seed"], device)
            warmup = max(warmup, 1)
        clock = time.process_time if req["clock"] == "cpu" else time.perf_counter
        times = _time_steps(states[key], device, warmup, req["steps"], clock)
        options = states[key][1].defaults.get("fused") or False
        print(json.dumps({"times": times, "fused_optimizer": options}), flush=True)


@contextlib.contextmanager
def revision_tree(repo: Path, rev: str) -> Iterator[Path]:
    """A temporary detached ``git worktree`` of ``rev`` (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="amc-against-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(path), rev],
            check=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "remove", "--force", str(path)], check=False
            )


class Worker:
    """A worker process that imports ``amc`` from ``tree`` only: ``script --worker`` (this file
    by default) answering one JSON line per request line."""

    def __init__(self, tree: Path, script: Path | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
        script = Path(script or __file__).resolve()
        self.proc = subprocess.Popen(
            [sys.executable, "-B", str(script), "--worker"],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict) -> dict:
        """Send one request, wait for its answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker exited with {self.proc.wait()}")
        return json.loads(line)

    def time_steps(self, request: dict) -> list[float]:
        reply = self.ask(request)
        self.fused_optimizer = reply.get("fused_optimizer", False)
        return reply["times"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def revision(repo: Path, rev: str) -> str:
    """``rev``'s short hash."""
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", rev],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def tree_revision(repo: Path) -> str:
    """HEAD's short hash, ``+uncommitted`` when tracked files differ from it."""
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return revision(repo, "HEAD") + ("+uncommitted" if dirty else "")


def write_report(report: dict, out: Path) -> None:
    """``report`` as JSON at ``out`` (written whole, then renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")


def compare(
    base: Path, new: Path, shape_table: dict[str, dict], rounds: int, steps: int, **request
) -> list[dict]:
    """Alternate the two trees' workers over ``rounds``; one result row per shape."""
    workers = {"base": Worker(base), "new": Worker(new)}
    rows = []
    try:
        for name, shape in shape_table.items():
            times: dict[str, list[float]] = {"base": [], "new": []}
            ratios = []
            for r in range(rounds):
                order = ("base", "new") if r % 2 == 0 else ("new", "base")
                medians = {}
                for which in order:
                    t = workers[which].time_steps({"shape": shape, "steps": steps, **request})
                    times[which] += t
                    medians[which] = statistics.median(t)
                ratios.append(medians["base"] / medians["new"])
            rows.append(
                {
                    "shape": name,
                    **shape,
                    "base_steps_per_s": 1.0 / statistics.median(times["base"]),
                    "new_steps_per_s": 1.0 / statistics.median(times["new"]),
                    "speedup": statistics.median(ratios),
                    "speedup_min": min(ratios),
                    "speedup_max": max(ratios),
                    "rounds": rounds,
                    "steps_per_round": steps,
                    "base_fused_optimizer": workers["base"].fused_optimizer,
                    "new_fused_optimizer": workers["new"].fused_optimizer,
                }
            )
            print(_row_markdown(rows[-1]), flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    return rows


def _row_markdown(row: dict) -> str:
    return (
        f"| {row['shape']} | {row['batch']} | {len(row['features'])} | {row['tokens']} "
        f"| {row['hidden']} | {row['layers']} | {row['encoder_layers']} "
        f"| {row['base_steps_per_s']:.2f} | {row['new_steps_per_s']:.2f} "
        f"| {row['speedup']:.2f}x ({row['speedup_min']:.2f}-{row['speedup_max']:.2f}) |"
    )


HEADER = (
    "| shape | B | M | N | hidden | blocks | enc. layers | base steps/s | new steps/s "
    "| speed-up (range over rounds) |\n|" + "---|" * 10
)


def run(
    against: str,
    names: list[str] | None = None,
    rounds: int = 5,
    steps: int = 3,
    *,
    warmup: int = 1,
    threads: int = 1,
    device: str = "cpu",
    clock: str = "auto",
    seed: int = 0,
    out: Path = DEFAULT_OUT,
    tree_optimizer: bool = True,
) -> dict:
    """Benchmark this tree against ``against``; print the markdown table, write JSON.

    ``clock``: ``cpu`` times steps by the worker's process CPU time, which on a shared machine
    leaves out the time spent waiting for a core (single-threaded CPU runs only); ``wall`` by
    wall-clock time; ``auto`` picks ``cpu`` for one CPU thread, else ``wall``.
    """
    if clock == "auto":
        clock = "cpu" if device == "cpu" and threads == 1 else "wall"
    repo = Path(__file__).resolve().parents[1]
    table = shapes(names)
    for shape in table.values():
        shape["tree_optimizer"] = tree_optimizer
    meta = {
        "base": revision(repo, against),
        "new": tree_revision(repo),
        "device": device,
        "threads": threads,
        "clock": clock,
        "rounds": rounds,
        "steps_per_round": steps,
        "warmup": warmup,
        "seed": seed,
    }
    print(
        f"side by side: base {meta['base']} vs this tree {meta['new']} on {device}, "
        f"{threads} thread(s), {clock} clock, {rounds} alternating rounds of {steps} steps"
    )
    print(HEADER)
    request = {"warmup": warmup, "threads": threads, "device": device, "seed": seed}
    request["clock"] = clock
    with revision_tree(repo, against) as base:
        rows = compare(base, repo, table, rounds, steps, **request)
    report = {"meta": meta, "results": rows}
    write_report(report, out)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The side-by-side options (shared with ``model_throughput.py --against``)."""
    parser.add_argument("--against", metavar="GIT_REV", help="compare with this revision")
    parser.add_argument("--shapes", nargs="+", help=f"default: all of {sorted(shapes())}")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per shape")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round and tree")
    parser.add_argument(
        "--clock",
        choices=["auto", "cpu", "wall"],
        default="auto",
        help="step timer: process CPU time (auto with one CPU thread) or wall clock",
    )
    parser.add_argument(
        "--default-optimizer",
        action="store_true",
        help="both trees use torch's default Adam / AdamW (not each tree's own optimizer "
        "options, e.g. the fused kernel): isolates the model's share of a speed-up",
    )


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    add_arguments(parser)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.worker:
        _worker()
        return None
    if not args.against:
        parser.error("--against GIT_REV is required")
    return run(
        args.against,
        args.shapes,
        args.rounds,
        args.steps,
        threads=args.threads,
        device=args.device,
        clock=args.clock,
        out=args.out,
        tree_optimizer=not args.default_optimizer,
    )


if __name__ == "__main__":
    main()
