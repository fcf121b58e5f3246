"""Synthetic TCGA cohort in the GDC download layout.

Writes, for each project, cases with up to three modalities in the formats the real GDC ships:

- ``slides/<case_id>/<slide_barcode>.tif``: pyramidal tiled TIFF, JPEG tiles, each pyramid level a
  separate top-level page, Aperio-style ImageDescription on page 0 (OpenSlide reports
  ``openslide.mpp-x`` = 0.5 and ``openslide.objective-power`` = 20).
- ``reports/<case_id>.txt``: pathology report free text.
- ``rna/<file_id>/<file_name>``: GDC STAR gene counts TSV (``augmented_star_gene_counts``), plus
  ``gdc_sample_sheet.tsv`` mapping files to cases and samples.
- ``clinical.tsv``: GDC clinical export (``case_id, case_submitter_id, project_id, vital_status,
  days_to_death, days_to_last_follow_up, ...``, ``'--`` for missing, one row per treatment).
- ``quality.csv``: per patient and modality the generator's quality in [0, 1] and the corruption
  applied (for analysis only; training never reads it) and ``README.txt``.

Every case has a latent risk ``r ~ N(0, 1)``. Survival times are Weibull with hazard scaled by
``exp(beta * r)`` and uniformly censored. Each modality sees ``q * r + sqrt(1 - q^2) * eps``,
where ``q`` is the case's quality for that modality (drawn per project, as in Figure 1 of the
paper), and carries visible corruptions when ``q`` is low (blurred slides, pen marks, stain shift,
nearly no tissue; boilerplate or garbled reports; shallow or batch-shifted RNA libraries).
Some cases miss a modality entirely. Generation is seeded and deterministic.
"""

from amc.data.formats import STAR_COLUMNS
from amc.synthetic.tcga.cohort import generate_tcga_cohort
from amc.synthetic.tcga.profiles import MODALITIES, SAMPLE_SHEET_COLUMNS
from amc.synthetic.tcga.rna import write_star_counts
from amc.synthetic.tcga.slides import (
    _SlideSpec,
    aperio_description,
    render_slide,
    write_pyramid_tiff,
    write_pyramid_tiff_tiled,
)

__all__ = [
    "MODALITIES",
    "SAMPLE_SHEET_COLUMNS",
    "STAR_COLUMNS",
    "_SlideSpec",
    "aperio_description",
    "generate_tcga_cohort",
    "render_slide",
    "write_pyramid_tiff",
    "write_pyramid_tiff_tiled",
    "write_star_counts",
]
