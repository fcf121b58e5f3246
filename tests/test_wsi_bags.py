"""The ``wsi: bag`` encoder option: patch bags from the WSI table feed the query-token encoder
(with a padding mask) on a small synthetic TCGA cohort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amc.data.bags import Bag, read_bags
from amc.data.cohort import load_cohort
from amc.data.splits import make_splits
from amc.data.store import write_features, write_table
from amc.errors import InputError
from amc.features.tcga import find_tcga_slides, load_clinical
from amc.synthetic.tcga import generate_tcga_cohort
from amc.training.loop import TrainSettings, fit_preprocessing, model_inputs, predict, train_model
from amc.wsi import PatchEncoder, assemble_wsi_table, extract_slide_features


class MeanColour(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)  # (B, 6)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    raw = root / "raw"
    generate_tcga_cohort(
        raw,
        projects=["UCEC"],
        cases_per_project=16,
        slide_size=(512, 512),
        n_genes=50,
        n_jobs=1,
        show_progress=False,
    )
    labels = root / "labels.parquet"
    write_table(load_clinical(raw / "clinical.tsv"), labels, {})
    prep = {"input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3, "device": torch.device("cpu")}
    enc = PatchEncoder(MeanColour(), prep, 6, {"name": "mean-colour"})
    summary = extract_slide_features(
        find_tcga_slides(raw / "slides"),
        root / "per_slide",
        enc,
        patch_size=64,
        max_patches=5,
        num_workers=0,
        show_progress=False,
    )
    wsi = root / "wsi.parquet"
    assemble_wsi_table(root / "per_slide", wsi, slides=summary["outputs"])
    ids = load_clinical(raw / "clinical.tsv")["patient_id"].to_numpy()
    rna = root / "rna.parquet"
    write_features(rna, ids, np.random.default_rng(0).normal(size=(len(ids), 8)), {})
    return {"wsi": wsi, "rna": rna}, labels


def test_read_bags_pads_and_masks(tables):
    files, _ = tables
    ids, bags, mask = read_bags(files["wsi"])
    longest = int(mask.sum(axis=1).max())  # 5 patches per slide, some patients have 2 slides
    assert longest in (5, 10)
    assert bags.shape == (len(ids), longest, 6) and mask.shape == (len(ids), longest)
    assert mask.any(axis=1).all() and (bags[~mask] == 0).all()
    with pytest.raises(InputError, match="rna.parquet: no 'patches' bag column"):
        read_bags(files["rna"])


def test_bag_encoder_trains_on_the_synthetic_cohort(tables):
    files, labels = tables
    cohort = load_cohort(files, labels, "survival", bags=["wsi"], drop_unmatched=True)
    assert "wsi" in cohort.bags and cohort.bags["wsi"][0].shape[0] == len(cohort)
    sub = cohort.subset(np.arange(3))
    assert sub.bags["wsi"][0].shape[0] == 3
    inputs = model_inputs(cohort, fit_preprocessing(cohort, np.arange(len(cohort))))
    assert isinstance(inputs["wsi"], Bag)
    bag, mask = inputs["wsi"]
    assert bag.shape == (len(cohort), *cohort.bags["wsi"][0].shape[1:]) and bag.shape[2] == 6
    assert mask.dtype == torch.bool
    absent = ~cohort.present[:, cohort.modalities.index("wsi")]
    assert not mask[torch.from_numpy(absent)].any()  # absent patient: empty bag
    assert inputs["wsi"][torch.arange(2)][0].shape == (2, *bag.shape[1:])

    splits = make_splits(cohort.patient_ids, cohort.strata, [0])
    split = splits.set_index("patient_id").loc[cohort.patient_ids.astype(str), "split"]
    model = dict(hidden=16, heads=2, layers=2, tokens=4, experts=2, top_k=1, encoder_layers=1)
    settings = TrainSettings(epochs=3, warmup_epochs=1, batch_size=16, patience=5)
    ckpt = train_model(
        cohort, split.to_numpy(), {**model, "encoders": {"wsi": "bag"}}, settings, seed=0
    )
    out = predict(ckpt, cohort, device="cpu")
    assert np.isfinite(out["risk"]).all() and out["importance"].shape == (len(cohort), 2)
