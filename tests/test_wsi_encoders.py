"""Patch-encoder registry: the public checkpoints' key layouts load as they are, widths.

Full-size architectures are checked on the ``meta`` device (shapes only, no memory); real
loading runs on random state dicts with the public key names, full size for ResNet-50 and a
small-depth / width variant (``config``) for the ViTs, which are heavy on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amc.errors import InputError
from amc.wsi import REGISTRY, encoder_names, load_patch_encoder


def resnet50_public_shapes() -> dict[str, tuple]:
    """torchvision / timm ``resnet50`` state-dict layout (written out here, independently)."""
    shapes: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], 1):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes if b == 0 else planes * 4, 1, 1)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            for k, c in ((1, planes), (2, planes), (3, planes * 4)):
                bn(f"{p}.bn{k}", c)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
        inplanes = planes * 4
    shapes["fc.weight"], shapes["fc.bias"] = (1000, 2048), (1000,)
    return shapes


def timm_vit_shapes(
    prefix: str, dim: int, depth: int, tokens: int, patch: int = 16, layer_scale: bool = False
) -> dict[str, tuple]:
    """timm ``VisionTransformer`` layout (UNI: ViT-L/16 with LayerScale ``ls1/ls2.gamma``)."""
    s = {
        f"{prefix}cls_token": (1, 1, dim),
        f"{prefix}pos_embed": (1, tokens, dim),
        f"{prefix}patch_embed.proj.weight": (dim, 3, patch, patch),
        f"{prefix}patch_embed.proj.bias": (dim,),
        f"{prefix}norm.weight": (dim,),
        f"{prefix}norm.bias": (dim,),
    }
    for i in range(depth):
        b = f"{prefix}blocks.{i}."
        for norm in ("norm1", "norm2"):
            s[b + norm + ".weight"] = s[b + norm + ".bias"] = (dim,)
        s[b + "attn.qkv.weight"], s[b + "attn.qkv.bias"] = (3 * dim, dim), (3 * dim,)
        s[b + "attn.proj.weight"], s[b + "attn.proj.bias"] = (dim, dim), (dim,)
        s[b + "mlp.fc1.weight"], s[b + "mlp.fc1.bias"] = (4 * dim, dim), (4 * dim,)
        s[b + "mlp.fc2.weight"], s[b + "mlp.fc2.bias"] = (dim, 4 * dim), (dim,)
        if layer_scale:
            s[b + "ls1.gamma"] = s[b + "ls2.gamma"] = (dim,)
    return s


def conch_public_shapes(width: int = 768, depth: int = 12, tokens: int = 785, dim: int = 512):
    """CONCH ``pytorch_model.bin`` (open_clip CoCa): the visual tower and some other keys."""
    s = timm_vit_shapes("visual.trunk.", width, depth, tokens)
    pool = "visual.attn_pool_contrast."
    s.update(
        {
            pool + "query": (1, dim),
            pool + "attn.q_proj_weight": (dim, dim),
            pool + "attn.k_proj_weight": (dim, width),
            pool + "attn.v_proj_weight": (dim, width),
            pool + "attn.in_proj_bias": (3 * dim,),
            pool + "attn.out_proj.weight": (dim, dim),
            pool + "attn.out_proj.bias": (dim,),
            pool + "ln_q.weight": (dim,),
            pool + "ln_q.bias": (dim,),
            pool + "ln_k.weight": (width,),
            pool + "ln_k.bias": (width,),
            "visual.ln_contrast.weight": (dim,),
            "visual.ln_contrast.bias": (dim,),
            "visual.proj_contrast": (dim, dim),  # the contrastive projection: not used
            "visual.attn_pool_caption.query": (256, width),  # captioning pooler: not used
            "visual.ln_caption.weight": (width,),
            "text.token_embedding.weight": (32007, width),
            "logit_scale": (),
        }
    )
    return s


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(0)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g) * 0.05
    return out


def meta_module(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return REGISTRY[name].build()


@pytest.mark.parametrize(
    "name, public, size",
    [
        ("resnet50_trunc", resnet50_public_shapes(), 224),
        ("resnet50", resnet50_public_shapes(), 224),
        ("uni_v1", timm_vit_shapes("", 1024, 24, 197, layer_scale=True), 224),
        ("conch_v1", conch_public_shapes(), 448),
    ],
)
def test_full_size_key_layout_and_width(name, public, size):
    spec = REGISTRY[name]
    module = meta_module(name)
    converted = spec.convert(public)  # names only: the shapes dict stands in for tensors
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert converted.keys() == own.keys()
    assert {k: tuple(v) for k, v in converted.items()} == own
    out = module.eval()(torch.empty(2, 3, size, size, device="meta"))
    assert tuple(out.shape) == (2, spec.dim) and spec.input_size == size


def test_resnet50_trunc_loads_public_state_dict(tmp_path):
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(random_state(resnet50_public_shapes()), path)
    enc = load_patch_encoder("resnet50_trunc", device="cpu", weights=path, input_size=64)
    assert enc.dim == 1024 and enc.info["name"] == "resnet50_trunc"
    assert enc.info["weights_sha256"] and enc.preprocess["mean"][0] == pytest.approx(0.485)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), np.uint8))
    f = enc.encode(x)
    assert f.shape == (2, 1024) and np.isfinite(f).all()
    # a DataParallel / Lightning-style wrapper loads too
    wrapped = tmp_path / "wrapped.pth"
    state = {f"module.{k}": v for k, v in random_state(resnet50_public_shapes()).items()}
    torch.save({"state_dict": state}, wrapped)
    assert load_patch_encoder("resnet50-trunc", device="cpu", weights=wrapped).dim == 1024


TINY_VIT = {"img_size": 32, "dim": 32, "depth": 2, "heads": 4}
TINY_CONCH = {"img_size": 32, "width": 32, "depth": 2, "heads": 4, "dim": 16, "pool_heads": 2}


def test_uni_and_conch_load_public_layouts_tiny(tmp_path):
    uni = tmp_path / "uni.bin"
    torch.save(random_state(timm_vit_shapes("", 32, 2, 5, layer_scale=True)), uni)
    enc = load_patch_encoder("uni_v1", device="cpu", weights=uni, config=TINY_VIT)
    assert enc.dim == 32 and enc.preprocess["input_size"] == 224
    conch = tmp_path / "conch.bin"
    torch.save(random_state(conch_public_shapes(32, 2, 5, 16)), conch)
    c = load_patch_encoder("conch_v1", device="cpu", weights=conch, config=TINY_CONCH)
    assert c.dim == 16 and c.preprocess["input_size"] == 448
    assert c.preprocess["mean"][0] == pytest.approx(0.48145466)  # CLIP normalisation
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 255, (3, 40, 40, 3), np.uint8))
    a, b = enc.encode(x), c.encode(x)
    assert a.shape == (3, 32) and b.shape == (3, 16) and np.isfinite(a).all()
    # deterministic, and the position embedding is resampled for other input sizes
    np.testing.assert_array_equal(a, enc.encode(x))
    assert np.isfinite(c.encode(x)).all()


def test_registry_errors_name_the_file_and_layout(tmp_path):
    assert {"efficientnet-lite0", "resnet50_trunc", "uni_v1", "conch_v1"} <= set(encoder_names())
    with pytest.raises(InputError, match="'uni_v1' needs a weights file"):
        load_patch_encoder("uni_v1", device="cpu")
    with pytest.raises(InputError, match="missing.bin: weights file of patch encoder"):
        load_patch_encoder("uni_v1", device="cpu", weights=tmp_path / "missing.bin")
    wrong = tmp_path / "resnet.pth"
    torch.save(random_state(resnet50_public_shapes()), wrong)
    with pytest.raises(InputError, match="resnet.pth: not a uni_v1 state dict") as err:
        load_patch_encoder("uni_v1", device="cpu", weights=wrong, config=TINY_VIT)
    assert "vit_large_patch16_224" in str(err.value)
    with pytest.raises(InputError, match="encoder_config"):
        load_patch_encoder("uni_v1", device="cpu", weights=wrong, config={"bogus": 1})
