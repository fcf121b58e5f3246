"""Column layouts of raw file formats that both a reader (``amc.features``) and a synthetic
writer (``amc.synthetic``) follow, defined once so the two cannot drift apart."""

from __future__ import annotations

from amc.config_sources import STAR_VALUE_COLUMNS

#: Columns of a GDC STAR gene-counts TSV (``augmented_star_gene_counts``), in file order: three
#: gene annotations, then the value columns (counts, TPM, FPKM).
STAR_COLUMNS = ("gene_id", "gene_name", "gene_type", *STAR_VALUE_COLUMNS)
