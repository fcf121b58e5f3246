"""MIMIC-IV notes of the index admission available at the prediction time, joined per patient
and embedded (layout in :mod:`amc.features.mimic`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from amc.errors import InputError
from amc.features.mimic_io import NOTE_FILES, _hadm_set, _read_chunks, _to_time

logger = logging.getLogger("amc.features.mimic")


def _read_notes(
    raw_dir: Path, rel: str, hadm_arr: np.ndarray, note_time: str, chunksize: int
) -> pd.DataFrame:
    cols = ["hadm_id", "note_type", "note_seq", note_time, "text"]
    parts = []
    for chunk in _read_chunks(
        raw_dir,
        rel,
        cols,
        chunksize,
        dtype={"text": str, "hadm_id": "float64", "note_type": str, note_time: str},
        keep_default_na=False,
        na_values={"hadm_id": [""], "note_seq": [""]},
    ):
        parts.append(chunk[chunk["hadm_id"].isin(hadm_arr)])
    notes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    notes["time"] = _to_time(notes.pop(note_time).replace("", None), str(raw_dir / rel), note_time)
    return notes


def extract_note_texts(
    raw_dir: Path,
    index: pd.DataFrame,
    chunksize: int = 100_000,
    note_types: Sequence[str] = ("DS",),
    note_time: str = "charttime",
) -> pd.Series:
    """Text of each patient's index-admission notes charted at or before the prediction time.

    Notes of the listed ``note_types`` (``DS`` discharge summaries in ``note/discharge.csv.gz``,
    ``RR`` / ``AR`` radiology reports and addenda in ``note/radiology.csv.gz``) whose
    ``note_time`` column (``charttime`` or ``storetime``) is at or before the index table's
    ``prediction_time`` (all notes when it has no such column; a note without a time is not
    used; a discharge summary, dated on the discharge day, counts from the admission's
    ``dischtime`` at the earliest) are joined in (type, ``note_seq``) order with a blank line.
    Patients without a note, or with only empty notes, are omitted (a missing modality) and
    counted.

    Returns
    -------
    pd.Series
        ``patient_id`` -> text (str), in ``index`` order, name ``text``.
    """
    raw_dir = Path(raw_dir)
    if note_time not in ("charttime", "storetime"):
        raise InputError(
            f"sources.mimic.note_time={note_time!r}", hint="one of charttime, storetime"
        )
    unknown = [t for t in note_types if t not in NOTE_FILES]
    if unknown or not note_types:
        raise InputError(
            f"sources.mimic.note_types={list(note_types)!r}: unknown or empty",
            hint=f"a non-empty list of {', '.join(NOTE_FILES)}",
        )
    _hadm_set(index)
    hadm_arr = index["hadm_id"].astype("int64").to_numpy()
    files = list(dict.fromkeys(NOTE_FILES[t] for t in note_types))
    notes = pd.concat(
        [_read_notes(raw_dir, rel, hadm_arr, note_time, chunksize) for rel in files],
        ignore_index=True,
    )
    notes = notes[notes["note_type"].isin(list(note_types))]
    notes = notes[notes["text"].astype(str).str.strip() != ""]
    notes = notes.assign(
        hadm_id=notes["hadm_id"].astype("int64"),
        note_seq=pd.to_numeric(notes["note_seq"], errors="coerce"),
    )
    n_all = len(notes)
    if "prediction_time" in index:
        by_hadm = index.assign(hadm_id=hadm_arr).set_index("hadm_id")
        limit = pd.to_datetime(by_hadm["prediction_time"]).reindex(notes["hadm_id"]).to_numpy()
        # a discharge summary is dated on the discharge DAY but written at discharge: it is
        # never available before the admission's dischtime
        disch = pd.to_datetime(by_hadm["dischtime"]).reindex(notes["hadm_id"]).to_numpy()
        known = notes["time"].to_numpy()
        is_ds = (notes["note_type"] == "DS").to_numpy()
        known = np.where(is_ds, np.maximum(known, disch), known)
        notes = notes[known <= limit]
    notes = notes.sort_values(["hadm_id", "note_type", "note_seq"], kind="stable")
    joined = notes.groupby("hadm_id", sort=False)["text"].agg(lambda s: "\n\n".join(s))
    hadm = index["hadm_id"].astype("int64")
    has = hadm.isin(joined.index).to_numpy()
    out = pd.Series(
        joined.reindex(hadm[has].to_numpy()).to_numpy(),
        index=pd.Index(index["patient_id"].astype(str).to_numpy()[has], name="patient_id"),
        name="text",
        dtype=object,
    )
    logger.info(
        "notes (%s, by %s): %d of %d index admissions have one; %d without (absent from note "
        "features); %d notes charted after the prediction time (or undated) not used",
        ",".join(note_types),
        note_time,
        len(out),
        len(index),
        int((~has).sum()),
        n_all - len(notes),
    )
    return out


def extract_note_features(
    raw_dir: Path,
    index: pd.DataFrame,
    model_path: str | None = None,
    batch_size: int = 32,
    max_length: int = 256,
    stride: int = 32,
    device: str = "auto",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Note embeddings of the patients that have a discharge note (others are absent).

    Returns
    -------
    ids : (P_note,) patient ids with a note.
    feats : (P_note, H) float32 from :func:`amc.features.text.embed_texts`.
    names : ``note_emb_000`` ... (H names).
    """
    from amc.features.text import embed_texts

    texts = extract_note_texts(raw_dir, index)
    feats = embed_texts(
        texts.tolist(),
        model_path=model_path,
        batch_size=batch_size,
        max_length=max_length,
        stride=stride,
        device=device,
    )
    names = [f"note_emb_{k:03d}" for k in range(feats.shape[1])]
    return texts.index.to_numpy(dtype=object), feats, names
