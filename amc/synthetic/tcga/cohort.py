"""The synthetic TCGA cohort: per case a latent risk, a clinical record and up to three
modalities (drawn in :mod:`.slides`, :mod:`.reports`, :mod:`.rna`), written in the GDC layout."""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from amc.cores import available_cores
from amc.data.store import atomic_path
from amc.synthetic.tcga.profiles import (
    _BETA,
    _CORRUPTION_CLASS,
    _WEIBULL_SHAPE,
    GDC_MISSING,
    SAMPLE_SHEET_COLUMNS,
    _beta,
    _case_ids,
    _Profile,
    _profile,
    _uuid,
)
from amc.synthetic.tcga.reports import draw_report
from amc.synthetic.tcga.rna import _gene_model, _GeneModel, _RnaSpec, draw_rna, write_star_counts
from amc.synthetic.tcga.slides import _render_and_write_slide, _SlideSpec, draw_slides

log = logging.getLogger("amc.synthetic.tcga")


@dataclass
class _Plan:
    """Everything drawn for the cohort before any file is written."""

    clinical_rows: list[dict] = field(default_factory=list)
    sheet_rows: list[dict] = field(default_factory=list)
    quality_rows: list[dict] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    slide_specs: list[_SlideSpec] = field(default_factory=list)
    rna_specs: list[_RnaSpec] = field(default_factory=list)
    stats: dict[str, int] = field(
        default_factory=lambda: {"cases": 0, "rna_only_cases": 0, "events": 0, "no_usable_time": 0}
    )

    def quality(self, pid: str, mod: str, q: float, corruption: str) -> None:
        self.quality_rows.append(
            {"patient_id": pid, "modality": mod, "quality": round(q, 4), "detail": corruption}
        )


def _draw_clinical(
    plan: _Plan, pid: str, project: str, prof: _Profile, r: float, crng: np.random.Generator
) -> None:
    """A case's GDC clinical rows (one per treatment): Weibull survival, uniform censoring."""
    plan.stats["cases"] += 1
    u = crng.random()
    t = prof.weibull_scale * (-math.log(u) / math.exp(_BETA * r)) ** (1 / _WEIBULL_SHAPE)
    c = crng.uniform(30, prof.censor_max)
    dead = t <= c
    time_ = max(1, int(round(min(t, c))))
    row = {
        "case_id": _uuid(crng),
        "case_submitter_id": pid,
        "project_id": f"TCGA-{project}",
        "age_at_index": int(crng.integers(30, 85)),
        "gender": ["female", "male"][int(crng.integers(0, 2))]
        if project not in ("UCEC", "BRCA")
        else "female",
        "vital_status": "Dead" if dead else "Alive",
        "days_to_death": str(time_) if dead else GDC_MISSING,
        "days_to_last_follow_up": GDC_MISSING if dead else str(time_),
    }
    if dead and crng.random() < 0.3:  # GDC often also fills follow-up for the dead
        row["days_to_last_follow_up"] = str(max(1, time_ - int(crng.integers(0, 60))))
    if crng.random() < 0.02:  # no usable time: dropped by the loader
        row["days_to_death"] = GDC_MISSING
        row["days_to_last_follow_up"] = GDC_MISSING
        plan.stats["no_usable_time"] += 1
    elif dead:
        plan.stats["events"] += 1
    for treatment in ("Pharmaceutical Therapy, NOS", "Radiation Therapy, NOS"):
        plan.clinical_rows.append({**row, "treatment_type": treatment})


def _draw_cohort(
    projects: Sequence[str],
    cases_per_project: int,
    rng: np.random.Generator,
    slide_size: tuple[int, int],
) -> _Plan:
    """Draw every case; each case has its own generator, used in a fixed modality order."""
    plan = _Plan()
    taken: set[str] = set()
    for project in projects:
        prof = _profile(project)
        n_orphans = max(1, cases_per_project // 40)
        ids = _case_ids(rng, project, cases_per_project + n_orphans, taken)
        for k, pid in enumerate(ids):
            orphan = k >= cases_per_project  # RNA only, no clinical record
            crng = np.random.default_rng(int(rng.integers(0, 2**31 - 1)))
            r = float(crng.normal())
            qw, qr, qn = (_beta(crng, m) for m in prof.quality)
            if orphan:
                plan.stats["rna_only_cases"] += 1
            else:
                _draw_clinical(plan, pid, project, prof, r, crng)
            specs, q, corruption = draw_slides(pid, orphan, prof, r, qw, crng, slide_size)
            plan.slide_specs += specs
            plan.quality(pid, "wsi", q, corruption)
            text, q, corruption = draw_report(pid, orphan, project, r, qr, crng)
            if text is not None:
                plan.reports[pid] = text
            plan.quality(pid, "report", q, corruption)
            specs, sheet, q, corruption = draw_rna(pid, orphan, project, r, qn, crng)
            plan.rna_specs += specs
            plan.sheet_rows += sheet
            plan.quality(pid, "rna", q, corruption)
    return plan


def _work(task: tuple[str, object]) -> None:
    kind, spec = task
    if kind == "slide":
        _render_and_write_slide(spec)  # type: ignore[arg-type]
    else:
        write_star_counts(spec, _WORKER_GENES)  # type: ignore[arg-type]


_WORKER_GENES: _GeneModel | None = None


def _init_worker(genes: _GeneModel) -> None:
    global _WORKER_GENES
    _WORKER_GENES = genes


def _write_files(
    plan: _Plan, tmp: Path, genes: _GeneModel, n_jobs: int, show_progress: bool
) -> None:
    """Render the slides and STAR-counts files (in worker processes when ``n_jobs`` > 1)."""
    tasks: list[tuple[str, object]] = []
    for spec in plan.slide_specs:
        (tmp / spec.path).parent.mkdir(parents=True, exist_ok=True)
        tasks.append(("slide", dataclasses.replace(spec, path=str(tmp / spec.path))))
    for spec in plan.rna_specs:
        tasks.append(("rna", dataclasses.replace(spec, path=str(tmp / spec.path))))
    n_jobs = max(1, min(n_jobs, available_cores()))
    bar = tqdm(
        total=len(tasks),
        desc="synthetic TCGA files",
        unit="file",
        disable=None if show_progress else True,
    )
    if n_jobs == 1:
        _init_worker(genes)
        for task in tasks:
            _work(task)
            bar.update(1)
    else:
        with ProcessPoolExecutor(n_jobs, initializer=_init_worker, initargs=(genes,)) as ex:
            for _ in ex.map(_work, tasks, chunksize=8):
                bar.update(1)
    bar.close()


def _write_tables(plan: _Plan, tmp: Path, seed: int, projects: Sequence[str]) -> None:
    """Reports, clinical.tsv, the sample sheet, quality.csv and README.txt."""
    for pid, text in sorted(plan.reports.items()):
        (tmp / "reports" / f"{pid}.txt").write_text(text)
    pd.DataFrame(plan.clinical_rows).to_csv(tmp / "clinical.tsv", sep="\t", index=False)
    pd.DataFrame(plan.sheet_rows, columns=list(SAMPLE_SHEET_COLUMNS)).to_csv(
        tmp / "gdc_sample_sheet.tsv", sep="\t", index=False
    )
    quality = pd.DataFrame(plan.quality_rows)
    quality.insert(3, "corruption", quality["detail"].map(_CORRUPTION_CLASS))
    quality = quality.sort_values(["patient_id", "modality"], kind="stable")
    quality.to_csv(tmp / "quality.csv", index=False)
    (tmp / "README.txt").write_text(_README.format(seed=seed, projects=", ".join(projects)))


def generate_tcga_cohort(
    out_dir: Path,
    projects: Sequence[str] = ("UCEC", "LUAD", "LGG", "BRCA", "BLCA"),
    cases_per_project: int = 80,
    seed: int = 0,
    slide_size: tuple[int, int] = (2048, 2048),
    n_genes: int = 2000,
    n_jobs: int = 2,
    show_progress: bool = True,
) -> dict:
    """Write a synthetic TCGA cohort in the GDC layout (see :mod:`amc.synthetic.tcga`).

    Parameters
    ----------
    out_dir : Path
        Output folder; written atomically (built next to it, renamed on success).
    projects : sequence of str
        TCGA project codes without the ``TCGA-`` prefix; unknown codes get a generic profile.
    cases_per_project : int
        Cases with a clinical record per project (a few extra RNA-only cases are added).
    seed : int
        Same seed, same bytes.
    slide_size : (int, int)
        Level-0 (width, height) of each slide in pixels (0.5 micron per pixel).
    n_genes : int
        Rows of each STAR-counts file (all gene types; ~62% protein coding).
    n_jobs : int
        Worker processes for slides and RNA files (output does not depend on it).

    Returns
    -------
    dict
        Counts (cases, slides, reports, RNA files, events, dropped edge cases) and paths.
    """
    out_dir = Path(out_dir)
    projects = [p.upper().removeprefix("TCGA-") for p in projects]
    if cases_per_project < 1:
        raise ValueError(f"cases_per_project must be >= 1, got {cases_per_project}")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    genes = _gene_model(
        np.random.default_rng(zlib.crc32(f"genes-{seed}".encode())), n_genes, projects
    )
    plan = _draw_cohort(projects, cases_per_project, rng, (int(slide_size[0]), int(slide_size[1])))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for sub in ("slides", "reports", "rna"):
            (tmp / sub).mkdir()
        _write_files(plan, tmp, genes, n_jobs, show_progress)
        _write_tables(plan, tmp, seed, projects)
    stats = plan.stats
    summary = {
        "out_dir": str(out_dir),
        "projects": projects,
        "cases": stats["cases"],
        "rna_only_cases": stats["rna_only_cases"],
        "cases_without_usable_time": stats["no_usable_time"],
        "events": stats["events"],
        "event_rate": stats["events"] / max(stats["cases"] - stats["no_usable_time"], 1),
        "slides": len(plan.slide_specs),
        "reports": sum(1 for t in plan.reports.values() if t.strip()),
        "rna_files": len(plan.rna_specs),
        "genes": n_genes,
    }
    log.info("synthetic TCGA cohort: %s", summary)
    return summary


_README = """SYNTHETIC DATA - NOT REAL PATIENTS.

Generated by amc.synthetic.tcga.generate_tcga_cohort(seed={seed}) for projects {projects}.
Layout mirrors a GDC download: slides/<case>/<barcode>.tif (pyramidal Aperio-style TIFF),
reports/<case>.txt, rna/<file_id>/<file>.rna_seq.augmented_star_gene_counts.tsv with
gdc_sample_sheet.tsv, and clinical.tsv. quality.csv records the generator's per-patient
modality quality and corruption; it is for analysis only and never used for training.
"""
