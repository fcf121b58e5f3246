"""The ``sources`` block of the params schema (:mod:`amc.config`): where each raw source lives,
its synthetic cohort and its extraction keys, one line per key as in the other blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from amc.schema import (
    FLAG,
    TEXT,
    Rule,
    block,
    integer,
    key,
    list_of,
    mapping,
    number,
    one_of,
    optional,
)


def _text_encoder():
    return key(None, optional(TEXT), "null = the bundled MiniLM, or a local HF model folder")


def _text_batch_size():
    return key(32, integer(1), "texts per encoder batch")


def _text_max_length():
    return key(256, integer(1), "tokens kept per text")


#: The value columns of a GDC STAR gene-counts TSV, in file order (``sources.tcga.rna_value``
#: picks one); ``amc.data.formats.STAR_COLUMNS`` puts the gene annotations before them.
STAR_VALUE_COLUMNS = (
    "unstranded",
    "stranded_first",
    "stranded_second",
    "tpm_unstranded",
    "fpkm_unstranded",
    "fpkm_uq_unstranded",
)


@dataclass
class MimicSynthetic:
    n_patients: int = key(800, integer(1), "synthetic patients")
    seed: int = key(0, integer(0), "generator seed")


@dataclass
class MimicSource:
    """MIMIC-IV (hosp + note modules)."""

    raw: str = key("data/synthetic/mimic", TEXT, "raw MIMIC-IV folder")
    synthetic: MimicSynthetic = block(MimicSynthetic, "synthetic cohort options")
    prediction_time: str = key(
        "discharge",
        Rule(
            lambda v: isinstance(v, str) and bool(re.fullmatch(r"discharge|admission\+\d+h", v)),
            "discharge | admission+<H>h",
        ),
        "features use only what is charted before this time (of the index admission)",
    )
    deaths_before_prediction: str = key(
        "exclude",
        one_of("exclude", "keep"),
        "in-hospital deaths before the prediction time: dropped, or kept with label 1",
    )
    lab_window_hours: int = key(
        48, integer(1), "labs in [admittime, min(admittime + window, prediction time)]"
    )
    lab_engine: str = key("duckdb", one_of("duckdb", "pandas"), "lab extraction engine")
    lab_max_items: Any = key(
        None, optional(integer(1)), "null = every numeric lab item; N = the N most frequent"
    )
    code_vocab: int = key(512, integer(1), "most frequent diagnosis codes kept")
    code_exclude: list = key(
        ["dx9:798", "dx10:R96", "dx10:R98", "dx10:R99"],
        list_of(TEXT),
        "ICD categories (dx9:/dx10:/px9:/px10: prefixes) never used as features (death-stating)",
    )
    note_types: list = key(
        ["DS"], list_of(one_of("DS", "RR", "AR"), distinct=True), "note types used as text"
    )
    note_time: str = key(
        "charttime", one_of("charttime", "storetime"), "when a note counts as available"
    )
    text_encoder: Any = _text_encoder()
    text_batch_size: int = _text_batch_size()
    text_max_length: int = _text_max_length()


@dataclass
class TcgaSynthetic:
    cases_per_project: int = key(80, integer(1), "synthetic cases per project")
    seed: int = key(0, integer(0), "generator seed")


@dataclass
class TcgaFiles:
    """Paths inside ``raw`` (GDC layout)."""

    clinical: str = key("clinical.tsv", TEXT, "clinical table")
    sample_sheet: str = key("gdc_sample_sheet.tsv", TEXT, "GDC sample sheet")
    rna: str = key("rna", TEXT, "folder of <file_id>/<name>.tsv STAR-counts files")
    reports: str = key("reports", TEXT, "folder of <case>.txt, or a case_id, text table")
    slides: str = key("slides", TEXT, "folder of *.svs / *.tif slides")


@dataclass
class WsiParams:
    """Whole-slide image patch embedding."""

    encoder: str = key(
        "efficientnet-lite0",
        TEXT,
        "patch encoder: efficientnet-lite0 | resnet50_trunc | uni_v1 | conch_v1 | TorchScript file",
    )
    weights: Any = key(None, optional(TEXT), "local state-dict file of the encoder")
    encoder_config: dict = key(
        {}, mapping(Rule(lambda v: True, "any value")), "architecture overrides, e.g. {depth: 2}"
    )
    device: str = key("auto", one_of("auto", "cpu", "cuda"), "encoder device")
    precision: str = key(
        "auto", one_of("auto", "fp32", "bf16"), "auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    on_error: str = key(
        "fail", one_of("fail", "skip"), "an unreadable slide stops the stage, or is left out"
    )
    engine: str = key("local", one_of("local", "ray"), "local, or slides spread over Ray")
    address: Any = key(None, optional(TEXT), "Ray address; null = $RAY_ADDRESS, else local")
    actors: int = key(1, integer(1), "ray: encoder actors (e.g. one per GPU)")
    gpus_per_actor: float = key(0, number(0), "ray: GPUs per actor")
    cpus_per_actor: float = key(1, number(0), "ray: CPUs reserved per actor")
    target_mpp: float = key(1.0, number(0, low_open=True), "microns per pixel of patches")
    patch_size: int = key(224, integer(1), "patch side in pixels")
    max_patches: Any = key(16, optional(integer(1)), "patches per slide; null = all")
    min_tissue: float = key(0.5, number(0, 1), "minimum tissue fraction of a patch")
    fallback_mpp: Any = key(None, optional(number(0, low_open=True)), "MPP of slides without")
    batch_size: int = key(64, integer(1), "patches per encoder batch")
    num_workers: int = key(2, integer(0), "patch-reading worker processes")
    store_bags: bool = key(True, FLAG, "also store per-patch bags")


@dataclass
class TcgaSource:
    """TCGA (GDC download)."""

    raw: str = key("data/synthetic/tcga", TEXT, "raw GDC folder")
    synthetic: TcgaSynthetic = block(TcgaSynthetic, "synthetic cohort options")
    files: TcgaFiles = block(TcgaFiles, "file names inside raw")
    rna_value: str = key("tpm_unstranded", one_of(*STAR_VALUE_COLUMNS), "STAR-counts column used")
    text_encoder: Any = _text_encoder()
    text_batch_size: int = _text_batch_size()
    text_max_length: int = _text_max_length()
    report_on_error: str = key(
        "fail", one_of("fail", "skip"), "a corrupt report file stops the stage, or is left out"
    )
    wsi: WsiParams = block(WsiParams, "slide patch embedding")


@dataclass
class AdniSynthetic:
    n_subjects: int = key(300, integer(1), "synthetic subjects")
    seed: int = key(0, integer(0), "generator seed")


@dataclass
class AdniFiles:
    """File names inside ``raw``, as an ADNI download names them."""

    diagnosis: str = key("DXSUM_PDXCONV.csv", TEXT, "diagnosis table")
    biomarkers: list = key(["UPENNBIOMK.csv"], list_of(TEXT), "CSF biomarker tables")
    apoe: str = key("APOERES.csv", TEXT, "APOE genotype table")
    clinical: str = key("ADNIMERGE.csv", TEXT, "ADNIMERGE table")
    genotypes: str = key("genotypes.raw", TEXT, "PLINK .raw genotype file")
    mri: str = key("mri", TEXT, "folder of <PTID>/*.nii(.gz)")


@dataclass
class AdniSource:
    """ADNI."""

    raw: str = key("data/synthetic/adni", TEXT, "raw ADNI folder")
    synthetic: AdniSynthetic = block(AdniSynthetic, "synthetic cohort options")
    visit: str = key("bl", TEXT, "bl | first | last | a VISCODE")
    mri_shape: list = key([32, 32, 32], list_of(integer(1), 3), "MRI volume shape")
    on_error: str = key(
        "fail", one_of("fail", "skip"), "an unreadable NIfTI stops the stage, or is skipped"
    )
    clinical_instruments: bool = key(
        False,
        FLAG,
        "include MMSE, CDR-SB, ADAS-Cog, FAQ, MoCA, RAVLT (they nearly define the label)",
    )
    files: AdniFiles = block(AdniFiles, "file names inside raw")


@dataclass
class SourcesParams:
    """Raw sources: point ``raw`` at a real download to run the same stages on real data."""

    mimic: MimicSource = block(MimicSource, "MIMIC-IV")
    tcga: TcgaSource = block(TcgaSource, "TCGA")
    adni: AdniSource = block(AdniSource, "ADNI")
