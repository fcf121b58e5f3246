"""WSI features: OpenSlide access, MPP, tissue detection, patch grid, encoders, resumable bags."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image, ImageDraw

from amc.data.store import read_features
from amc.errors import InputError
from amc.features.tcga import find_tcga_slides
from amc.synthetic.tcga import _SlideSpec, render_slide, write_pyramid_tiff
from amc.wsi import (
    RESNET_BN_PAIRS,
    PatchEncoder,
    ResNet50Features,
    assemble_wsi_table,
    detect_tissue,
    extract_slide_features,
    fold_batchnorm,
    load_patch_encoder,
    open_slide,
    patch_grid,
    plan_patches,
    read_patch,
    read_slide_h5,
    slide_mpp,
    slide_thumbnail,
)


def tissue_image(seed: int, size: int = 1024) -> np.ndarray:
    return render_slide(_SlideSpec("x", seed, size, size, 0.5, (236, 160, 196), "none", 0.0))


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    root = tmp_path_factory.mktemp("slides")
    paths = {}
    for name, img, mpp, mag in [
        ("TCGA-AA-0001-01Z-00-DX1.A", tissue_image(1), 0.5, 20),
        ("TCGA-AA-0001-01Z-00-DX2.B", tissue_image(2), 0.5, 20),
        ("TCGA-AA-0002-01Z-00-DX1.C", tissue_image(3), 0.5, 20),
        ("TCGA-AA-0003-01Z-00-DX1.D", np.full((1024, 1024, 3), 243, np.uint8), 0.5, 20),
        ("nompp", tissue_image(4, 512), None, None),
        ("objective_only", tissue_image(5, 512), None, 20),
    ]:
        folder = root / name[:12]
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.tif"
        write_pyramid_tiff(path, img, mpp=mpp, app_mag=mag)
        paths[name] = path
    return paths


class CountingCNN(torch.nn.Module):
    """Tiny deterministic encoder that counts its forward calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def counting_encoder() -> PatchEncoder:
    prep = {"input_size": 64, "mean": [0.5] * 3, "std": [0.25] * 3, "device": torch.device("cpu")}
    return PatchEncoder(CountingCNN().eval(), prep, 8, {"name": "counting-cnn", "version": 1})


def h5(path) -> dict:
    """A per-slide HDF5 file as a dict of its ``features`` / ``coords`` / ``meta``."""
    feats, coords, meta = read_slide_h5(path)
    return {"features": feats, "coords": coords, "meta": meta}


def test_slide_mpp_from_properties_and_fallback(slides):
    s = open_slide(slides["TCGA-AA-0001-01Z-00-DX1.A"])
    assert s.level_count > 1
    assert slide_mpp(s) == pytest.approx(0.5)
    assert slide_mpp(open_slide(slides["objective_only"])) == pytest.approx(0.5)  # 10 / 20x
    nompp = open_slide(slides["nompp"])
    with pytest.raises(InputError, match="nompp.tif") as err:
        slide_mpp(nompp)
    assert "fallback_mpp" in str(err.value)
    assert slide_mpp(nompp, fallback_mpp=0.25) == 0.25
    with pytest.raises(InputError, match="fallback_mpp"):
        patch_grid(nompp)
    plan = plan_patches(nompp, fallback_mpp=0.25)  # 0.5 um patches = 512 level-0 pixels
    assert plan.size0 == 512 and plan.mpp == 0.25


def test_corrupt_and_missing_slide_name_the_file(tmp_path):
    bad = tmp_path / "TCGA-ZZ-0001-01Z-00-DX1.bad.tif"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(InputError, match="TCGA-ZZ-0001-01Z-00-DX1.bad.tif: cannot open slide"):
        open_slide(bad)
    with pytest.raises(InputError, match="gone.svs: slide file not found"):
        open_slide(tmp_path / "gone.svs")
    with pytest.raises(InputError, match="bad.tif"):
        extract_slide_features(
            {"TCGA-ZZ-0001": [bad]},
            tmp_path / "out",
            counting_encoder(),
            num_workers=0,
            show_progress=False,
        )


def test_tissue_detection_and_grid(slides):
    s = open_slide(slides["TCGA-AA-0001-01Z-00-DX1.A"])
    mask = detect_tissue(s, thumb_size=256, min_downsample=1)
    assert mask.shape == (256, 256)
    assert 0.05 < mask.mean() < 0.95
    coarse_mask = detect_tissue(s)  # small slide: at most 1024 / 8 = 128 thumbnail pixels
    assert coarse_mask.shape == (128, 128)
    assert abs(coarse_mask.mean() - mask.mean()) < 0.05
    plan = plan_patches(s, mask, target_mpp=0.5, patch_size=256)
    coords = plan.coords
    assert coords.ndim == 2 and coords.shape[1] == 2 and len(coords) > 0
    assert (coords % 256 == 0).all() and (coords >= 0).all() and (coords <= 1024 - 256).all()
    assert plan.level == 0 and plan.read_size == 256
    patch = read_patch(s, plan, coords[0])
    assert patch.shape == (256, 256, 3) and patch.dtype == np.uint8
    assert patch.mean() < 235  # tissue, not background
    # coarser target resolution: read from level 1, each patch covers 512 level-0 pixels
    coarse = plan_patches(s, mask, target_mpp=1.0, patch_size=256)
    assert (coarse.level, coarse.read_size, coarse.size0) == (1, 256, 512)
    assert read_patch(s, coarse, coarse.coords[0]).shape == (256, 256, 3)
    # thumbnails read in bounded chunks (slides without a pyramid) match a one-piece read
    whole = np.asarray(slide_thumbnail(s, 512), float)
    chunked = np.asarray(slide_thumbnail(s, 512, chunk=100), float)
    assert whole.shape == chunked.shape == (512, 512, 3)
    assert np.abs(whole - chunked).mean() < 2
    # blank slide: no tissue, empty grid
    blank = open_slide(slides["TCGA-AA-0003-01Z-00-DX1.D"])
    assert not detect_tissue(blank).any()
    assert patch_grid(blank).shape == (0, 2)


def test_pen_ink_is_not_tissue(tmp_path):
    img = Image.new("RGB", (1024, 1024), (243, 242, 244))
    ImageDraw.Draw(img).line([(50, 50), (900, 800)], fill=(30, 120, 60), width=30)
    path = tmp_path / "pen.tif"
    write_pyramid_tiff(path, np.asarray(img))
    assert detect_tissue(open_slide(path)).sum() == 0


def test_find_slides_groups_by_case(slides):
    root = slides["TCGA-AA-0001-01Z-00-DX1.A"].parent.parent
    found = find_tcga_slides(root)
    assert [p.name for p in found["TCGA-AA-0001"]] == [
        "TCGA-AA-0001-01Z-00-DX1.A.tif",
        "TCGA-AA-0001-01Z-00-DX2.B.tif",
    ]
    assert "nompp" in found  # non-TCGA name: parent folder


def test_extract_resume_determinism_and_table(slides, tmp_path):
    paths = {
        "TCGA-AA-0001": [slides["TCGA-AA-0001-01Z-00-DX1.A"], slides["TCGA-AA-0001-01Z-00-DX2.B"]],
        "TCGA-AA-0002": [slides["TCGA-AA-0002-01Z-00-DX1.C"]],
        "TCGA-AA-0003": [slides["TCGA-AA-0003-01Z-00-DX1.D"]],  # blank: no tissue
    }
    enc = counting_encoder()
    out = tmp_path / "per_slide"
    first = extract_slide_features(
        paths, out, enc, batch_size=4, num_workers=2, show_progress=False
    )
    assert first["computed"] == 4 and first["no_tissue"] == 1 and first["skipped"] == 0
    calls = enc.module.calls
    assert calls == -(-first["patches"] // 4) > 0
    # second run: everything is done, the encoder is never called
    again = extract_slide_features(
        paths, out, enc, batch_size=4, num_workers=2, show_progress=False
    )
    assert again["skipped"] == 4 and again["computed"] == 0 and enc.module.calls == calls
    # an interrupted run: one slide missing -> only that slide is recomputed, same result
    before = h5(out / "TCGA-AA-0002-01Z-00-DX1.C.h5")["features"]
    (out / "TCGA-AA-0002-01Z-00-DX1.C.h5").unlink()
    resumed = extract_slide_features(
        paths, out, enc, batch_size=4, num_workers=0, show_progress=False
    )
    assert resumed["computed"] == 1 and resumed["skipped"] == 3
    np.testing.assert_allclose(
        h5(out / "TCGA-AA-0002-01Z-00-DX1.C.h5")["features"], before, rtol=1e-5, atol=1e-6
    )

    table = tmp_path / "wsi.parquet"
    result = assemble_wsi_table(out, table, slides=first["outputs"])
    assert result["no_tissue_patients"] == ["TCGA-AA-0003"]
    ids, feats, meta = read_features(table)
    assert ids.tolist() == ["TCGA-AA-0001", "TCGA-AA-0002"]  # blank-slide patient absent
    assert feats.shape == (2, 8) and meta["encoder"]["name"] == "counting-cnn"
    a = h5(out / "TCGA-AA-0001-01Z-00-DX1.A.h5")
    b = h5(out / "TCGA-AA-0001-01Z-00-DX2.B.h5")
    expected = (a["features"].mean(0) + b["features"].mean(0)) / 2
    np.testing.assert_allclose(feats[0], expected, rtol=1e-5)
    t = pq.read_table(table)
    for col, size, dtype in (("patches", 8, pa.float32()), ("coords", 2, pa.int32())):
        typ = t.schema.field(col).type
        assert pa.types.is_list(typ) and pa.types.is_fixed_size_list(typ.value_type)
        assert typ.value_type.list_size == size and typ.value_type.value_type == dtype
    bag = t.column("patches")[0].as_py()
    assert len(bag) == len(a["features"]) + len(b["features"])
    np.testing.assert_allclose(np.asarray(bag[: len(a["features"])]), a["features"])
    np.testing.assert_array_equal(
        np.asarray(t.column("coords")[0].as_py())[: len(a["coords"])], a["coords"]
    )

    slim = tmp_path / "wsi_slim.parquet"
    assemble_wsi_table(out, slim, slides=first["outputs"], include_bags=False)
    assert "patches" not in pq.read_schema(slim).names
    np.testing.assert_allclose(read_features(slim)[1], feats)

    # the caller may ask for an error instead of a missing modality
    with pytest.raises(InputError, match="DX1.D.tif: no tissue found"):
        extract_slide_features(
            {"TCGA-AA-0003": paths["TCGA-AA-0003"]},
            tmp_path / "err",
            enc,
            num_workers=0,
            on_no_tissue="error",
            show_progress=False,
        )


def test_max_patches_subsample_is_deterministic(slides, tmp_path):
    paths = {"TCGA-AA-0002": [slides["TCGA-AA-0002-01Z-00-DX1.C"]]}
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        extract_slide_features(
            paths,
            out,
            counting_encoder(),
            max_patches=3,
            seed=5,
            num_workers=0,
            show_progress=False,
        )
        runs.append(h5(out / "TCGA-AA-0002-01Z-00-DX1.C.h5"))
    assert len(runs[0]["coords"]) == 3
    np.testing.assert_array_equal(runs[0]["coords"], runs[1]["coords"])
    np.testing.assert_array_equal(runs[0]["features"], runs[1]["features"])
    # other parameters -> the finished slide is recomputed, not reused
    enc = counting_encoder()
    summary = extract_slide_features(
        paths, tmp_path / "run0", enc, max_patches=2, seed=5, num_workers=0, show_progress=False
    )
    assert summary["computed"] == 1 and enc.module.calls == 1
    assert len(h5(tmp_path / "run0" / "TCGA-AA-0002-01Z-00-DX1.C.h5")["coords"]) == 2


class TinyCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (B, 6, h, w): the loader average-pools it


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_and_state_dict_encoders(tmp_path):
    torch.manual_seed(0)
    scripted = torch.jit.script(TinyCNN())
    path = tmp_path / "tiny.pt"
    torch.jit.save(scripted, str(path))
    enc = load_patch_encoder(str(path), device="cpu", input_size=32)
    assert enc.dim == 6 and enc.info["source"] == "torchscript" and enc.info["weights_sha256"]
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, 48, 48, 3), np.uint8))
    f1 = enc.encode(x)
    f2 = load_patch_encoder(str(path), device="cpu", input_size=32).encode(x)
    assert f1.shape == (3, 6)
    np.testing.assert_allclose(f1, f2, rtol=1e-6)

    state = tmp_path / "weights.pth"
    net = ResNet50Features(truncated=True).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics to fold
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    torch.save(net.state_dict(), state)
    with pytest.raises(InputError, match="weights.pth: not a TorchScript module") as err:
        load_patch_encoder(str(state), device="cpu")
    assert "architecture" in str(err.value)
    res = load_patch_encoder(str(state), device="cpu", architecture="resnet50-trunc", input_size=32)
    assert res.dim == 1024
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in res.module.modules())
    eager = load_patch_encoder(
        str(state), device="cpu", architecture="resnet50-trunc", input_size=32, optimize=False
    )
    np.testing.assert_allclose(res.encode(x[:1]), eager.encode(x[:1]), rtol=1e-3, atol=1e-3)
    copy = ResNet50Features(truncated=True).eval()
    copy.load_state_dict(torch.load(state))
    # stem + 3 per bottleneck (3 + 4 + 6 blocks) + 3 downsample branches
    assert fold_batchnorm(copy, RESNET_BN_PAIRS) == 1 + 3 * 13 + 3
    with pytest.raises(InputError, match="not a resnet50 state dict"):
        load_patch_encoder(str(state), device="cpu", architecture="resnet50")
    with pytest.raises(InputError, match="neither a known name nor an existing file"):
        load_patch_encoder("uni-vit-large", device="cpu")


def test_default_efficientnet_lite0_encoder():
    enc = load_patch_encoder(device="cpu")
    assert enc.dim == 1280 and enc.info["name"] == "efficientnet-lite0"
    assert enc.preprocess["input_size"] == 224
    x = torch.from_numpy(tissue_image(9, 512)[None, :256, :256].copy()).repeat(2, 1, 1, 1)
    f = enc.encode(x)
    assert f.shape == (2, 1280) and np.isfinite(f).all() and f.std() > 0
    np.testing.assert_allclose(f[0], f[1], rtol=1e-5, atol=1e-6)
