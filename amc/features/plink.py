"""Memory-bounded readers for PLINK genotypes: binary ``.bed/.bim/.fam`` and ``.raw`` text.

Binary filesets (what ADNI ships) are read by :func:`read_plink_bed` with the ``bed-reader``
library; :func:`read_plink` picks the reader by file name. The rest of this docstring describes
the ``.raw`` text reader.

Format (space or tab separated, one header line, one line per sample)::

    FID IID PAT MAT SEX PHENOTYPE rs429358_C rs7412_T ...
    011_S_0002 011_S_0002 0 0 1 -9 0 1 ...

Dosages are counts of the named allele (0/1/2, or fractional dosages from PLINK 2), ``NA`` for a
missing call. ADNI's genotype release has 135,595 variants for about 1,600 subjects: a naive
``pandas.read_csv`` holds the text, one Python/pandas column per variant and float64 copies, i.e.
several times the size of the result. :func:`read_plink_raw` instead

1. scans the file once for the sample ids (first two fields of each line, nothing else kept),
2. allocates the output ``(P, V)`` float32 array once (``P`` = kept samples),
3. streams the file line by line and parses each line's dosage part straight into its row with
   NumPy's C text parser (``NA`` becomes NaN).

Peak memory is therefore the output plus one line of text and one float32 row
(``benchmarks/plink_memory.py`` measures it).

Missing calls stay NaN here (the reader is faithful to the file); what to do with them is the
feature extractor's decision (:func:`amc.features.adni.extract_genomic`).
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm.auto import tqdm

from amc.errors import InputError

logger = logging.getLogger(__name__)

#: The six leading columns of a PLINK ``.raw`` file, in order.
RAW_ID_COLUMNS = ("FID", "IID", "PAT", "MAT", "SEX", "PHENOTYPE")


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) of the data lines (after the header), blank lines skipped."""
    with _open(path) as fh:
        fh.readline()
        for lineno, line in enumerate(fh, start=2):
            if line.strip():
                yield lineno, line


def read_plink_header(path: str | os.PathLike) -> list[str]:
    """Variant column names of a PLINK ``.raw`` file, validating the header.

    Raises
    ------
    InputError
        Missing or empty file, or a header that does not start with
        ``FID IID PAT MAT SEX PHENOTYPE`` followed by at least one variant column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: PLINK .raw file not found", hint="check the genotype path")
    try:
        with _open(path) as fh:
            header = fh.readline().decode("utf-8", errors="replace").split()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read PLINK .raw file ({exc})") from exc
    if tuple(header[:6]) != RAW_ID_COLUMNS:
        raise InputError(
            f"{path}: malformed PLINK .raw header; expected it to start with "
            f"{' '.join(RAW_ID_COLUMNS)}, found {' '.join(header[:6])!r}",
            hint="export genotypes with `plink --recode A` (or plink2 --export A)",
        )
    variants = header[6:]
    if not variants:
        raise InputError(f"{path}: PLINK .raw header has no variant columns")
    if len(set(variants)) != len(variants):
        seen: set[str] = set()
        dup = next(v for v in variants if v in seen or seen.add(v))
        logger.warning("%s: duplicate variant column %r (kept, columns are positional)", path, dup)
    return variants


def _raw_sample_ids(
    path: Path, id_field: int, id_column: str, wanted: set[str] | None
) -> tuple[list[str], set[int], int]:
    """First pass over a ``.raw`` file, ids only: the kept ids (file order), their line
    numbers and the number of samples in the file; a duplicated id raises."""
    ids: list[str] = []
    keep_lines: set[int] = set()
    seen: set[str] = set()
    for lineno, line in _lines(path):
        fields = line.split(maxsplit=2)
        if len(fields) < 2:
            raise InputError(f"{path}: line {lineno} has fewer than 2 fields")
        pid = fields[id_field].decode("utf-8", errors="replace")
        if pid in seen:
            raise InputError(
                f"{path}: sample {pid!r} appears twice ({id_column}, line {lineno})",
                hint="one line per sample",
            )
        seen.add(pid)
        if wanted is None or pid in wanted:
            ids.append(pid)
            keep_lines.add(lineno)
    return ids, keep_lines, len(seen)


def _fill_raw_dosages(
    path: Path,
    ids: list[str],
    keep_lines: set[int],
    n_lines: int,
    n_all: int,
    col_idx: np.ndarray | None,
    out: np.ndarray,
) -> None:
    """Second pass: parse the dosages of the kept lines row by row into ``out`` (P, V), in
    place; ``n_all`` is the header's variant count, ``col_idx`` the selected columns."""
    row = 0
    for lineno, line in tqdm(
        _lines(path), total=n_lines, desc=f"PLINK {path.name}", unit="sample", disable=None
    ):
        if lineno not in keep_lines:
            continue
        parts = line.split(maxsplit=6)
        if len(parts) < 7:
            raise InputError(f"{path}: line {lineno} ({ids[row]}) has no dosage fields")
        text = parts[6].replace(b"NA", b"nan")
        try:
            values = np.fromstring(text, dtype=np.float32, sep=" ")  # C parser, no Python floats
        except ValueError as exc:
            raise InputError(
                f"{path}: line {lineno} ({ids[row]}): non-numeric dosage",
                hint="dosages must be numbers or NA",
            ) from exc
        if values.size != n_all:
            raise InputError(
                f"{path}: line {lineno} ({ids[row]}) has {values.size} dosages, header has "
                f"{n_all} variants",
                hint="the file is truncated or was edited; re-export it with plink",
            )
        out[row] = values if col_idx is None else values[col_idx]
        row += 1


def read_plink_raw(
    path: str | os.PathLike,
    patient_ids: Iterable[str] | None = None,
    variants: Sequence[str] | None = None,
    id_column: str = "IID",
    pad_columns: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read dosages from a PLINK ``.raw`` file with memory bounded by the output size.

    Parameters
    ----------
    path
        ``.raw`` (or ``.raw.gz``) file written by ``plink --recode A``.
    patient_ids
        Keep only these samples (matched on ``id_column``); ``None`` keeps all. Ids not in the
        file are simply absent from the result.
    variants
        Keep only these variant columns (names as in the header, e.g. ``rs429358_C``), in the
        given order; ``None`` keeps all.
    id_column
        ``"IID"`` (default) or ``"FID"``: which field is the patient id.
    pad_columns
        Extra zero columns allocated after the V dosage columns (not named in
        ``variant_names``), so a caller can append per-sample features without copying the
        ``(P, V)`` array. Default 0.

    Returns
    -------
    ids : np.ndarray
        (P,) object array of str, in file order.
    dosages : np.ndarray
        (P, V + pad_columns) float32; NaN where the call is missing (``NA``).
    variant_names : list of str
        (V,) column names.

    Raises
    ------
    InputError
        Malformed header, a line with the wrong number of fields or a non-numeric dosage (the
        message names the line and sample), a duplicated sample id, unknown requested variants.
    """
    path = Path(path)
    names = read_plink_header(path)
    if id_column not in ("IID", "FID"):
        raise InputError(f"id_column={id_column!r}", hint="use 'IID' or 'FID'")
    id_field = 1 if id_column == "IID" else 0
    col_idx: np.ndarray | None = None
    if variants is not None:
        col_idx, names = _variant_columns(names, variants, path, "the header")
    wanted = None if patient_ids is None else {str(p) for p in patient_ids}

    ids, keep_lines, n_lines = _raw_sample_ids(path, id_field, id_column, wanted)
    n_all = len(read_plink_header(path))
    if pad_columns < 0:
        raise InputError(f"pad_columns={pad_columns}", hint="must be >= 0")
    n_var = len(names)
    out = np.empty((len(ids), n_var + pad_columns), dtype=np.float32)
    out[:, n_var:] = 0.0
    _fill_raw_dosages(path, ids, keep_lines, n_lines, n_all, col_idx, out[:, :n_var])
    logger.info("%s: %d samples x %d variants read", path, out.shape[0], n_var)
    return np.asarray(ids, dtype=object), out, names


# --------------------------------------------------------------------------------------------
# binary PLINK (.bed / .bim / .fam)
# --------------------------------------------------------------------------------------------
def _bed_files(path: Path) -> tuple[Path, Path, Path]:
    bed = path if path.suffix == ".bed" else path.with_suffix(".bed")
    files = (bed, bed.with_suffix(".bim"), bed.with_suffix(".fam"))
    for f in files:
        if not f.is_file():
            raise InputError(
                f"{f}: PLINK file not found (a .bed needs its .bim and .fam next to it)",
                hint="give the .bed of a complete PLINK 1 binary fileset (plink --make-bed)",
            )
    return files


def read_plink_bed(
    path: str | os.PathLike,
    patient_ids: Iterable[str] | None = None,
    variants: Sequence[str] | None = None,
    id_column: str = "IID",
    pad_columns: int = 0,
    block_variants: int = 8192,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read A1-allele dosages from a binary PLINK ``.bed`` / ``.bim`` / ``.fam`` fileset.

    Same contract as :func:`read_plink_raw` (``plink --recode A`` counts A1, so a ``.bed`` and
    the ``.raw`` exported from it give the same array; variant names are ``<rsid>_<A1>``).
    Read with ``bed-reader`` in blocks of ``block_variants`` variants written straight into the
    preallocated ``(P, V + pad_columns)`` float32 output: peak memory is the output plus one
    ``(P, block_variants)`` block.
    """
    from bed_reader import open_bed

    bed, bim, fam = _bed_files(Path(path))
    if id_column not in ("IID", "FID"):
        raise InputError(f"id_column={id_column!r}", hint="use 'IID' or 'FID'")
    if pad_columns < 0:
        raise InputError(f"pad_columns={pad_columns}", hint="must be >= 0")
    try:
        reader = open_bed(bed, count_A1=True, num_threads=1)
        sample_ids = np.asarray(reader.iid if id_column == "IID" else reader.fid).astype(str)
        names_all = [f"{s}_{a}" for s, a in zip(reader.sid, reader.allele_1, strict=True)]
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{bed}: unreadable PLINK fileset ({exc})", hint="re-export it") from exc
    dup = _first_duplicate(sample_ids)
    if dup is not None:
        raise InputError(f"{fam}: sample {dup!r} appears twice ({id_column})")
    rows = np.arange(len(sample_ids))
    if patient_ids is not None:
        wanted = {str(p) for p in patient_ids}
        rows = np.flatnonzero(np.isin(sample_ids, list(wanted)))
    cols = np.arange(len(names_all))
    names = names_all
    if variants is not None:
        cols, names = _variant_columns(names_all, variants, bim, "the fileset")
    out = np.empty((len(rows), len(cols) + pad_columns), dtype=np.float32)
    out[:, len(cols) :] = 0.0
    step = max(1, int(block_variants))
    try:
        for start in tqdm(range(0, len(cols), step), desc=f"PLINK {bed.name}", disable=None):
            block = cols[start : start + step]
            out[:, start : start + len(block)] = reader.read(
                index=np.s_[rows, block], dtype="float32", order="C", num_threads=1
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{bed}: corrupt or truncated .bed ({exc})", hint="re-export it") from exc
    finally:
        reader.__exit__(None, None, None)  # releases the file handle
    logger.info("%s: %d samples x %d variants read", bed, out.shape[0], len(names))
    return sample_ids[rows].astype(object), out, names


def _first_duplicate(values: np.ndarray) -> str | None:
    """The first value that occurs twice, or ``None``."""
    seen: set[str] = set()
    for v in values.tolist():
        if v in seen:
            return str(v)
        seen.add(v)
    return None


def read_plink(
    path: str | os.PathLike,
    patient_ids: Iterable[str] | None = None,
    variants: Sequence[str] | None = None,
    id_column: str = "IID",
    pad_columns: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Dosages from a ``.bed`` fileset (:func:`read_plink_bed`) or a ``.raw`` / ``.raw.gz`` file
    (:func:`read_plink_raw`), chosen by the file name."""
    p = Path(path)
    reader = read_plink_bed if p.suffix in (".bed", ".bim", ".fam") else read_plink_raw
    return reader(p, patient_ids, variants, id_column=id_column, pad_columns=pad_columns)


def _variant_columns(
    names: list[str], variants: list[str], path: Any, where: str
) -> tuple[np.ndarray, list[str]]:
    """Column index of each requested variant (first match by name) and the requested names;
    an unknown name is an error naming ``path``."""
    pos = {v: i for i, v in reversed(list(enumerate(names)))}
    unknown = [v for v in variants if v not in pos]
    if unknown:
        raise InputError(
            f"{path}: {len(unknown)} requested variant(s) not in {where}, e.g. {unknown[0]!r}",
            hint="variant names are '<rsid>_<counted allele>' as in a .raw header",
        )
    return np.array([pos[v] for v in variants], dtype=np.int64), list(variants)
