"""Synthetic TCGA cohort: GDC layout, OpenSlide-readable slides, STAR files, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest

from amc.synthetic.tcga import (
    SAMPLE_SHEET_COLUMNS,
    STAR_COLUMNS,
    _SlideSpec,
    generate_tcga_cohort,
    render_slide,
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tcga") / "cohort"
    summary = generate_tcga_cohort(
        out,
        projects=("UCEC", "LGG"),
        cases_per_project=12,
        seed=3,
        slide_size=(768, 640),
        n_genes=150,
        n_jobs=1,
        show_progress=False,
    )
    return out, summary


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_summary(cohort):
    out, summary = cohort
    for name in ("clinical.tsv", "gdc_sample_sheet.tsv", "quality.csv", "README.txt"):
        assert (out / name).is_file(), name
    assert "SYNTHETIC" in (out / "README.txt").read_text()
    assert summary["cases"] == 24
    assert summary["rna_only_cases"] >= 2
    slides = sorted((out / "slides").glob("*/*.tif"))
    assert len(slides) == summary["slides"] > 0
    for s in slides:  # slides/<case_id>/<case_id>-01Z-00-DXn.<UUID>.tif
        assert s.name.startswith(s.parent.name + "-01Z-00-DX")
    assert not list(out.parent.glob(".cohort.*")), "temporary folder left behind"


def test_slides_open_in_openslide_with_mpp(cohort):
    out, _ = cohort
    path = sorted((out / "slides").glob("*/*.tif"))[0]
    slide = openslide.OpenSlide(str(path))
    assert slide.level_count > 1
    assert slide.dimensions == (768, 640)
    assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.5)
    assert float(slide.properties["openslide.objective-power"]) == pytest.approx(20)
    assert slide.level_downsamples[1] == pytest.approx(2.0)
    region = np.asarray(slide.read_region((0, 0), 1, (64, 64)).convert("RGB"))
    assert region.shape == (64, 64, 3)
    slide.close()


def test_clinical_is_gdc_like(cohort):
    out, summary = cohort
    clin = pd.read_csv(out / "clinical.tsv", sep="\t", dtype=str, keep_default_na=False)
    for col in (
        "case_id",
        "case_submitter_id",
        "project_id",
        "vital_status",
        "days_to_death",
        "days_to_last_follow_up",
    ):
        assert col in clin.columns
    assert set(clin["project_id"]) == {"TCGA-UCEC", "TCGA-LGG"}
    assert set(clin["vital_status"]) <= {"Alive", "Dead"}
    alive = clin[clin["vital_status"] == "Alive"]
    assert (alive["days_to_death"] == "'--").all()
    dead = clin[clin["vital_status"] == "Dead"]
    assert (dead["days_to_death"] != "'--").any()
    assert clin["case_submitter_id"].nunique() == summary["cases"]
    assert clin["case_submitter_id"].str.match(r"^TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}$").all()


def test_rna_files_are_star_format(cohort):
    out, summary = cohort
    sheet = pd.read_csv(out / "gdc_sample_sheet.tsv", sep="\t")
    assert list(sheet.columns) == list(SAMPLE_SHEET_COLUMNS)
    assert len(sheet) == summary["rna_files"]
    clinical_ids = set(pd.read_csv(out / "clinical.tsv", sep="\t")["case_submitter_id"])
    assert not set(sheet["Case ID"]) <= clinical_ids, "expected RNA files without clinical rows"
    row = sheet.iloc[0]
    path = out / "rna" / row["File ID"] / row["File Name"]
    lines = path.read_text().splitlines()
    assert lines[0] == "# gene-model: GENCODE v36"
    assert lines[1].split("\t") == list(STAR_COLUMNS)
    assert [ln.split("\t")[0] for ln in lines[2:6]] == [
        "N_unmapped",
        "N_multimapping",
        "N_noFeature",
        "N_ambiguous",
    ]
    genes = [ln.split("\t") for ln in lines[6:]]
    assert len(genes) == 150
    assert all(g[0].startswith("ENSG") and "." in g[0] for g in genes)
    types = {g[2] for g in genes}
    assert "protein_coding" in types and len(types) > 1
    tpm = np.array([float(g[6]) for g in genes])
    assert tpm.sum() == pytest.approx(1e6, rel=1e-3)


def test_reports_and_quality(cohort):
    out, summary = cohort
    reports = sorted((out / "reports").glob("*.txt"))
    n_cases = summary["cases"] + summary["rna_only_cases"]
    assert 0 < len(reports) < n_cases  # some cases have no report
    q = pd.read_csv(out / "quality.csv")
    assert set(q["modality"]) == {"wsi", "report", "rna"}
    assert q["quality"].between(0, 1).all()
    assert {"patient_id", "modality", "quality", "corruption"} <= set(q.columns)
    assert (q["corruption"] == "missing").any()
    assert len(q) == 3 * n_cases


def test_deterministic(cohort, tmp_path):
    out, _ = cohort
    again = tmp_path / "again"
    generate_tcga_cohort(
        again,
        projects=("UCEC", "LGG"),
        cases_per_project=12,
        seed=3,
        slide_size=(768, 640),
        n_genes=150,
        n_jobs=2,
        show_progress=False,
    )
    assert _digest(again) == _digest(out)
    other = tmp_path / "other"
    generate_tcga_cohort(
        other,
        projects=("UCEC",),
        cases_per_project=3,
        seed=4,
        slide_size=(512, 512),
        n_genes=50,
        n_jobs=1,
        show_progress=False,
    )
    assert pd.read_csv(other / "clinical.tsv", sep="\t")["case_submitter_id"].iloc[0] not in set(
        pd.read_csv(out / "clinical.tsv", sep="\t")["case_submitter_id"]
    )


def test_event_rate_and_slide_signal(tmp_path):
    summary = generate_tcga_cohort(
        tmp_path / "c",
        projects=("LUAD", "BRCA", "BLCA"),
        cases_per_project=60,
        seed=1,
        slide_size=(512, 512),
        n_genes=40,
        n_jobs=1,
        show_progress=False,
    )
    assert 0.25 <= summary["event_rate"] <= 0.6

    def nuclei_fraction(risk: float) -> float:
        img = render_slide(_SlideSpec("x", 7, 1024, 1024, risk, (236, 160, 196), "none", 0.0))
        dark = img.mean(axis=2) < 120
        return float(dark.mean())

    low, high = nuclei_fraction(-2.0), nuclei_fraction(2.0)
    assert high > 2 * low > 0
