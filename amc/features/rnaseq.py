"""RNA-seq features from GDC STAR gene-count files.

GDC ships one ``<uuid>.rna_seq.augmented_star_gene_counts.tsv`` per aliquot, inside a folder
named after the file's UUID, plus a sample sheet mapping files to cases and samples. The file
starts with ``# gene-model: GENCODE v36``, a header line, four ``N_unmapped / N_multimapping /
N_noFeature / N_ambiguous`` summary rows, then one row per gene.

:func:`build_rna_matrix` turns a download into a (patients x genes) ``log1p(TPM)`` matrix of
protein-coding genes in a fixed (sorted) gene order. No gene selection or scaling is fitted
here: selection by variance belongs to training (fitted on the training split only).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from amc.data.formats import STAR_COLUMNS
from amc.errors import InputError
from amc.features.tcga import case_barcode

log = logging.getLogger(__name__)

STAR_REQUIRED = STAR_COLUMNS  # every column of the format is required
VALUE_COLUMNS = STAR_REQUIRED[3:]
SHEET_REQUIRED = ("File ID", "File Name", "Case ID", "Sample Type")
# Tumour sample types usable when a case has no primary tumour file; normals never represent a
# patient's tumour.
_PRIMARY = (
    "Primary Tumor",
    "Primary Blood Derived Cancer - Peripheral Blood",
    "Primary Blood Derived Cancer - Bone Marrow",
)
_OTHER_TUMOUR = (
    "Recurrent Tumor",
    "Metastatic",
    "Additional - New Primary",
    "Additional Metastatic",
    "FFPE Scrolls",
)


def read_star_counts(path: str | os.PathLike) -> pd.DataFrame:
    """Read one GDC STAR gene-counts TSV.

    Validates the header, drops the ``N_*`` summary rows and checks that the numeric columns
    are numbers. ``.gz`` files are read transparently.

    Returns
    -------
    pd.DataFrame
        Columns :data:`STAR_REQUIRED` (``gene_id``, ``gene_name``, ``gene_type`` as str; counts
        as int64; ``tpm_unstranded``, ``fpkm_*`` as float64), one row per gene, file order.

    Raises
    ------
    InputError
        Naming the file: unreadable, empty, missing columns, duplicate gene ids or non-numeric
        values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: STAR counts file not found",
            hint="check the sample sheet and the RNA download folder",
        )
    try:
        df = pd.read_csv(
            path,
            sep="\t",
            comment=None,
            dtype=str,
            skiprows=_comment_lines(path),
            keep_default_na=False,
            na_filter=False,
        )
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        OSError,
        EOFError,
    ) as err:
        raise InputError(
            f"{path}: not a readable STAR gene counts TSV ({err})",
            hint="re-download the file from the GDC",
        ) from err
    missing = [c for c in STAR_REQUIRED if c not in df.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; header is {list(df.columns)}",
            hint="expected a GDC augmented_star_gene_counts.tsv (STAR - Counts)",
        )
    df = df.loc[~df["gene_id"].str.startswith("N_"), list(STAR_REQUIRED)]
    if df.empty:
        raise InputError(f"{path}: no gene rows", hint="the file is truncated; re-download it")
    dup = df["gene_id"].duplicated()
    if dup.any():
        raise InputError(
            f"{path}: duplicate gene_id {df['gene_id'][dup].iloc[0]!r}",
            hint="the file is corrupt; re-download it",
        )
    out = df.copy()
    for col in VALUE_COLUMNS:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values)
        if bad.any():
            row = out.index[bad][0]
            raise InputError(
                f"{path}: non-numeric {col} {out.at[row, col]!r} for gene {out.at[row, 'gene_id']}",
                hint="the file is corrupt; re-download",
            )
        out[col] = values.astype(np.int64) if col in VALUE_COLUMNS[:3] else values
    return out.reset_index(drop=True)


def _comment_lines(path: Path) -> int:
    """Number of leading ``#`` lines (the ``# gene-model`` line)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                n += 1
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read ({err})", hint="re-download the file") from err
    return n


def read_sample_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a GDC sample sheet (TSV) and check its columns.

    Returns the sheet with ``Case ID`` / ``Sample Type`` reduced to the first entry when GDC
    lists several (``"TCGA-A, TCGA-A"``) and the case id normalised to its barcode.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: GDC sample sheet not found",
            hint="download it from the GDC cart (Sample Sheet) next to the files",
        )
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in SHEET_REQUIRED if c not in sheet.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}",
            hint="expected the GDC sample sheet (File ID, File Name, Case ID, "
            "Sample ID, Sample Type, ...)",
        )
    sheet = sheet.copy()
    for col in ("Case ID", "Sample Type"):
        sheet[col] = sheet[col].str.split(",").str[0].str.strip()
    sheet["Case ID"] = sheet["Case ID"].map(case_barcode)
    return sheet


def _locate(rna_dir: Path, file_id: str, file_name: str) -> Path | None:
    for candidate in (rna_dir / file_id / file_name, rna_dir / file_name):
        if candidate.is_file():
            return candidate
    return None


class RnaMatrix(NamedTuple):
    """Result of :func:`build_rna_matrix` (unpacks as ``case_ids, matrix, gene_ids``)."""

    case_ids: np.ndarray  # (P,) str, sorted
    matrix: np.ndarray  # (P, G) float32 log1p(value)
    gene_ids: np.ndarray  # (G,) str, sorted


def _drop_unknown_cases(
    sheet: pd.DataFrame, case_ids: Iterable[str], counts: dict[str, int]
) -> pd.DataFrame:
    """The sample-sheet rows of cases with a clinical record; the others counted and logged."""
    known = {str(c) for c in case_ids}
    in_clinical = sheet["Case ID"].isin(known)
    counts["no_clinical_files"] = int((~in_clinical).sum())
    if counts["no_clinical_files"]:
        log.warning(
            "%d RNA file(s) of %d case(s) with no clinical record dropped (e.g. %s)",
            counts["no_clinical_files"],
            sheet.loc[~in_clinical, "Case ID"].nunique(),
            ", ".join(sheet.loc[~in_clinical, "Case ID"].unique()[:5]),
        )
    return sheet[in_clinical]


def _tumour_files(
    sheet: pd.DataFrame, sample_sheet: str | os.PathLike, counts: dict[str, int]
) -> pd.DataFrame:
    """Per case its ``Primary Tumor`` rows, else its other tumour rows; normal-only cases
    are counted and left out."""
    chosen: list[pd.DataFrame] = []
    for case, rows in sheet.groupby("Case ID", sort=True):
        primary = rows[rows["Sample Type"].isin(_PRIMARY)]
        if primary.empty:
            primary = rows[rows["Sample Type"].isin(_OTHER_TUMOUR)]
        if primary.empty:
            counts["normal_only_cases"] += 1
            log.info(
                "case %s has only non-tumour RNA samples (%s); skipped",
                case,
                ", ".join(sorted(rows["Sample Type"].unique())),
            )
            continue
        chosen.append(primary)
    if not chosen:
        raise InputError(
            f"{sample_sheet}: no tumour RNA file left for any case",
            hint="check the sample sheet's Case ID against the clinical table",
        )
    return pd.concat(chosen)


def _sum_per_case(
    use: pd.DataFrame,
    rna_dir: Path,
    value: str,
    gene_types: Sequence[str] | None,
    counts: dict[str, int],
    show_progress: bool,
) -> tuple[dict[str, np.ndarray], dict[str, int], np.ndarray]:
    """Per case the linear-scale sum of ``value`` over its files and the file count, on the
    sorted gene ids of the first file (every later file must carry them all)."""
    gene_ids: np.ndarray | None = None
    sums: dict[str, np.ndarray] = {}
    n_files: dict[str, int] = {}
    for file_id, file_name, case in tqdm(
        list(zip(use["File ID"], use["File Name"], use["Case ID"], strict=True)),
        desc="RNA-seq files",
        unit="file",
        disable=None if show_progress else True,
    ):
        path = _locate(rna_dir, file_id, file_name)
        if path is None:
            counts["missing_files"] += 1
            log.warning(
                "RNA file %s/%s listed in the sample sheet is not in %s; skipped",
                file_id,
                file_name,
                rna_dir,
            )
            continue
        df = read_star_counts(path)
        if gene_types is not None:
            df = df[df["gene_type"].isin(list(gene_types))]
        series = df.set_index("gene_id")[value]
        if gene_ids is None:
            gene_ids = np.sort(series.index.to_numpy(dtype=str))
            if gene_ids.size == 0:
                raise InputError(
                    f"{path}: no gene of type(s) {list(gene_types or [])}", hint="check gene_types"
                )
        missing = np.setdiff1d(gene_ids, series.index.to_numpy(dtype=str))
        if missing.size:
            raise InputError(
                f"{path}: {missing.size} gene(s) of the first file missing, e.g. {missing[0]}",
                hint="all files must come from the same GDC release (same gene model)",
            )
        vec = series.reindex(gene_ids).to_numpy(dtype=np.float64)
        sums[case] = sums.get(case, 0.0) + vec
        n_files[case] = n_files.get(case, 0) + 1
    if not sums:
        raise InputError(
            f"{rna_dir}: none of the {len(use)} RNA files of the sample sheet found",
            hint="rna_dir must hold <File ID>/<File Name> as the GDC client downloads them",
        )
    return sums, n_files, gene_ids


def build_rna_matrix(
    sample_sheet: str | os.PathLike,
    rna_dir: str | os.PathLike,
    value: str = "tpm_unstranded",
    gene_types: Sequence[str] | None = ("protein_coding",),
    case_ids: Iterable[str] | None = None,
    stats: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> RnaMatrix:
    """One ``log1p(value)`` row per case from a GDC STAR-counts download.

    Per case, the ``Primary Tumor`` files are used (another tumour sample type only when there
    is no primary one; normal samples never); several files are averaged in linear scale
    before ``log1p``. Genes are those of ``gene_types`` (all when None), in sorted ``gene_id``
    order; every file must carry them all.

    Parameters
    ----------
    sample_sheet, rna_dir : path-like
        GDC sample sheet and the folder holding ``<File ID>/<File Name>`` (or the files flat).
    value : str
        Column to use, one of ``unstranded`` ... ``fpkm_uq_unstranded``.
    case_ids : iterable of str, optional
        Cases with a clinical record; files of other cases are dropped and counted (logged).
    stats : dict, optional
        Filled with counts: ``files``, ``used_files``, ``no_clinical_files``, ``missing_files``,
        ``normal_only_cases``, ``cases``, ``genes``.

    Returns
    -------
    RnaMatrix
        ``case_ids`` (P,), ``matrix`` (P, G) float32, ``gene_ids`` (G,).
    """
    if value not in VALUE_COLUMNS:
        raise InputError(
            f"RNA value column {value!r} is not one of {list(VALUE_COLUMNS)}",
            hint="use tpm_unstranded (default)",
        )
    rna_dir = Path(rna_dir)
    sheet = read_sample_sheet(sample_sheet)
    counts = {
        "files": len(sheet),
        "no_clinical_files": 0,
        "missing_files": 0,
        "normal_only_cases": 0,
    }
    if case_ids is not None:
        sheet = _drop_unknown_cases(sheet, case_ids, counts)
    use = _tumour_files(sheet, sample_sheet, counts)
    sums, n_files, gene_ids = _sum_per_case(use, rna_dir, value, gene_types, counts, show_progress)
    cases = np.array(sorted(sums), dtype=object)
    matrix = np.stack([np.log1p(np.maximum(sums[c] / n_files[c], 0.0)) for c in cases])
    counts.update(
        used_files=int(sum(n_files.values())),
        cases=len(cases),
        genes=int(len(gene_ids)),
        multi_file_cases=sum(v > 1 for v in n_files.values()),
    )
    log.info(
        "RNA matrix: %d cases x %d genes from %d files (%d dropped: no clinical record, "
        "%d missing on disk, %d normal-only cases)",
        len(cases),
        len(gene_ids),
        counts["used_files"],
        counts["no_clinical_files"],
        counts["missing_files"],
        counts["normal_only_cases"],
    )
    if stats is not None:
        stats.update(counts)
    return RnaMatrix(cases, matrix.astype(np.float32), np.asarray(gene_ids, dtype=object))


def extract_rna_features(
    sample_sheet: str | os.PathLike,
    rna_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    case_ids: Iterable[str] | None = None,
    value: str = "tpm_unstranded",
    gene_types: Sequence[str] | None = ("protein_coding",),
    show_progress: bool = True,
) -> dict[str, Any]:
    """:func:`build_rna_matrix` -> ``rna`` feature Parquet; the gene ids go into metadata."""
    from amc.data.store import write_features

    stats: dict[str, Any] = {}
    cases, matrix, genes = build_rna_matrix(
        sample_sheet,
        rna_dir,
        value=value,
        gene_types=gene_types,
        case_ids=case_ids,
        stats=stats,
        show_progress=show_progress,
    )
    meta = {
        "extractor": "amc.features.rnaseq.extract_rna_features",
        "modality": "rna",
        "params": {"value": value, "gene_types": list(gene_types or []), "transform": "log1p"},
        "encoder": {"name": "log1p-" + value, "version": "1"},
        "gene_ids": [str(g) for g in genes],
        "stats": stats,
    }
    write_features(out_path, list(cases), matrix, metadata=meta)
    return {**stats, "path": str(out_path)}
