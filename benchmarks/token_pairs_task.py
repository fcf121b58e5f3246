"""Task metric of the two L_T pair schemes (``loss.token_pairs: all | ring``) on a synthetic
cohort with many modalities, where the schemes differ (M >= 4).

Each of ``--modalities`` vector modalities is a noisy linear view of a shared latent that sets
the binary label (the importance study's generator, ``benchmarks/importance_validity.py``, with
no corruption). Per seed: the project's split, one AMC training per scheme (same settings), test
macro-F1 / AUROC and training wall time. Prints mean ± std over seeds (ddof=0) and writes JSON.

Usage::

    python benchmarks/token_pairs_task.py [--modalities 6] [--seeds 0 1 2] [--epochs 10]
        [--out benchmarks/results/token_pairs_task.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amc.data.cohort import Cohort  # noqa: E402
from amc.data.splits import make_splits  # noqa: E402
from amc.evaluation.metrics import classification_metrics  # noqa: E402
from amc.inference import predict  # noqa: E402
from amc.training.loop import train_model  # noqa: E402
from benchmarks.importance_validity import MODEL, StudyConfig, _settings, make_clean  # noqa: E402


def run(modalities: int, seeds: list[int], epochs: int, n_patients: int) -> dict:
    cfg = replace(StudyConfig(), n_patients=n_patients, dims=(32,) * modalities, epochs=epochs)
    rows = []
    for seed in seeds:
        clean = make_clean(seed, cfg)
        names = [f"m{i}" for i in range(modalities)]
        cohort = Cohort(
            patient_ids=clean["ids"],
            modalities=names,
            features={
                n: (s + e).astype(np.float32)
                for n, s, e in zip(names, clean["signal"], clean["noise"], strict=True)
            },
            present=np.ones((n_patients, modalities), dtype=bool),
            task="classification",
            labels=clean["labels"],
            class_names=["0", "1"],
        )
        split = make_splits(clean["ids"], clean["labels"], [seed])["split"].to_numpy(dtype=str)
        test = split == "test"
        for scheme in ("all", "ring"):
            start = time.perf_counter()
            ckpt = train_model(
                cohort, split, {**MODEL, "token_pairs": scheme}, _settings(cfg), seed=seed
            )
            seconds = time.perf_counter() - start
            prob = predict(ckpt, cohort, device="cpu", precision="fp32")["prob"]
            m = classification_metrics(cohort.labels[test], prob[test])
            rows.append({"seed": seed, "scheme": scheme, "f1": m["f1"], "auroc": m["auroc"],
                         "train_s": seconds})  # fmt: skip
            print(rows[-1], flush=True)
    summary = {}
    for scheme in ("all", "ring"):
        sel = [r for r in rows if r["scheme"] == scheme]
        summary[scheme] = {
            k: (float(np.mean([r[k] for r in sel])), float(np.std([r[k] for r in sel])))
            for k in ("f1", "auroc", "train_s")
        }
    return {"modalities": modalities, "seeds": seeds, "epochs": epochs, "rows": rows,
            "summary": summary}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modalities", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patients", type=int, default=600)
    out = Path("benchmarks/results/token_pairs_task.json")
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args(argv)
    report = run(args.modalities, args.seeds, args.epochs, args.patients)
    print("| L_T pairs | test F1 | test AUROC | train s (ratio in one run) |")
    print("|---|---|---|---|")
    for scheme, s in report["summary"].items():
        print(f"| {scheme} | {s['f1'][0]:.3f} ± {s['f1'][1]:.3f} | {s['auroc'][0]:.3f} ± "
              f"{s['auroc'][1]:.3f} | {s['train_s'][0]:.1f} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
