"""Bad inputs of extract@tcga-wsi (and TCGA reports): each stops with exit code 2 and a message
naming the file / location / key, leaving no output, or gets its documented handling."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from amc.data.store import read_features, read_metadata
from amc.errors import InputError
from amc.features.tcga import read_reports
from amc.synthetic.tcga import generate_tcga_cohort
from stages import extract
from stages._cli import run

REPO = Path(__file__).resolve().parents[2]
OUT = Path("data/features/tcga/wsi.parquet")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcga_bad")
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


@pytest.fixture()
def project(pristine, tmp_path, monkeypatch):
    """A working folder with its own copy of the cohort and a params.yaml pointing at it."""
    raw = tmp_path / "raw"
    shutil.copytree(pristine, raw)
    monkeypatch.chdir(tmp_path)
    set_wsi(tmp_path)
    return tmp_path


def set_wsi(root: Path, **wsi) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sources"]["tcga"]["raw"] = str(root / "raw")
    params["sources"]["tcga"]["wsi"].update(
        target_mpp=0.5, patch_size=64, max_patches=4, num_workers=0, batch_size=4, device="cpu"
    )
    params["sources"]["tcga"]["wsi"].update(wsi)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def run_stage(monkeypatch, capsys, modality: str = "wsi") -> tuple[int, str]:
    """Run the stage as its CLI does: exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["extract", "tcga", modality])
    code = 0
    try:
        run(extract.main)
    except SystemExit as exc:
        code = int(exc.code)
    return code, capsys.readouterr().err


def slides_of(root: Path) -> list[Path]:
    return sorted((root / "raw/slides").rglob("*.tif"))


def corrupt_level0_tiles(path: Path) -> None:
    """Zero every level-0 tile (an unreadable JPEG tile); coarser levels stay readable."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        spans = list(zip(page.dataoffsets, page.databytecounts))
    with open(path, "r+b") as fh:
        for offset, count in spans:
            fh.seek(offset)
            fh.write(b"\0" * count)


def assert_failed_cleanly(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    for name in names:
        assert name in err
    assert not OUT.exists()


def test_random_bytes_slide_names_the_file(project, monkeypatch, capsys):
    bad = slides_of(project)[0]
    bad.write_bytes(np.random.default_rng(0).bytes(4000))
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, bad.name, "cannot open slide", "on_error")


def test_truncated_slide_names_the_file(project, monkeypatch, capsys):
    bad = slides_of(project)[1]
    bad.write_bytes(bad.read_bytes()[:300])
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, bad.name)


def test_corrupt_tile_in_the_level_read_names_slide_and_location(project, monkeypatch, capsys):
    bad = slides_of(project)[0]
    corrupt_level0_tiles(bad)
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, bad.name, "level-0 (x=", "pyramid level 0", "on_error: skip")


def test_corrupt_tile_with_skip_is_logged_and_counted(project, monkeypatch, capsys, caplog):
    bad = slides_of(project)[0]
    corrupt_level0_tiles(bad)
    set_wsi(project, on_error="skip")
    with caplog.at_level(logging.INFO):
        code, err = run_stage(monkeypatch, capsys)
    assert code == 0, err
    meta = read_metadata(OUT)
    key = bad.name.removesuffix(".tif")
    assert list(meta["failed_slides"]) == [key] and "level-0" in meta["failed_slides"][key]
    assert "1 unreadable slide(s) skipped" in caplog.text and key in caplog.text
    ids, _, _ = read_features(OUT)
    assert bad.parent.name not in set(ids)  # its patient's only slide: modality missing


def test_corrupt_slide_is_retried_once_replaced(project, monkeypatch, capsys):
    bad = slides_of(project)[0]
    good = bad.read_bytes()
    bad.write_bytes(np.random.default_rng(1).bytes(4000))
    set_wsi(project, on_error="skip")
    assert run_stage(monkeypatch, capsys)[0] == 0
    bad.write_bytes(good)  # the user re-downloads it: it is embedded, not left out
    assert run_stage(monkeypatch, capsys)[0] == 0
    assert read_metadata(OUT)["failed_slides"] == {}


def test_slide_without_resolution_names_fallback_mpp(project, monkeypatch, capsys):
    from amc.synthetic.tcga import write_pyramid_tiff

    bad = slides_of(project)[0]
    write_pyramid_tiff(bad, np.full((512, 512, 3), 200, np.uint8), mpp=None, app_mag=None)
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, bad.name, "fallback_mpp")


def test_unknown_encoder_name(project, monkeypatch, capsys):
    set_wsi(project, encoder="uni-v2-huge")
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, "'uni-v2-huge'", "resnet50_trunc", "uni_v1")


def test_registered_encoder_without_weights(project, monkeypatch, capsys):
    set_wsi(project, encoder="conch_v1")
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, "'conch_v1' needs a weights file", "sources.tcga.wsi.weights")


def test_weights_file_missing(project, monkeypatch, capsys):
    set_wsi(project, encoder="uni_v1", weights=str(project / "nowhere/uni.bin"))
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, "nowhere/uni.bin: weights file")


def test_weights_of_another_architecture(project, monkeypatch, capsys):
    weights = project / "not_uni.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, weights)
    set_wsi(project, encoder="uni_v1", weights=str(weights))
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, "not_uni.pth: not a uni_v1 state dict", "vit_large")


def test_weights_file_not_a_checkpoint(project, monkeypatch, capsys):
    weights = project / "garbage.pt"
    weights.write_bytes(b"not a checkpoint at all")
    set_wsi(project, encoder=str(weights))  # a path: read as TorchScript
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, "garbage.pt: not a TorchScript module")


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("on_error", "ignore", ["on_error='ignore'", "fail | skip"]),
        ("engine", "spark", ["engine='spark'", "local | ray"]),
        ("patch_size", -64, ["patch_size=-64"]),
        ("precision", "fp8", ["sources.tcga.wsi.precision='fp8'", "auto | fp32 | bf16"]),
    ],
)
def test_bad_wsi_parameter_values(project, monkeypatch, capsys, key, value, words):
    set_wsi(project, **{key: value})
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, *words)


def test_missing_slide_folder(project, monkeypatch, capsys):
    shutil.rmtree(project / "raw/slides")
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, "slides: slide folder not found")


def test_two_slides_with_one_name(project, monkeypatch, capsys):
    a, b = slides_of(project)[:2]
    twin = b.parent / "sub" / a.name
    twin.parent.mkdir()
    shutil.copyfile(b, twin)
    code, err = run_stage(monkeypatch, capsys)
    assert_failed_cleanly(code, err, a.name.removesuffix(".tif"), "unique")


def test_partial_per_slide_file_is_recomputed(project, monkeypatch, capsys):
    assert run_stage(monkeypatch, capsys)[0] == 0
    before = read_features(OUT)[1]
    h5 = sorted(Path(".cache/wsi").rglob("*.h5"))[0]
    h5.write_bytes(h5.read_bytes()[:100])  # a torn write from another tool
    assert run_stage(monkeypatch, capsys)[0] == 0
    np.testing.assert_array_equal(read_features(OUT)[1], before)


def test_corrupt_report_file_fails_or_is_skipped(project, monkeypatch, capsys):
    reports = sorted((project / "raw/reports").rglob("*.txt"))
    reports[0].write_bytes(b"\x00\x01binary\x00" * 50)
    code, err = run_stage(monkeypatch, capsys, modality="report")
    assert code == 2 and reports[0].name in err and "NUL bytes" in err
    assert "report_on_error: skip" in err
    assert not Path("data/features/tcga/report.parquet").exists()
    texts = read_reports(project / "raw/reports", on_error="skip")
    assert texts.attrs["skipped_reports"] == [str(reports[0])]
    assert len(texts) == len(reports) - 1
    with pytest.raises(InputError, match="report on_error='maybe'"):
        read_reports(project / "raw/reports", on_error="maybe")
