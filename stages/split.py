"""split@<dataset>: 70/15/15 patient-level stratified splits, one per seed.

Usage: python -m stages.split <dataset> [--out data/splits/<dataset>.parquet]
Params: split (seeds, fractions), datasets.<dataset>.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from amc.data.cohort import check_modalities_in_splits
from amc.data.splits import check_split_has_classes, make_splits
from amc.data.store import write_table
from stages._cli import run, stage_parser
from stages._dataset import cohort_for, split_file
from stages.params import dataset_params, labels_file, load_params, modality_files

log = logging.getLogger("stages.split")


def features_fingerprint(ds: dict) -> str:
    """SHA-256 over the dataset's feature and label files (name and content)."""
    digest = hashlib.sha256()
    for name, path in sorted({**modality_files(ds), "labels": labels_file(ds)}.items()):
        digest.update(name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def main(argv: list[str]) -> None:
    parser = stage_parser("split", __doc__)
    parser.add_argument("dataset", help="a datasets.<name> item of params.yaml")
    parser.add_argument("--out", type=Path, help="output Parquet file")
    args = parser.parse_args(argv)
    ds = dataset_params(load_params(), args.dataset)
    # Split every patient with any data: a cohort that drops incomplete patients is a subset of
    # it, so each method and variant (e.g. Table 9's missing-modality run) finds its split here.
    cohort = cohort_for({**ds, "drop_incomplete": False})
    splits = make_splits(
        cohort.patient_ids, cohort.strata, ds["split"]["seeds"], tuple(ds["split"]["fractions"])
    )
    strata = dict(zip(cohort.patient_ids, cohort.strata))
    for seed, rows in splits.groupby("seed"):
        assigned = rows.set_index("patient_id")["split"].loc[cohort.patient_ids.astype(str)]
        check_modalities_in_splits(cohort, assigned.to_numpy(), f"{ds['name']} (seed {seed})")
        check_split_has_classes(
            {
                s: rows.loc[rows["split"] == s, "patient_id"].map(strata).to_numpy()
                for s in ("train", "val", "test")
            },
            f"{ds['name']} (seed {seed})",
        )
    # The feature fingerprint makes this file change whenever the features do, so stages that
    # depend on the split (rather than on the feature files, e.g. the per-method ones) re-run.
    meta = {"fractions": ds["split"]["fractions"], "features": features_fingerprint(ds)}
    out = args.out or split_file(ds["name"])
    write_table(splits, out, meta)
    log.info(
        "%s: %d patients x %d seeds -> %s", ds["name"], len(cohort), len(ds["split"]["seeds"]), out
    )


if __name__ == "__main__":
    run(main)
