"""Binary PLINK (.bed/.bim/.fam) reading: same dosages as the .raw export of the same data."""

from __future__ import annotations

from pathlib import Path

import bed_reader
import numpy as np
import pytest

from amc.errors import InputError
from amc.features.adni import extract_genomic
from amc.features.plink import read_plink, read_plink_bed, read_plink_raw


def _write_raw(path: Path, iids: list[str], names: list[str], dos: np.ndarray) -> None:
    lines = [" ".join(["FID", "IID", "PAT", "MAT", "SEX", "PHENOTYPE", *names])]
    for iid, row in zip(iids, dos, strict=True):
        vals = ["NA" if np.isnan(v) else str(int(v)) for v in row]
        lines.append(" ".join([iid, iid, "0", "0", "1", "-9", *vals]))
    path.write_text("\n".join(lines) + "\n")


def _hand_encoded_bed(root: Path) -> Path:
    """A 3-sample x 2-variant fileset written byte by byte (PLINK 1 SNP-major format).

    Per sample, 2 bits, low bits first: 00 = homozygous A1 (dosage 2), 01 = missing,
    10 = heterozygous (1), 11 = homozygous A2 (0).
    """
    (root / "h.fam").write_text("F1 S1 0 0 1 -9\nF2 S2 0 0 2 -9\nF3 S3 0 0 1 -9\n")
    (root / "h.bim").write_text("19\trs429358\t0\t44908684\tC\tT\n19\trs7412\t0\t44908822\tT\tC\n")
    # variant 1: S1=2 (00), S2=1 (10), S3=missing (01) -> 0b00_01_10_00 = 0x18
    # variant 2: S1=0 (11), S2=0 (11), S3=2 (00)      -> 0b00_00_11_11 = 0x0F
    (root / "h.bed").write_bytes(bytes([0x6C, 0x1B, 0x01, 0x18, 0x0F]))
    return root / "h.bed"


def test_hand_encoded_bed_reads_the_a1_dosages(tmp_path: Path) -> None:
    ids, dos, names = read_plink_bed(_hand_encoded_bed(tmp_path))
    assert ids.tolist() == ["S1", "S2", "S3"]
    assert names == ["rs429358_C", "rs7412_T"]
    expected = np.array([[2, 0], [1, 0], [np.nan, 2]], dtype=np.float32)
    np.testing.assert_array_equal(dos, expected)
    assert dos.dtype == np.float32


def test_bed_and_raw_give_the_same_dosages(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, v = 23, 37
    dos = rng.integers(0, 3, (n, v)).astype(np.float32)
    dos[rng.random((n, v)) < 0.05] = np.nan
    iids = [f"{k:03d}_S_{k:04d}" for k in range(n)]
    sids = [f"rs{1000 + k}" for k in range(v)]
    a1 = rng.choice(list("ACGT"), v).tolist()
    bed_reader.to_bed(
        tmp_path / "g.bed",
        dos,
        properties={"fid": iids, "iid": iids, "sid": sids, "allele_1": a1, "allele_2": ["N"] * v},
    )
    names = [f"{s}_{a}" for s, a in zip(sids, a1, strict=True)]
    _write_raw(tmp_path / "g.raw", iids, names, dos)
    keep = iids[::3]
    some = names[5:9]
    for kwargs in ({}, {"patient_ids": keep, "variants": some, "pad_columns": 1}):
        a = read_plink(tmp_path / "g.bed", **kwargs)
        b = read_plink_raw(tmp_path / "g.raw", **kwargs)
        assert a[0].tolist() == b[0].tolist() and a[2] == b[2]
        np.testing.assert_array_equal(a[1], b[1])
    # a small block size streams the variants and changes nothing
    small = read_plink_bed(tmp_path / "g.bed", block_variants=4)
    np.testing.assert_array_equal(small[1], read_plink_raw(tmp_path / "g.raw")[1])
    # the genomic features are identical from either format
    fa, fb = extract_genomic(tmp_path / "g.bed"), extract_genomic(tmp_path / "g.raw")
    np.testing.assert_array_equal(fa[1], fb[1])
    assert fa[2] == fb[2]


def test_incomplete_or_corrupt_fileset_names_the_file(tmp_path: Path) -> None:
    bed = _hand_encoded_bed(tmp_path)
    (tmp_path / "h.bim").unlink()
    with pytest.raises(InputError, match=r"h\.bim"):
        read_plink_bed(bed)
    bed = _hand_encoded_bed(tmp_path)
    bed.write_bytes(b"not a bed file")
    with pytest.raises(InputError, match=r"h\.bed"):
        read_plink_bed(bed)
