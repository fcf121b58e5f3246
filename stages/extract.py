"""extract@<source>-<modality>: raw files -> data/features/<source>/<modality>.parquet.

Usage: python -m stages.extract <source> <modality> [--out <file.parquet>]
(default output data/features/<source>/<modality>.parquet; the modality ``labels`` writes the
label table). Params: sources.<source>.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from amc.data.store import write_features, write_table
from amc.errors import InputError
from stages._cli import run, stage_parser
from stages.params import load_params

log = logging.getLogger("stages.extract")


def _mimic(modality: str, cfg: dict[str, Any], out: Path) -> None:
    from amc.features import mimic

    raw = Path(cfg["raw"])
    when = cfg.get("prediction_time", "discharge")
    if modality == "code" and mimic.parse_prediction_time(when) is not None:
        raise InputError(
            f"sources.mimic.prediction_time={when!r}: ICD codes are assigned at discharge, so "
            "no code of the index admission is known at that time",
            hint="use prediction_time: discharge, or drop 'code' from the mimic-iv modalities",
        )
    index = mimic.load_index_admissions(raw, when, cfg.get("deaths_before_prediction", "exclude"))
    meta = {
        "extractor": f"amc.features.mimic:{modality}",
        "raw": str(raw),
        "prediction_time": when,
        "deaths_before_prediction": cfg.get("deaths_before_prediction", "exclude"),
    }
    if modality == "labels":
        write_table(mimic.label_table(index), out, meta)
    elif modality == "lab":
        engine = cfg.get("lab_engine", "duckdb")
        ids, feats, names = mimic.extract_lab_features(
            raw, index, cfg["lab_window_hours"], engine=engine,
            max_items=cfg.get("lab_max_items"),
        )  # fmt: skip
        write_features(
            out,
            ids,
            feats,
            {
                **meta,
                "window_hours": cfg["lab_window_hours"],
                "max_items": cfg.get("lab_max_items"),
                "feature_names": names,
            },
        )
    elif modality == "code":
        exclude = cfg.get("code_exclude", list(mimic.DEATH_CODE_TOKENS))
        ids, feats, names = mimic.extract_code_features(
            raw, index, cfg["code_vocab"], exclude=exclude
        )
        write_features(
            out,
            ids,
            feats,
            {
                **meta,
                "vocab_size": cfg["code_vocab"],
                "code_exclude": list(exclude),
                "feature_names": names,
            },
        )
    elif modality == "note":
        _mimic_note(cfg, raw, index, meta, out)
    else:
        raise InputError(
            f"extract: unknown mimic modality {modality!r}", hint="one of lab, note, code, labels"
        )


def _mimic_note(
    cfg: dict[str, Any], raw: Path, index: Any, meta: dict[str, Any], out: Path
) -> None:
    """note: the index admissions' notes available at the prediction time, embedded."""
    from amc.features import mimic
    from amc.features.text import embed_texts, text_encoder_info

    note_types = cfg.get("note_types", ["DS"])
    note_time = cfg.get("note_time", "charttime")
    texts = mimic.extract_note_texts(raw, index, note_types=note_types, note_time=note_time)
    feats = embed_texts(
        list(texts.values),
        model_path=cfg.get("text_encoder"),
        batch_size=cfg["text_batch_size"],
        max_length=cfg["text_max_length"],
    )
    write_features(
        out,
        texts.index.to_numpy(),
        feats,
        {
            **meta,
            "encoder": text_encoder_info(cfg.get("text_encoder")),
            "max_length": cfg["text_max_length"],
            "note_types": list(note_types),
            "note_time": note_time,
        },
    )


def _adni(modality: str, cfg: dict[str, Any], out: Path) -> None:
    from amc.features import adni

    raw = Path(cfg["raw"])
    files = cfg["files"]
    visit = cfg["visit"]
    params = {"visit": visit, "raw": str(raw)}
    if modality == "labels":
        labels = adni.load_diagnosis(raw / files["diagnosis"], visit=visit)
        write_table(labels, out, {"extractor": "amc.features.adni:load_diagnosis", **params})
        return
    if modality == "mri":
        shape = tuple(cfg["mri_shape"])
        on_error = cfg.get("on_error", "fail")
        skipped: list[str] = []
        ids, volumes = adni.extract_mri_features(
            raw / files["mri"], shape=shape, on_error=on_error, skipped=skipped
        )
        adni.write_modality(
            out,
            ids,
            volumes,
            extractor="amc.features.adni:mri",
            params={
                **params,
                "shape": list(shape),
                "on_error": on_error,
                "skipped": skipped,
            },
        )
        return
    if modality == "biospecimen":
        ids, feats, names = adni.extract_biospecimen(
            [raw / f for f in files["biomarkers"]],
            id_map_csv=raw / files["diagnosis"],
            apoe_csv=raw / files["apoe"],
            visit=visit,
        )
    elif modality == "clinical":
        instruments = bool(cfg.get("clinical_instruments", False))
        params["clinical_instruments"] = instruments
        ids, feats, names = adni.extract_clinical(
            raw / files["clinical"], visit=visit, include_instruments=instruments
        )
    elif modality == "genomic":
        ids, feats, names = adni.extract_genomic(raw / files["genotypes"])
    else:
        raise InputError(
            f"extract: unknown adni modality {modality!r}",
            hint="one of mri, biospecimen, clinical, genomic, labels",
        )
    adni.write_modality(
        out,
        ids,
        feats,
        extractor=f"amc.features.adni:{modality}",
        params=params,
        feature_names=names,
    )


def _tcga(modality: str, cfg: dict[str, Any], out: Path) -> None:
    from amc.features import tcga

    raw = Path(cfg["raw"])
    files = cfg["files"]
    clinical = tcga.load_clinical(raw / files["clinical"])
    cases = clinical["patient_id"].tolist()
    if modality == "labels":
        write_table(
            clinical, out, {"extractor": "amc.features.tcga:load_clinical", "raw": str(raw)}
        )
    elif modality == "rna":
        from amc.features.rnaseq import extract_rna_features

        extract_rna_features(
            raw / files["sample_sheet"],
            raw / files["rna"],
            out,
            case_ids=cases,
            value=cfg["rna_value"],
        )
    elif modality == "report":
        tcga.extract_report_features(
            raw / files["reports"],
            out,
            model_path=cfg.get("text_encoder"),
            patients=cases,
            batch_size=cfg["text_batch_size"],
            max_length=cfg["text_max_length"],
            on_error=cfg.get("report_on_error", "fail"),
        )
    elif modality == "wsi":
        _tcga_wsi(cfg, raw, raw / files["slides"], set(cases), out)
    else:
        raise InputError(
            f"extract: unknown tcga modality {modality!r}", hint="one of wsi, report, rna, labels"
        )


# Keys of sources.tcga.wsi that say where / how the work runs, not what it computes: kept out
# of the table's metadata so the local and the Ray engine write the same bytes.
_WSI_RUNTIME_KEYS = ("device", "engine", "address", "actors", "gpus_per_actor", "cpus_per_actor")


def _tcga_wsi(cfg: dict[str, Any], raw: Path, slide_dir: Path, cases: set, out: Path) -> None:
    from functools import partial

    from amc.features.tcga import find_tcga_slides
    from amc.wsi import assemble_wsi_table, extract_slide_features, load_patch_encoder

    w = cfg["wsi"]
    slides = {p: s for p, s in find_tcga_slides(slide_dir).items() if p in cases}
    engine = w.get("engine", "local")
    load = partial(
        load_patch_encoder,
        w["encoder"],
        weights=w.get("weights"),
        config=w.get("encoder_config") or {},
        precision=w.get("precision", "auto"),
    )
    # with Ray, the actors load the encoder on their own device; the driver's copy (CPU)
    # only names it (weights hash, width) for the per-slide records
    encoder = load(device="cpu" if engine == "ray" else w["device"])
    ray_options = {
        "address": w.get("address"),
        "actors": w.get("actors", 1),
        "gpus_per_actor": w.get("gpus_per_actor", 0),
        "cpus_per_actor": w.get("cpus_per_actor", 1),
        "encoder_factory": partial(load, device=w["device"]),
    }
    # Per-slide outputs live outside DVC's outputs (which DVC deletes before a re-run),
    # so an interrupted extraction resumes; each records its encoder, parameters and the
    # slide's content hash.
    per_slide = Path(".cache/wsi") / raw.resolve().as_posix().strip("/").replace("/", "_")
    on_error = w.get("on_error", "fail")
    summary = extract_slide_features(
        slides,
        per_slide,
        encoder,
        batch_size=w["batch_size"],
        num_workers=w["num_workers"],
        target_mpp=w["target_mpp"],
        patch_size=w["patch_size"],
        max_patches=w["max_patches"],
        fallback_mpp=w["fallback_mpp"],
        min_tissue=w["min_tissue"],
        on_error=on_error,
        engine=engine,
        ray_options=ray_options,
    )
    metadata = {
        "extractor": "amc.wsi",
        "raw": str(raw),
        **{k: v for k, v in w.items() if k not in _WSI_RUNTIME_KEYS},
    }
    if on_error == "skip":
        metadata["failed_slides"] = summary["failed"]
        log.info("%d unreadable slide(s) skipped", len(summary["failed"]))
    assemble_wsi_table(
        per_slide, out, slides=summary["outputs"], include_bags=w["store_bags"], metadata=metadata
    )


EXTRACTORS = {"mimic": _mimic, "adni": _adni, "tcga": _tcga}


def main(argv: list[str]) -> None:
    parser = stage_parser("extract", __doc__)
    parser.add_argument("source", help=f"one of {', '.join(sorted(EXTRACTORS))}")
    parser.add_argument("modality", help="a modality of the source, or labels")
    parser.add_argument("--out", type=Path, help="output Parquet file")
    args = parser.parse_args(argv)
    source, modality = args.source, args.modality
    if source not in EXTRACTORS:
        raise InputError(f"extract: unknown source {source!r}", hint=f"one of {sorted(EXTRACTORS)}")
    params = load_params()
    cfg = params["sources"][source]
    if not Path(cfg["raw"]).exists():
        raise InputError(
            f"sources.{source}.raw={cfg['raw']!r} does not exist",
            hint=f"run `dvc repro synthesize@{source}` or point it at your download",
        )
    out = args.out or Path("data/features") / source / f"{modality}.parquet"
    EXTRACTORS[source](modality, cfg, out)
    log.info("wrote %s", out)


if __name__ == "__main__":
    run(main)
