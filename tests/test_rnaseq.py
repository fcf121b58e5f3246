"""GDC STAR gene-count reader and the RNA matrix builder."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from amc.data.store import read_features, read_metadata
from amc.errors import InputError
from amc.features.rnaseq import build_rna_matrix, extract_rna_features, read_star_counts

HEADER = (
    "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\t"
    "tpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded"
)
N_ROWS = (
    "N_unmapped\t\t\t100\t100\t100\t\t\t\nN_multimapping\t\t\t20\t20\t20\t\t\t\n"
    "N_noFeature\t\t\t30\t31\t32\t\t\t\nN_ambiguous\t\t\t4\t4\t4\t\t\t"
)
GENES = [  # id, name, type
    ("ENSG00000000003.15", "TSPAN6", "protein_coding"),
    ("ENSG00000000005.6", "TNMD", "protein_coding"),
    ("ENSG00000000419.13", "DPM1", "protein_coding"),
    ("ENSG00000000457.14", "LINC0001", "lncRNA"),
    ("ENSG00000000460.17", "MIR1", "miRNA"),
]


def star_text(tpm: list[float]) -> str:
    rows = [
        f"{g}\t{n}\t{t}\t{int(v * 10)}\t1\t{int(v * 10) - 1}\t{v:.4f}\t{v / 3:.4f}\t{v / 2:.4f}"
        for (g, n, t), v in zip(GENES, tpm, strict=True)
    ]
    return "# gene-model: GENCODE v36\n" + HEADER + "\n" + N_ROWS + "\n" + "\n".join(rows) + "\n"


def write_star(root, file_id: str, tpm: list[float]) -> str:
    name = f"{file_id}-x.rna_seq.augmented_star_gene_counts.tsv"
    (root / file_id).mkdir(parents=True)
    (root / file_id / name).write_text(star_text(tpm))
    return name


def test_read_star_counts_skips_summary_rows(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text(star_text([10, 20, 30, 40, 50]))
    df = read_star_counts(path)
    assert df["gene_id"].tolist() == [g for g, _, _ in GENES]  # no N_* rows
    assert not df["gene_id"].str.startswith("N_").any()
    assert df["unstranded"].dtype == np.int64
    assert df["tpm_unstranded"].tolist() == [10, 20, 30, 40, 50]
    assert df.loc[3, "gene_type"] == "lncRNA"


@pytest.mark.parametrize(
    "content, message",
    [
        ("# gene-model: GENCODE v36\ngene_id\tgene_name\tcounts\nENSG1\tA\t3\n", "missing column"),
        (star_text([1, 2, 3, 4, 5]).replace("\t2.0000\t", "\tNA\t"), "non-numeric tpm"),
        ("", "not a readable STAR"),
        ("# gene-model: GENCODE v36\n" + HEADER + "\n" + N_ROWS + "\n", "no gene rows"),
    ],
)
def test_read_star_counts_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken_file.tsv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_star_counts(path)
    assert "broken_file.tsv" in str(err.value)


def test_build_rna_matrix(tmp_path, caplog):
    rna = tmp_path / "rna"
    rows = []

    def add(case, sample, stype, tpm):
        fid = f"f{len(rows)}"
        rows.append(
            {
                "File ID": fid,
                "File Name": write_star(rna, fid, tpm),
                "Data Category": "Transcriptome Profiling",
                "Data Type": "Gene Expression Quantification",
                "Project ID": "TCGA-UCEC",
                "Case ID": case,
                "Sample ID": f"{case}-{sample}",
                "Sample Type": stype,
            }
        )

    add("TCGA-AA-0002", "01A", "Primary Tumor", [1, 2, 3, 4, 5])
    add("TCGA-AA-0002", "11A", "Solid Tissue Normal", [900, 900, 900, 900, 900])
    add("TCGA-AA-0001", "01A", "Primary Tumor", [10, 0, 30, 4, 5])
    add("TCGA-AA-0001", "01B", "Primary Tumor", [30, 4, 10, 4, 5])  # averaged with 01A
    add("TCGA-AA-0003", "01A", "Primary Tumor", [7, 7, 7, 7, 7])  # no clinical record
    add("TCGA-AA-0004", "11A", "Solid Tissue Normal", [5, 5, 5, 5, 5])  # no tumour sample
    sheet = tmp_path / "gdc_sample_sheet.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)

    stats: dict = {}
    with caplog.at_level(logging.WARNING):
        cases, matrix, genes = build_rna_matrix(
            sheet,
            rna,
            case_ids=["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0004"],
            stats=stats,
            show_progress=False,
        )
    assert cases.tolist() == ["TCGA-AA-0001", "TCGA-AA-0002"]
    # protein-coding only, sorted gene ids
    assert genes.tolist() == sorted(g for g, _, t in GENES if t == "protein_coding")
    order = [g for g, _, _ in GENES[:3]]
    idx = [order.index(g) for g in genes]
    expected_1 = np.log1p(np.array([20.0, 2.0, 20.0]))[idx]  # mean of the two primaries
    expected_2 = np.log1p(np.array([1.0, 2.0, 3.0]))[idx]  # the normal sample is ignored
    np.testing.assert_allclose(matrix, np.stack([expected_1, expected_2]), rtol=1e-6)
    assert matrix.dtype == np.float32
    assert stats["no_clinical_files"] == 1 and stats["normal_only_cases"] == 1
    assert stats["used_files"] == 3 and stats["multi_file_cases"] == 1
    assert "no clinical record dropped" in caplog.text and "TCGA-AA-0003" in caplog.text

    # all gene types, another value column
    _, m_all, g_all = build_rna_matrix(
        sheet, rna, value="unstranded", gene_types=None, show_progress=False
    )
    assert len(g_all) == 5 and m_all.shape == (3, 5)  # cases 1-3; normal-only 4 skipped

    out = tmp_path / "rna.parquet"
    extract_rna_features(
        sheet, rna, out, case_ids=["TCGA-AA-0001", "TCGA-AA-0002"], show_progress=False
    )
    ids, feats, meta = read_features(out)
    assert ids.tolist() == ["TCGA-AA-0001", "TCGA-AA-0002"]
    np.testing.assert_allclose(feats, matrix, rtol=1e-6)
    assert read_metadata(out)["gene_ids"] == genes.tolist()

    with pytest.raises(InputError, match="value column"):
        build_rna_matrix(sheet, rna, value="counts")
    bad_sheet = tmp_path / "sheet2.tsv"
    pd.DataFrame(rows).drop(columns=["Case ID"]).to_csv(bad_sheet, sep="\t", index=False)
    with pytest.raises(InputError, match="sheet2.tsv: missing column"):
        build_rna_matrix(bad_sheet, rna)
