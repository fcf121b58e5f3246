"""TCGA clinical labels and pathology reports, read from what the GDC ships.

- :func:`load_clinical`: GDC ``clinical.tsv`` (old ``case_id, case_submitter_id, project_id,
  vital_status, days_to_death, days_to_last_follow_up`` export, or the newer dotted
  ``cases.submitter_id, demographic.vital_status, ...`` one) -> one survival row per patient.
- :func:`read_reports`: a folder of ``<case_id>.txt`` files or a table ``case_id, text``
  (e.g. the TCGA-Reports OCR table with ``patient_filename, text``) -> text per patient.
- :func:`extract_report_features`: reports -> text embeddings -> feature Parquet.

Patient ids are TCGA case barcodes (``TCGA-XX-YYYY``), the id slides, reports and sample sheets
share.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amc.errors import InputError

log = logging.getLogger(__name__)

GDC_MISSING_VALUES = [
    "'--",
    "--",
    "",
    "NA",
    "N/A",
    "nan",
    "NaN",
    "Not Reported",
    "not reported",
    "Unknown",
    "unknown",
]
_BARCODE = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", re.IGNORECASE)


def case_barcode(name: str) -> str:
    """The case barcode ``TCGA-XX-YYYY`` at the start of a sample / slide / file name, else the
    name up to its first ``.`` (non-TCGA cohorts)."""
    m = _BARCODE.match(name.strip())
    return m.group(1).upper() if m else name.strip().split(".")[0]


def slide_patient(path: Path) -> str:
    """A slide's patient: the case barcode at the start of a ``TCGA-...`` file name, else the
    name of its parent folder (``<case_id>/<slide>``)."""
    return case_barcode(path.name) if path.name.upper().startswith("TCGA-") else path.parent.name


def find_tcga_slides(slide_dir: str | os.PathLike) -> dict[str, list[Path]]:
    """Slides under a folder grouped by TCGA case (see :func:`slide_patient`)."""
    from amc.wsi.slide import find_slides

    return find_slides(slide_dir, patient_of=slide_patient)


def _read_delimited(path: Path) -> pd.DataFrame:
    sep = "," if path.suffix.lower() == ".csv" or path.name.lower().endswith(".csv.gz") else "\t"
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputError(
            f"{path}: cannot parse as a {'CSV' if sep == ',' else 'TSV'} table ({err})",
            hint="give the GDC clinical.tsv export",
        ) from err


def _normalise_clinical_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Map the dotted GDC export (``cases.submitter_id``, ``demographic.vital_status``, ...) onto
    the flat names (``case_submitter_id``, ``vital_status``, ...)."""
    rename: dict[str, str] = {}
    for col in df.columns:
        if "." not in col:
            continue
        prefix, name = col.split(".", 1)
        if prefix == "cases" and name == "submitter_id":
            target = "case_submitter_id"
        elif prefix in ("cases", "project", "demographic", "diagnoses", "follow_ups"):
            target = name
        else:
            continue
        if target not in df.columns and target not in rename.values():
            rename[col] = target
    return df.rename(columns=rename)


def _to_days(values: pd.Series) -> pd.Series:
    cleaned = values.astype(str).str.strip().replace(GDC_MISSING_VALUES, np.nan)
    return pd.to_numeric(cleaned, errors="coerce")


def _clinical_rows(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Per clinical row: ``patient_id`` (case barcode), ``project_id``, ``vital`` status and
    ``death`` / ``follow`` days; missing required columns raise naming the file."""
    id_col = next(
        (
            c
            for c in ("case_submitter_id", "submitter_id", "case_id", "patient_id")
            if c in df.columns
        ),
        None,
    )
    required = ["vital_status", "days_to_death", "days_to_last_follow_up"]
    missing = [c for c in required if c not in df.columns]
    if id_col is None:
        missing.insert(0, "case_submitter_id or case_id")
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}",
            hint="expected a GDC clinical export with case_id, project_id, "
            "vital_status, days_to_death, days_to_last_follow_up",
        )
    return pd.DataFrame(
        {
            "patient_id": df[id_col].astype(str).str.strip().map(case_barcode),
            "project_id": df["project_id"].astype(str).str.strip().str.upper()
            if "project_id" in df.columns
            else "",
            "vital": df["vital_status"].astype(str).str.strip().str.lower(),
            "death": _to_days(df["days_to_death"]),
            "follow": _to_days(df["days_to_last_follow_up"]),
        }
    )


def _survival_per_patient(out: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One ``patient_id, project_id, time, event`` row per patient with a usable time; the
    others are counted in the log."""
    dead = out["vital"] == "dead"
    alive = out["vital"] == "alive"
    out = out.assign(
        event=dead.astype(int),
        time=np.where(dead, out["death"], np.where(alive, out["follow"], np.nan)),
    )
    # One row per patient: dead wins over alive (a later record), then the largest time.
    out = out.sort_values(["patient_id", "event", "time"], na_position="first")
    per_patient = out.groupby("patient_id", sort=True).tail(1)
    n_patients = len(per_patient)
    usable = per_patient["time"].notna() & (per_patient["time"] >= 0)
    dropped = per_patient.loc[~usable, "patient_id"].tolist()
    if dropped:
        log.warning(
            "%s: %d of %d cases have no usable survival time and are dropped (e.g. %s)",
            path,
            len(dropped),
            n_patients,
            ", ".join(dropped[:5]),
        )
    result = per_patient.loc[usable, ["patient_id", "project_id", "time", "event"]]
    return result.astype({"time": float, "event": int}).reset_index(drop=True)


def load_clinical(path: str | os.PathLike, project: str | None = None) -> pd.DataFrame:
    """Survival labels from a GDC clinical export.

    ``time`` is ``days_to_death`` for ``Dead`` and ``days_to_last_follow_up`` otherwise;
    ``event`` is 1 when the death was observed. GDC's ``'--`` (and empty / ``Not Reported``)
    means missing. A case with several rows (one per treatment / diagnosis, as GDC writes them)
    gets its largest time. Cases with no usable time (unknown vital status, dead without
    ``days_to_death``, alive without follow-up, negative days) are dropped and counted in the
    log.

    Parameters
    ----------
    path : path-like
        ``clinical.tsv`` (tab separated) or a ``.csv``.
    project : str, optional
        Keep only this project, ``"UCEC"`` or ``"TCGA-UCEC"`` (case-insensitive).

    Returns
    -------
    pd.DataFrame
        Columns ``patient_id`` (case barcode, str), ``project_id`` (str), ``time`` (float days),
        ``event`` (int 0/1); one row per patient, sorted by ``patient_id``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: clinical table not found",
            hint="set the TCGA clinical path in params (GDC clinical.tsv)",
        )
    out = _clinical_rows(_normalise_clinical_columns(_read_delimited(path)), path)
    n_rows = len(out)
    out = out[out["patient_id"].str.len() > 0]
    if project:
        want = project.strip().upper()
        want = want if want.startswith("TCGA-") else f"TCGA-{want}"
        out = out[out["project_id"] == want]
        if out.empty:
            raise InputError(
                f"{path}: no case of project {want}",
                hint="check the dataset's project code (e.g. UCEC, LUAD)",
            )
    result = _survival_per_patient(out, path)
    log.info(
        "%s: %d rows -> %d patients with survival labels (%d events)",
        path,
        n_rows,
        len(result),
        int(result["event"].sum()),
    )
    return result


_ID_COLUMNS = (
    "patient_id",
    "case_id",
    "case_submitter_id",
    "submitter_id",
    "patient_filename",
    "patient",
    "case",
)
_TEXT_COLUMNS = ("text", "report", "report_text", "note")


REPORT_ON_ERROR = ("fail", "skip")


def read_report_file(path: Path) -> str:
    """The text of one report file.

    Rule for a corrupt file: unreadable, holding NUL bytes (binary data), or with more than
    1% of its characters not decodable as UTF-8 (a few stray bytes are replaced, as OCR
    output has them).

    Raises
    ------
    InputError
        Naming the file and what is wrong with it.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(
            f"{path}: cannot read the report ({err.strerror or err})",
            hint="check the file's permissions",
        ) from err
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    has_nul = b"\x00" in raw
    if has_nul or bad > 0.01 * max(len(text), 1):
        what = "NUL bytes" if has_nul else f"{bad} undecodable bytes"
        raise InputError(
            f"{path}: not a text report ({what})",
            hint="re-download the report, or set sources.tcga.report_on_error: skip to leave "
            "it out",
        )
    return text


def read_reports(report_dir_or_table: str | os.PathLike, on_error: str = "fail") -> pd.Series:
    """Pathology report text per patient.

    Accepts a folder of ``<case_id>*.txt`` files (recursively; the case barcode is taken from
    the file name, so ``TCGA-XX-YYYY.<uuid>.txt`` works too) or a table (``.csv``, ``.tsv``,
    ``.parquet``) with an id column (``case_id`` / ``patient_id`` / ``patient_filename`` ...)
    and a ``text`` column. Several reports of one case are joined with a blank line. Empty
    reports are dropped and counted (the modality is missing for that case). A corrupt report
    file (see :func:`read_report_file`) stops with an error naming it (``on_error="fail"``)
    or is left out, logged and listed in ``series.attrs["skipped_reports"]`` (``skip``).

    Returns
    -------
    pd.Series
        Index ``patient_id`` (str, sorted), values ``text`` (str).
    """
    if on_error not in REPORT_ON_ERROR:
        raise InputError(f"report on_error={on_error!r} is not one of fail, skip")
    src = Path(report_dir_or_table)
    skipped: list[str] = []
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
        if not files:
            raise InputError(
                f"{src}: no .txt report files found",
                hint="one <case_id>.txt per case, or give a table case_id,text",
            )
        ids, texts = [], []
        for p in files:
            try:
                texts.append(read_report_file(p))
            except InputError as err:
                if on_error == "fail":
                    raise
                log.warning("%s; report skipped (on_error=skip)", str(err).split("\n  hint: ")[0])
                skipped.append(str(p))
                continue
            ids.append(case_barcode(p.name))
    elif src.is_file():
        name = src.name.lower()
        if name.endswith(".parquet"):
            table = pd.read_parquet(src)
        else:
            table = _read_delimited(src)
        cols = {c.lower(): c for c in table.columns}
        id_col = next((cols[c] for c in _ID_COLUMNS if c in cols), None)
        text_col = next((cols[c] for c in _TEXT_COLUMNS if c in cols), None)
        if id_col is None or text_col is None:
            raise InputError(
                f"{src}: needs an id column ({', '.join(_ID_COLUMNS)}) and a "
                f"text column ({', '.join(_TEXT_COLUMNS)}); has {list(table.columns)}",
                hint="give a table with columns case_id,text",
            )
        ids = [case_barcode(str(v)) for v in table[id_col]]
        texts = ["" if pd.isna(t) else str(t) for t in table[text_col]]
    else:
        raise InputError(
            f"{src}: report folder or table not found", hint="set the TCGA report path in params"
        )
    series = pd.Series(texts, index=pd.Index(ids, name="patient_id"), name="text")
    empty = series.str.strip().str.len() == 0
    if empty.any():
        log.warning(
            "%s: %d empty report(s) treated as missing (e.g. %s)",
            src,
            int(empty.sum()),
            ", ".join(series.index[empty][:5]),
        )
    series = series[~empty]
    series = series.groupby(level=0, sort=True).agg(lambda t: "\n\n".join(t))
    series.name = "text"
    series.index.name = "patient_id"
    series.attrs["skipped_reports"] = skipped
    log.info("%s: reports for %d patients", src, len(series))
    return series


def extract_report_features(
    report_dir_or_table: str | os.PathLike,
    out_path: str | os.PathLike,
    model_path: str | None = None,
    patients: Sequence[str] | None = None,
    batch_size: int = 32,
    max_length: int = 256,
    stride: int = 32,
    device: str = "auto",
    show_progress: bool = True,
    on_error: str = "fail",
) -> dict[str, Any]:
    """Embed every patient's report and write the ``report`` feature Parquet.

    Parameters
    ----------
    patients : sequence of str, optional
        Restrict to these patient ids (e.g. those with a clinical record); others are dropped
        and counted.
    model_path, batch_size, max_length, stride, device
        Passed to :func:`amc.features.text.embed_texts` (``None`` = the bundled MiniLM).
    on_error : {"fail", "skip"}
        A corrupt report file stops the run, or is left out and listed in the table's
        metadata (``skipped_reports``).

    Returns
    -------
    dict
        ``patients`` written, ``dropped`` (not in ``patients``) and the output path.
    """
    from amc.data.store import write_features
    from amc.features.text import embed_texts, text_encoder_info

    reports = read_reports(report_dir_or_table, on_error=on_error)
    skipped = reports.attrs.get("skipped_reports", [])
    dropped = 0
    if patients is not None:
        keep = reports.index.isin(list(patients))
        dropped = int((~keep).sum())
        if dropped:
            log.info("%d report(s) of patients outside the cohort dropped", dropped)
        reports = reports[keep]
    if reports.empty:
        raise InputError(
            f"{report_dir_or_table}: no report left to embed",
            hint="check that report file names carry the case barcodes",
        )
    feats = embed_texts(
        list(reports.values),
        model_path=model_path,
        batch_size=batch_size,
        max_length=max_length,
        stride=stride,
        device=device,
        show_progress=show_progress,
    )
    meta = {
        "extractor": "amc.features.tcga.extract_report_features",
        "modality": "report",
        "params": {"max_length": max_length, "stride": stride, "source": str(report_dir_or_table)},
        "encoder": text_encoder_info(model_path),
        "dropped_not_in_cohort": dropped,
    }
    if on_error == "skip":  # only then: the default keeps the table's bytes unchanged
        meta["skipped_reports"] = skipped
    write_features(out_path, list(reports.index), feats, metadata=meta)
    return {"patients": len(reports), "dropped": dropped, "path": str(out_path)}
