"""SAM image encoder (frozen by default) from ``segment_anything.modeling``."""

from __future__ import annotations

from functools import partial
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from segment_anything.modeling import ImageEncoderViT
from torch import nn

from lisakit.registry import MODELS
from lisakit.utils.checkpoint import load_sam_weights
from lisakit.utils.dtypes import resolve_dtype

from .sam_attention import chunk_global_attention
from .sam_cache import CachedEncoderMixin, build_embedding_cache

#: SAM encoder sizes of the official checkpoints (``segment_anything/build_sam.py``).
SAM_ENCODER_ARCHS = {
    'vit_h': dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    'vit_l': dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    'vit_b': dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
}
#: Settings shared by every official SAM encoder; a custom arch dict may override them.
SAM_ENCODER_DEFAULTS = dict(patch_size=16, window_size=14, out_chans=256, mlp_ratio=4.0)
LAYER_NORM_EPS = 1e-6


@MODELS.register_module()
class SAMImageEncoder(CachedEncoderMixin, BaseModule):
    """SAM's ViT image encoder: (B, 3, S, S) -> (B, C, S/p, S/p).

    Args:
        arch: ``'vit_h'``, ``'vit_l'``, ``'vit_b'`` or a dict with ``embed_dim``,
            ``depth``, ``num_heads``, ``global_attn_indexes`` (and optionally
            ``patch_size``, ``window_size``, ``out_chans``, ``mlp_ratio``).
        img_size: Input side S (SAM uses 1024).
        checkpoint: Optional local SAM checkpoint (full SAM or encoder-only keys).
        frozen: Freeze the weights and run without gradients (LISA does).
        torch_dtype: Parameter dtype name (``'bfloat16'`` halves ViT-H's 2.5 GB).
        images_per_forward: Encode at most this many images per forward pass (LISA
            encodes one at a time): bounds the activations of ViT-H's global
            attention (about 1.6 GB per 1024-px image in bf16). ``None``: the whole batch.
        attention_query_rows: Compute the global attention for this many rows of the
            64 x 64 query grid at a time (same result, a fraction of the activation
            memory; see ``sam_attention.py``). ``None``: segment_anything's attention.
        cache: Optional disk cache of the embeddings of a frozen encoder, e.g.
            ``dict(dir='work_dirs/sam_cache')`` (arguments of ``SAMEmbeddingCache``).
            Entries are keyed by the exact input bytes of each image and a fingerprint
            of the encoder weights and config, so a changed image, preprocessing or
            encoder never reads a stale one. Off (``None``) by default: a ViT-H entry
            takes 256x64x64 x 4 bytes = 4 MiB of disk per image (docs/sam_cache.md).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        arch: Union[str, dict] = 'vit_h',
        img_size: int = 1024,
        checkpoint: Optional[str] = None,
        frozen: bool = True,
        torch_dtype: str = 'float32',
        images_per_forward: Optional[int] = None,
        attention_query_rows: Optional[int] = None,
        cache: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.cache = build_embedding_cache(cache, frozen)  # raises before building
        if isinstance(arch, str):
            if arch not in SAM_ENCODER_ARCHS:
                raise ValueError(
                    f'model.sam_encoder.arch={arch!r} is unknown; expected one of '
                    f'{sorted(SAM_ENCODER_ARCHS)} or a dict of sizes.'
                )
            arch = SAM_ENCODER_ARCHS[arch]
        arch = {**SAM_ENCODER_DEFAULTS, **arch}
        self._identity = dict(
            arch=arch,
            img_size=img_size,
            torch_dtype=torch_dtype,
            attention_query_rows=attention_query_rows,
        )
        self.patch_size = arch['patch_size']
        self.out_channels = arch['out_chans']
        self.img_size = img_size
        self.images_per_forward = images_per_forward
        self.encoder = ImageEncoderViT(
            img_size=img_size,
            norm_layer=partial(torch.nn.LayerNorm, eps=LAYER_NORM_EPS),
            qkv_bias=True,
            use_rel_pos=True,
            **arch,
        )
        chunk_global_attention(self.encoder, attention_query_rows)
        if checkpoint is not None:
            load_sam_weights(self.encoder, checkpoint, prefix='image_encoder.')
        self.encoder.to(resolve_dtype(torch_dtype, 'model.sam_encoder.torch_dtype'))
        self.frozen = frozen
        if frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
        self._fingerprint: Optional[str] = None

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (S / patch)."""
        return self.img_size // self.patch_size

    def _fingerprinted_module(self) -> nn.Module:
        return self.encoder

    def train(self, mode: bool = True) -> 'SAMImageEncoder':
        """Keep a frozen encoder in eval mode."""
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed images (read from the cache where one is set and holds them).

        Args:
            images: (B, 3, S, S) SAM-normalized, zero-padded images.

        Returns:
            (B, C, S/p, S/p) image embeddings.
        """
        return self.cached_encode(images, self._encode)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        dtype = next(self.encoder.parameters()).dtype
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            chunks = images.split(self.images_per_forward or len(images))
            return torch.cat([self.encoder(c.to(dtype)) for c in chunks])  # (B, C, S/p, S/p)
