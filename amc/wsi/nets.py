"""Patch-encoder architectures written in plain torch, with the public checkpoints' key names.

Why not timm / torchvision: on the pinned CPU build of torch, torchvision pulls a CUDA build
or fails to import, and timm depends on torchvision. The architectures here are small, keep
the parameter names of the public checkpoints (torchvision / timm ResNet-50, timm
``vit_large_patch16_224`` as UNI ships it, CONCH's open_clip visual tower), so those state
dicts load with ``strict=True`` and no renaming; tests check the key layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _EfficientNetFeatures(torch.nn.Module):
    """EfficientNet trunk + global average pooling (the classifier head is dropped)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


class _Bottleneck(torch.nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: torch.nn.Module | None = None
    ) -> None:
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Features(torch.nn.Module):
    """ResNet-50 trunk with torchvision's parameter names (loads its state dicts), pooled.

    ``truncated=True`` stops after ``layer3`` (1024-d, the usual pathology "ResNet50-trunc");
    otherwise 2048-d after ``layer4``. The ``fc`` weights of a checkpoint are ignored.
    """

    def __init__(self, truncated: bool = False) -> None:
        super().__init__()
        nn = torch.nn
        self.truncated = truncated
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.inplanes = 64
        self.layer1 = self._layer(64, 3)
        self.layer2 = self._layer(128, 4, stride=2)
        self.layer3 = self._layer(256, 6, stride=2)
        self.layer4 = None if truncated else self._layer(512, 3, stride=2)

    def _layer(self, planes: int, blocks: int, stride: int = 1) -> torch.nn.Sequential:
        nn = torch.nn
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        layers = [_Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        layers += [_Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.layer4 is not None:
            x = self.layer4(x)
        return x.mean(dim=(2, 3))


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` convolution: (B, 3, H, W) -> (B, H/p * W/p, dim)."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    """Per-channel residual scale (``gamma``), as timm's ``ls1`` / ``ls2``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection: (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block, timm names (``norm1, attn, ls1, norm2, mlp, ls2``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, layer_scale: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT with a class token, timm's ``VisionTransformer`` parameter names.

    ``forward_features``: (B, 3, S, S) -> (B, 1 + (S/p)^2, dim) after the final norm;
    ``forward``: the class token, (B, dim). Inputs of another size than ``img_size`` get the
    position embedding resampled (bicubic), as timm's ``dynamic_img_size``.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        dim: int = 1024,
        depth: int = 24,
        heads: int = 16,
        mlp_ratio: float = 4.0,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        grid = img_size // patch_size
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, dim) * 0.02)
        self.blocks = nn.ModuleList(
            [Block(dim, heads, mlp_ratio, layer_scale) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def _pos_embed(self, grid_h: int, grid_w: int) -> torch.Tensor:
        pos = self.pos_embed
        n = pos.shape[1] - 1
        side = int(math.isqrt(n))
        if side * side == n and (grid_h, grid_w) == (side, side):
            return pos
        patches = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(
            patches.float(), size=(grid_h, grid_w), mode="bicubic", antialias=True
        ).to(pos.dtype)
        return torch.cat([pos[:, :1], patches.flatten(2).transpose(1, 2)], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        gh, gw = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        x = x + self._pos_embed(gh, gw)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[:, 0]


class AttentionalPooler(nn.Module):
    """open_clip's attentional pooler: learned queries attend over the tokens.

    (B, N, context_dim) -> (B, n_queries, dim).
    """

    def __init__(self, dim: int, context_dim: int, heads: int = 8, n_queries: int = 1) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, dim))
        self.attn = nn.MultiheadAttention(dim, heads, kdim=context_dim, vdim=context_dim)
        self.ln_q = nn.LayerNorm(dim)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_k(x).permute(1, 0, 2)  # (N, B, C): MultiheadAttention is sequence-first
        q = self.ln_q(self.query).unsqueeze(1).expand(-1, x.shape[1], -1)
        return self.attn(q, x, x, need_weights=False)[0].permute(1, 0, 2)


class ConchVisual(nn.Module):
    """CONCH's vision tower (``visual.*`` of its checkpoint, the prefix removed).

    ViT-B/16 trunk at 448 px, then the contrastive attentional pooler and its layer norm:
    (B, 3, S, S) -> (B, dim), the embedding of CONCH's ``encode_image(proj_contrast=False,
    normalize=False)`` that CLAM / TRIDENT use.
    """

    def __init__(
        self,
        img_size: int = 448,
        patch_size: int = 16,
        width: int = 768,
        depth: int = 12,
        heads: int = 12,
        dim: int = 512,
        pool_heads: int = 8,
    ) -> None:
        super().__init__()
        self.trunk = VisionTransformer(img_size, patch_size, width, depth, heads)
        self.attn_pool_contrast = AttentionalPooler(dim, width, pool_heads, 1)
        self.ln_contrast = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_contrast(self.attn_pool_contrast(self.trunk.forward_features(x))[:, 0])


EFFICIENTNET_BN_PAIRS = (
    ("_conv_stem", "_bn0"),
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
    ("_conv_head", "_bn1"),
)
RESNET_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("0", "1"))


@torch.no_grad()
def fold_batchnorm(module: torch.nn.Module, pairs: Sequence[tuple[str, str]]) -> int:
    """Fold eval-mode BatchNorm2d layers into the preceding Conv2d, in place.

    For every submodule holding a ``(conv, bn)`` attribute pair of ``pairs``, the convolution's
    weight and bias absorb the batch-norm's affine transform and running statistics and the
    batch-norm becomes an Identity (same outputs up to float rounding, fewer passes over
    memory). Returns the number of folded pairs.
    """
    folded = 0
    for parent in list(module.modules()):
        for conv_name, bn_name in pairs:
            conv = getattr(parent, conv_name, None)
            bn = getattr(parent, bn_name, None)
            if not (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = torch.nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            setattr(parent, bn_name, torch.nn.Identity())
            folded += 1
    return folded


def inline_symmetric_padding(module: torch.nn.Module) -> int:
    """Move symmetric "same" zero padding (a ``static_padding`` ZeroPad2d in front of a
    convolution, as EfficientNet ports use) into the convolution's own ``padding``.

    Identical outputs without the extra padded copy of every activation. Asymmetric padding
    (stride-2 layers) is left alone. Returns the number of convolutions changed.
    """
    changed = 0
    for m in module.modules():
        pad = getattr(m, "static_padding", None)
        if not (isinstance(m, torch.nn.Conv2d) and isinstance(pad, torch.nn.ZeroPad2d)):
            continue
        left, right, top, bottom = pad.padding
        if left == right and top == bottom and tuple(m.padding) == (0, 0):
            m.padding = (top, left)
            m.static_padding = torch.nn.Identity()
            changed += 1
    return changed


def _efficientnet_class():
    from amc.errors import InputError

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise InputError(
            "efficientnet-lite-pytorch is not installed",
            hint="pip install efficientnet-lite-pytorch",
        ) from err
    return EfficientNet


def efficientnet_features(name: str) -> nn.Module:
    """EfficientNet-Lite ``name`` (random weights) pooled to (B, 1280); keys under ``net.``."""
    return _EfficientNetFeatures(_efficientnet_class().from_name(name))


def efficientnet_input_size(name: str) -> int:
    """The input side the package documents for an EfficientNet-Lite variant."""
    return int(_efficientnet_class().get_image_size(name))
