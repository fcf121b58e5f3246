"""Discharge notes embedded per second by :func:`amc.features.text.embed_texts`.

Notes are synthetic discharge summaries (:mod:`amc.synthetic.mimic`'s generator) concatenated to
``--chars`` characters each (MIMIC-IV-Note discharge summaries average about 10,500 characters,
~2,300 word pieces, i.e. ~10 windows of 256 tokens with stride 32). One warm-up call, then the
median of ``--repeats`` timed calls over ``--notes`` notes. Prints notes/s, windows/s and the
extrapolated time for ``--total`` notes (default 331,793: every MIMIC-IV-Note discharge summary;
only the index admissions' notes are embedded, fewer).

Usage::

    python benchmarks/notes_throughput.py                      # CPU, 1 thread, 16 notes
    python benchmarks/notes_throughput.py --device cuda --notes 256 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_notes(n: int, chars: int, seed: int = 0) -> list[str]:
    from amc.synthetic.mimic import _note_text

    rng = np.random.default_rng(seed)
    notes = []
    for _ in range(n):
        text = ""
        while len(text) < chars:
            text += _note_text(rng, float(rng.normal()), 70, bool(rng.random() < 0.5), True)
        notes.append(text[:chars])
    return notes


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=16)
    ap.add_argument("--chars", type=int, default=10_500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--total", type=int, default=331_793)
    ap.add_argument("--model", default=None, help="local folder or cached hub id (default MiniLM)")
    args = ap.parse_args(argv)

    import torch

    from amc.features.text import _load, _resolve, embed_texts

    torch.set_num_threads(args.threads)
    notes = make_notes(args.notes, args.chars)
    tokenizer, _ = _load(str(_resolve(args.model)), args.device)
    n_tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in notes]
    body = args.max_length - 2 - 32
    windows = int(sum(max(1, -(-(n - 32) // body)) for n in n_tokens))

    def once() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        embed_texts(
            notes, model_path=args.model, batch_size=args.batch_size,
            max_length=args.max_length, device=args.device, show_progress=False,
        )  # fmt: skip
        return time.perf_counter() - start, time.process_time() - cpu

    once()
    timings = [once() for _ in range(args.repeats)]
    secs = statistics.median(t for t, _ in timings)
    # process CPU seconds (all threads): on a shared machine wall time includes waiting for a
    # core; CPU time does not, and with one thread it is the uncontended wall time
    cpu_secs = statistics.median(c for _, c in timings)
    rate = args.notes / secs
    out = {
        "device": args.device, "threads": args.threads, "notes": args.notes,
        "chars": args.chars, "mean_tokens": float(np.mean(n_tokens)), "windows": windows,
        "batch_size": args.batch_size, "max_length": args.max_length,
        "seconds": secs, "cpu_seconds": cpu_secs, "notes_per_s": rate,
        "notes_per_cpu_s": args.notes / cpu_secs, "windows_per_s": windows / secs,
        "load_average": os.getloadavg()[0],
        "extrapolated_hours_total": args.total / rate / 3600, "total": args.total,
    }  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
