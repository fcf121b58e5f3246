"""The case-level WSI feature table, aggregated from the per-slide HDF5 files."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amc.data.store import write_features
from amc.errors import InputError
from amc.wsi.store import SUFFIX, read_slide_h5

log = logging.getLogger(__name__)


def assemble_wsi_table(
    per_slide_dir: str | os.PathLike,
    out_parquet: str | os.PathLike,
    slides: Iterable[str] | None = None,
    patients: Iterable[str] | None = None,
    include_bags: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Case-level WSI feature table from the per-slide outputs.

    ``features`` is the mean over a case's slides of each slide's mean patch embedding;
    ``patches`` (``list<fixed_size_list<float32, D>>``) and ``coords``
    (``list<fixed_size_list<int32, 2>>``, level-0 ``x, y``) hold the case's bag, slides
    concatenated in name order, with ``patch_slide`` (``list<int32>``) indexing ``slides``
    (``list<string>``). Cases whose slides have no tissue are absent (missing modality).

    Parameters
    ----------
    slides : iterable of str, optional
        Per-slide file names to use (e.g. ``summary["outputs"]`` of
        :func:`extract_slide_features`); default: every ``*.h5`` in the folder.
    patients : iterable of str, optional
        Keep only these patients.
    include_bags : bool
        Write the ``patches`` / ``coords`` bag columns.

    metadata : mapping, optional
        Merged into the table's metadata (e.g. ``failed_slides`` of the extraction).

    Returns
    -------
    dict
        ``patients`` written, ``no_tissue_patients`` and the path.
    """
    folder = Path(per_slide_dir)
    names = (
        sorted(slides) if slides is not None else sorted(p.name for p in folder.glob(f"*{SUFFIX}"))
    )
    if not names:
        raise InputError(
            f"{folder}: no per-slide feature files", hint="run extract_slide_features first"
        )
    keep = set(patients) if patients is not None else None
    per_patient, empty_patients, first_meta = _read_slides(folder, names, keep, include_bags)
    no_tissue = sorted(empty_patients - set(per_patient))
    if no_tissue:
        log.warning(
            "%d patient(s) without any tissue patch are absent from the wsi table (e.g. %s)",
            len(no_tissue),
            ", ".join(no_tissue[:5]),
        )
    if not per_patient:
        raise InputError(f"{folder}: no slide with tissue", hint="check the slides")
    ids = sorted(per_patient)
    dim = int(per_patient[ids[0]][0][1].shape[0])
    features = np.stack(
        [np.mean([m for _, m, _, _ in per_patient[p]], axis=0) for p in ids]
    ).astype(np.float32)
    extra = _bag_columns(per_patient, ids, dim) if include_bags else {}
    meta = {
        "extractor": "amc.wsi.extract_slide_features",
        "modality": "wsi",
        "encoder": first_meta.get("encoder"),
        "params": {**first_meta.get("params", {}), "config": first_meta.get("config")},
        "dim": dim,
        "slides_per_patient": {p: len(per_patient[p]) for p in ids},
        "no_tissue_patients": no_tissue,
        "bag_columns": ["patches", "coords", "patch_slide", "slides"] if include_bags else [],
        **dict(metadata or {}),
    }
    write_features(out_parquet, ids, features, metadata=meta, extra_columns=extra)
    log.info(
        "WSI table: %d patients (%d without tissue absent) -> %s",
        len(ids),
        len(no_tissue),
        out_parquet,
    )
    return {"patients": len(ids), "no_tissue_patients": no_tissue, "path": str(out_parquet)}


_Slide = tuple[str, np.ndarray, np.ndarray, np.ndarray]


def _read_slides(
    folder: Path, names: list[str], keep: set[str] | None, include_bags: bool
) -> tuple[dict[str, list[_Slide]], set[str], dict[str, Any]]:
    """Per patient: (slide name, slide mean embedding, patch embeddings, coords).

    The bags are kept only when they are written, so a features-only table needs little
    memory. Also returns the patients seen with empty slides and the first slide's meta.
    """
    per_patient: dict[str, list[_Slide]] = {}
    empty_patients: set[str] = set()
    configs: set[str] = set()
    first_meta: dict[str, Any] = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise InputError(
                f"{path}: per-slide features missing",
                hint="rerun extract_slide_features (it resumes)",
            )
        feats, coords, meta = read_slide_h5(path)
        pid = meta["patient_id"]
        if keep is not None and pid not in keep:
            continue
        configs.add(meta["config"])
        first_meta = first_meta or meta
        if len(feats) == 0:
            empty_patients.add(pid)
            continue
        mean = feats.mean(axis=0, dtype=np.float64)
        if not include_bags:
            feats, coords = feats[:0], coords[:0]
        per_patient.setdefault(pid, []).append((meta["slide"], mean, feats, coords))
    if len(configs) > 1:
        raise InputError(
            f"{folder}: per-slide files come from different encoders / parameters",
            hint="delete the folder and extract again",
        )
    return per_patient, empty_patients, first_meta


def _bag_columns(per_patient: dict[str, list[_Slide]], ids: list[str], dim: int) -> dict:
    """The ``patches`` / ``coords`` / ``patch_slide`` / ``slides`` list columns."""
    import pyarrow as pa

    bag_lengths = [sum(len(f) for _, _, f, _ in per_patient[p]) for p in ids]
    offsets = pa.array(np.concatenate([[0], np.cumsum(bag_lengths)]).astype(np.int32))
    all_feats = np.concatenate([f for p in ids for _, _, f, _ in per_patient[p]])
    all_coords = np.concatenate([c for p in ids for _, _, _, c in per_patient[p]])
    all_slide = np.concatenate(
        [np.full(len(f), k, np.int32) for p in ids for k, (_, _, f, _) in enumerate(per_patient[p])]
    )
    feat_items = pa.FixedSizeListArray.from_arrays(
        pa.array(all_feats.reshape(-1), type=pa.float32()), dim
    )
    coord_items = pa.FixedSizeListArray.from_arrays(
        pa.array(all_coords.astype(np.int32).reshape(-1), type=pa.int32()), 2
    )
    return {
        "patches": pa.ListArray.from_arrays(offsets, feat_items),
        "coords": pa.ListArray.from_arrays(offsets, coord_items),
        "patch_slide": pa.ListArray.from_arrays(offsets, pa.array(all_slide)),
        "slides": pa.array(
            [[s for s, _, _, _ in per_patient[p]] for p in ids], type=pa.list_(pa.string())
        ),
    }
