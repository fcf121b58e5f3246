"""WSI extraction throughput and peak memory vs the patch encoder alone.

Scenarios (each in a fresh Python process, so peak RSS is per scenario):

- ``encoder``: the patch encoder on N in-memory uint8 patches (the reference),
- ``pipeline-small``: :func:`amc.wsi.extract_slide_features` on a small slide,
- ``pipeline-large``: the same on a slide of at least 40,000 x 40,000 pixels,

all with the same encoder, batch size and number of patches N (``max_patches``). The large
slide is generated tile by tile (never in memory) and cached in ``benchmarks/results/cache``.
Reports patches/s, the pipeline / encoder throughput ratio, the encoder-busy fraction of the
pipeline (time inside the encoder's forward pass / wall time; on CUDA measured with
synchronisation, i.e. the GPU-busy fraction) and the peak RSS of the main process and of the
patch-reading workers; the large / small RSS ratio shows that memory does not grow with the
slide's size.

``--encoders resnet50_trunc,uni_v1,conch_v1`` compares registered encoders instead (encoder
alone vs the pipeline on the small slide, random weights written to the cache folder once).

Usage::

    python benchmarks/wsi_throughput.py            # 40k vs 12k slides, N = 512
    python benchmarks/wsi_throughput.py --quick    # 12k vs 4k slides, N = 64
    python benchmarks/wsi_throughput.py --quick --encoders efficientnet-lite0,resnet50_trunc
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- slide synthesis


def _textures(n: int = 16, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Tissue texture tiles (n, size, size, 3) cut from synthetic renders, and a background."""
    from amc.synthetic.tcga import _SlideSpec, render_slide

    tiles = []
    seed = 0
    while len(tiles) < n:
        img = render_slide(
            _SlideSpec("x", seed, 1536, 1536, float(seed % 5 - 2), (236, 160, 196), "none", 0.0)
        )
        for y in range(0, 1536 - size + 1, size):
            for x in range(0, 1536 - size + 1, size):
                crop = img[y : y + size, x : x + size]
                if crop.mean() < 215 and len(tiles) < n:
                    tiles.append(crop.copy())
        seed += 1
    background = np.full((size, size, 3), (243, 242, 244), np.uint8)
    return np.stack(tiles), background


def make_slide(path: Path, side: int) -> Path:
    """Write (or reuse) a ``side`` x ``side`` pyramidal slide with a few tissue ellipses."""
    from amc.synthetic.tcga import write_pyramid_tiff_tiled

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    textures, background = _textures()
    ellipses = np.array([[0.35, 0.4, 0.22, 0.3], [0.68, 0.62, 0.2, 0.25], [0.5, 0.85, 0.3, 0.08]])
    ellipses *= np.array([side, side, side, side])

    def tile_fn(ds: int, x: int, y: int, size: int) -> np.ndarray:
        xs = x + (np.arange(size) + 0.5) * ds
        ys = y + (np.arange(size) + 0.5) * ds
        inside = np.zeros((size, size), bool)
        for cx, cy, rx, ry in ellipses:
            inside |= ((xs[None, :] - cx) / rx) ** 2 + ((ys[:, None] - cy) / ry) ** 2 <= 1
        if not inside.any():
            return background
        k = zlib.crc32(f"{ds},{x},{y}".encode()) % len(textures)
        if inside.all():
            return textures[k]
        return np.where(inside[..., None], textures[k], background)

    tmp = path.with_suffix(".partial.tif")
    write_pyramid_tiff_tiled(tmp, side, side, tile_fn, mpp=0.5, app_mag=20)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- scenarios


def _peak_rss_mb() -> tuple[float, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024.0, child_kb / 1024.0


def random_weights(name: str) -> Path | None:
    """A cached random-weight state dict with the public key layout of encoder ``name``."""
    import torch

    from amc.wsi import REGISTRY

    if name == "efficientnet-lite0" or name not in REGISTRY:
        return None  # bundled weights, or a TorchScript path
    path = RESULTS / "cache" / "weights" / f"{name}.pt"
    if not path.is_file():
        torch.manual_seed(0)
        path.parent.mkdir(parents=True, exist_ok=True)
        module = REGISTRY[name].build()
        if name == "conch_v1":  # the checkpoint nests the tower under visual.
            state = {f"visual.{k}": v for k, v in module.state_dict().items()}
        else:
            state = module.state_dict()
        torch.save(state, path)
    return path


class _Timed:
    """Wraps a module's forward and adds up the time spent in it (synchronised on CUDA)."""

    def __init__(self, module, device) -> None:
        import torch

        self.module, self.device, self.seconds = module, device, 0.0
        self._sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def __call__(self, x):
        self._sync()
        start = time.perf_counter()
        out = self.module(x)
        self._sync()
        self.seconds += time.perf_counter() - start
        return out


def run_scenario(args: argparse.Namespace) -> dict:
    import torch

    from amc.wsi import extract_slide_features, load_patch_encoder

    torch.manual_seed(0)
    encoder = load_patch_encoder(
        args.encoder, device=args.device, weights=random_weights(args.encoder)
    )
    timed = _Timed(encoder.module, encoder.preprocess["device"])
    encoder = encoder._replace(module=timed)
    rss_after_load, _ = _peak_rss_mb()
    n = args.patches
    if args.scenario == "encoder":
        rng = np.random.default_rng(0)
        patches = torch.from_numpy(
            rng.integers(0, 256, (n, args.patch_size, args.patch_size, 3), dtype=np.uint8)
        )
        encoder.encode(patches[: min(n, args.batch_size)])  # warm-up, as the pipeline's probe
        timed.seconds = 0.0
        start = time.perf_counter()
        for i in range(0, n, args.batch_size):
            encoder.encode(patches[i : i + args.batch_size])
        elapsed = time.perf_counter() - start
        done = n
    else:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = extract_slide_features(
                {"bench": [args.slide]},
                Path(out),
                encoder,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                target_mpp=0.5,
                patch_size=args.patch_size,
                max_patches=n,
                seed=0,
                show_progress=False,
            )
            elapsed = time.perf_counter() - start
        done = summary["patches"]
    rss_self, rss_children = _peak_rss_mb()
    return {
        "scenario": args.scenario,
        "patches": int(done),
        "seconds": elapsed,
        "patches_per_s": done / elapsed,
        "peak_rss_main_mb": rss_self,
        "peak_rss_workers_mb": rss_children,
        "rss_after_encoder_load_mb": rss_after_load,
        "encoder": encoder.info.get("name"),
        "device": str(encoder.preprocess["device"]),
        "busy_fraction": min(1.0, timed.seconds / elapsed),
    }


def _spawn(args: argparse.Namespace, scenario: str, slide: Path | None) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--scenario",
        scenario,
        "--patches",
        str(args.patches),
        "--batch-size",
        str(args.batch_size),
        "--num-workers",
        str(args.num_workers),
        "--encoder",
        args.encoder,
        "--device",
        args.device,
        "--patch-size",
        str(args.patch_size),
    ]
    if slide is not None:
        cmd += ["--slide", str(slide)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"scenario {scenario} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small run (12k vs 4k slides, 64 patches)"
    )
    parser.add_argument("--large", type=int, default=None, help="large slide side (px)")
    parser.add_argument("--small", type=int, default=None, help="small slide side (px)")
    parser.add_argument("--patches", type=int, default=None, help="patches per scenario")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--patch-size", type=int, default=256)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument(
        "--encoders", default=None, help="comma-separated registered encoders to compare"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS / "wsi_throughput.json")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--slide", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.scenario:  # child process: one scenario, JSON on the last stdout line
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(run_scenario(args)))
        return

    if args.encoders:
        compare_encoders(args)
        return
    large = args.large or (12_000 if args.quick else 40_000)
    small = args.small or (4096 if args.quick else 12_000)  # >= N tissue patches
    args.patches = args.patches or (64 if args.quick else 512)
    cache = RESULTS / "cache"
    t0 = time.perf_counter()
    large_slide = make_slide(cache / f"bench_{large}.tif", large)
    small_slide = make_slide(cache / f"bench_{small}.tif", small)
    print(
        f"slides ready in {time.perf_counter() - t0:.1f} s "
        f"({large_slide.stat().st_size / 2**20:.0f} MiB large, "
        f"{small_slide.stat().st_size / 2**20:.1f} MiB small)",
        file=sys.stderr,
    )

    rows = [
        {**_spawn(args, "encoder", None), "slide_px": None},
        {**_spawn(args, "pipeline-small", small_slide), "slide_px": small},
        {**_spawn(args, "pipeline-large", large_slide), "slide_px": large},
    ]
    for r in rows[1:]:
        if r["patches"] != args.patches:
            raise SystemExit(
                f"{r['scenario']}: only {r['patches']} tissue patches, not {args.patches}; "
                "use a larger --small / --large slide or fewer --patches"
            )
    ref = rows[0]["patches_per_s"]
    for r in rows:
        r["throughput_ratio_vs_encoder"] = r["patches_per_s"] / ref
    rss_ratio = rows[2]["peak_rss_main_mb"] / rows[1]["peak_rss_main_mb"]
    worker_ratio = (
        rows[2]["peak_rss_workers_mb"] / rows[1]["peak_rss_workers_mb"]
        if rows[1]["peak_rss_workers_mb"]
        else None
    )

    header = (
        f"{'scenario':<16}{'slide px':>10}{'patches':>9}{'patch/s':>10}{'ratio':>8}"
        f"{'RSS main MB':>13}{'RSS workers MB':>16}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        px = f"{r['slide_px']:,}" if r["slide_px"] else "in-memory"
        print(
            f"{r['scenario']:<16}{px:>10}{r['patches']:>9}{r['patches_per_s']:>10.1f}"
            f"{r['throughput_ratio_vs_encoder']:>8.2f}{r['peak_rss_main_mb']:>13.0f}"
            f"{r['peak_rss_workers_mb']:>16.0f}"
        )
    print(
        f"peak RSS large / small slide: main {rss_ratio:.2f}"
        + (f", workers {worker_ratio:.2f}" if worker_ratio else "")
    )

    result = {
        "rows": rows,
        "rss_ratio_large_vs_small_main": rss_ratio,
        "rss_ratio_large_vs_small_workers": worker_ratio,
        "settings": {
            "batch_size": args.batch_size,
            "num_workers": args.num_workers,
            "patches": args.patches,
            "patch_size": args.patch_size,
            "encoder": args.encoder,
            "large_px": large,
            "small_px": small,
            "quick": args.quick,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


def compare_encoders(args: argparse.Namespace) -> None:
    """Encoder alone vs the pipeline on the small slide, per registered encoder."""
    small = args.small or (4096 if args.quick else 12_000)
    args.patches = args.patches or (64 if args.quick else 512)
    slide = make_slide(RESULTS / "cache" / f"bench_{small}.tif", small)
    rows = []
    for name in args.encoders.split(","):
        args.encoder = name
        random_weights(name)  # written once, outside the timed scenarios
        ref = _spawn(args, "encoder", None)
        pipe = _spawn(args, "pipeline-small", slide)
        pipe["throughput_ratio_vs_encoder"] = pipe["patches_per_s"] / ref["patches_per_s"]
        rows += [ref, pipe]
        print(
            f"{name:<20}{pipe['device']:>6}  encoder {ref['patches_per_s']:8.1f} patch/s  "
            f"pipeline {pipe['patches_per_s']:8.1f} patch/s  ratio "
            f"{pipe['throughput_ratio_vs_encoder']:.2f}  busy {pipe['busy_fraction']:.2f}"
        )
    out = args.out.with_name("wsi_throughput_encoders.json")
    settings = {"patches": args.patches, "batch_size": args.batch_size, "small_px": small}
    out.write_text(json.dumps({"rows": rows, "settings": settings}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
