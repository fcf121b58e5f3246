"""extract@tcga-wsi end to end on a tiny synthetic cohort: every registered encoder family with
random weights in a local file, the per-slide HDF5 files, a replaced slide, the Ray engine."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from amc.data.store import read_features, read_metadata
from amc.synthetic.tcga import generate_tcga_cohort
from stages import extract
from tests.test_wsi_encoders import (
    TINY_CONCH,
    TINY_VIT,
    conch_public_shapes,
    random_state,
    resnet50_public_shapes,
    timm_vit_shapes,
)

REPO_PARAMS = yaml.safe_load(open(Path(__file__).resolve().parents[1] / "params.yaml"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcga")
    generate_tcga_cohort(
        root / "raw",
        projects=["UCEC"],
        cases_per_project=3,
        slide_size=(512, 512),
        n_genes=50,
        n_jobs=1,
        show_progress=False,
    )
    return root / "raw"


def run_wsi_stage(cohort, workdir, monkeypatch, **wsi) -> dict:
    """Run ``extract tcga wsi`` in ``workdir`` with small patches; returns the table meta."""
    params = yaml.safe_load(yaml.safe_dump(REPO_PARAMS))
    params["sources"]["tcga"]["raw"] = str(cohort)
    params["sources"]["tcga"]["wsi"].update(
        target_mpp=0.5, patch_size=64, max_patches=3, num_workers=0, batch_size=4, device="cpu"
    )
    params["sources"]["tcga"]["wsi"].update(wsi)
    workdir.mkdir(exist_ok=True)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(workdir)
    extract.main(["tcga", "wsi"])
    return read_metadata(workdir / "data/features/tcga/wsi.parquet")


def per_slide_files(workdir) -> list:
    return sorted((workdir / ".cache/wsi").rglob("*.h5"))


class TinyCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_every_encoder_family_end_to_end(cohort, tmp_path, monkeypatch):
    torch.manual_seed(0)
    files = {
        "resnet50_trunc": ("r50.pth", resnet50_public_shapes(), {}),
        "uni_v1": ("uni.bin", timm_vit_shapes("", 32, 2, 5, layer_scale=True), TINY_VIT),
        "conch_v1": ("conch.bin", conch_public_shapes(32, 2, 5, 16), TINY_CONCH),
    }
    expected_dim = {"resnet50_trunc": 1024, "uni_v1": 32, "conch_v1": 16}
    for name, (file, shapes, config) in files.items():
        weights = tmp_path / file
        torch.save(random_state(shapes), weights)
        meta = run_wsi_stage(
            cohort,
            tmp_path / name,
            monkeypatch,
            encoder=name,
            weights=str(weights),
            encoder_config=config,
        )
        assert meta["encoder"] == name and meta["dim"] == expected_dim[name]
        ids, feats, _ = read_features(tmp_path / name / "data/features/tcga/wsi.parquet")
        assert feats.shape == (len(ids), expected_dim[name]) and len(ids) > 0
        h5s = per_slide_files(tmp_path / name)
        assert h5s
        with h5py.File(h5s[0], "r") as f:  # what CLAM / TRIDENT users open
            assert f["features"].shape[1] == expected_dim[name]
            assert f["coords"].shape == (f["features"].shape[0], 2)
            assert f.attrs["encoder"] == name and f.attrs["mpp"] == pytest.approx(0.5)
            assert f.attrs["patch_size"] == 64 and f["coords"].attrs["patch_level"] == 0
            assert len(f.attrs["slide_sha256"]) == 16 and len(f.attrs["weights_sha256"]) == 16
    script = tmp_path / "tiny_script.pt"
    torch.jit.save(torch.jit.script(TinyCNN()), str(script))
    meta = run_wsi_stage(cohort, tmp_path / "ts", monkeypatch, encoder=str(script))
    assert meta["encoder"] == str(script) and meta["dim"] == 5


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_replaced_slide_is_embedded_again(cohort, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    shutil.copytree(cohort, raw)
    script = tmp_path / "tiny_script.pt"
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyCNN()), str(script))
    run_wsi_stage(raw, tmp_path / "w", monkeypatch, encoder=str(script), max_patches=None)
    table = tmp_path / "w/data/features/tcga/wsi.parquet"
    before = pq.read_table(table)
    slides = sorted((raw / "slides").rglob("*.tif"))
    a, b = slides[0], slides[1]
    shutil.copyfile(b, a)  # same name, another slide's content
    run_wsi_stage(raw, tmp_path / "w", monkeypatch, encoder=str(script), max_patches=None)
    after = pq.read_table(table)
    key = a.name.removesuffix(".tif")
    h5 = next(p for p in per_slide_files(tmp_path / "w") if p.stem == key)
    other = next(p for p in per_slide_files(tmp_path / "w") if p.stem == b.stem)
    with h5py.File(h5, "r") as f, h5py.File(other, "r") as g:
        np.testing.assert_array_equal(f["features"][()], g["features"][()])
        assert f.attrs["slide_sha256"] == g.attrs["slide_sha256"]
    assert not before.column("features").equals(after.column("features"))


class DieOnce(torch.nn.Module):
    """TinyCNN whose first forward pass kills its process (a killed Ray worker)."""

    def __init__(self, marker: str | None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = TinyCNN()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.marker and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return self.net(x)


def tiny_encoder(marker: str | None = None):
    from amc.wsi import PatchEncoder

    torch.manual_seed(0)
    module = DieOnce(marker).eval()
    prep = {"input_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3, "device": torch.device("cpu")}
    return PatchEncoder(module, prep, 5, {"name": "tiny", "version": 1})


def test_ray_engine_matches_local_and_survives_a_killed_worker(cohort, tmp_path, monkeypatch):
    import cloudpickle
    import ray

    from amc.features.tcga import find_tcga_slides
    from amc.wsi import assemble_wsi_table, extract_slide_features

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests
    slides = find_tcga_slides(cohort / "slides")
    common = dict(patch_size=64, max_patches=3, num_workers=0, batch_size=4, show_progress=False)
    local = extract_slide_features(slides, tmp_path / "local", tiny_encoder(), **common)
    marker = str(tmp_path / "killed-once")
    options = {"num_cpus": 1, "actors": 1, "encoder_factory": lambda: tiny_encoder(marker)}
    try:
        first = extract_slide_features(
            slides, tmp_path / "ray", tiny_encoder(), engine="ray", ray_options=options, **common
        )
        assert os.path.exists(marker)  # a worker did die, and the slide was retried
        assert first["computed"] == local["computed"] and first["patches"] == local["patches"]
        for p in sorted((tmp_path / "local").glob("*.h5")):
            assert (tmp_path / "ray" / p.name).read_bytes() != b""
            a, b = h5py.File(p, "r"), h5py.File(tmp_path / "ray" / p.name, "r")
            np.testing.assert_array_equal(a["features"][()], b["features"][()])
            np.testing.assert_array_equal(a["coords"][()], b["coords"][()])
    finally:
        ray.shutdown()
    for name in ("local", "ray"):
        assemble_wsi_table(tmp_path / name, tmp_path / f"{name}.parquet", slides=local["outputs"])
    assert (tmp_path / "local.parquet").read_bytes() == (tmp_path / "ray.parquet").read_bytes()
