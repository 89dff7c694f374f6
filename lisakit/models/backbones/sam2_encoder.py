"""SAM 2 image encoder (Hugging Face ``Sam2Model``'s Hiera + FPN neck), frozen.

SAM 2's mask decoder reads three feature levels: the stride-16 image embedding and two
high-resolution maps (strides 4 and 8) that it adds while upsampling the mask. The
encoder returns all three, raw from the FPN neck (the decoder's own 1x1 convolutions
``conv_s0`` / ``conv_s1`` run in the head, where they are trained), as a dict that
:class:`~lisakit.models.heads.SAM2Head` understands.
"""

from __future__ import annotations

import os.path as osp
from typing import Optional

import torch
from mmengine.model import BaseModule
from transformers import Sam2Config, Sam2Model

from lisakit.registry import MODELS

from .sam_cache import CachedEncoderMixin, build_embedding_cache

#: Keys of the encoder output, finest level last: (B, C, h, w), (B, C, 4h, 4w), (B, C, 2h, 2w).
SAM2_FEATURE_KEYS = ('image_embeddings', 'feat_s0', 'feat_s1')


def build_sam2_model(pretrained: Optional[str], sam2_config: Optional[dict]) -> Sam2Model:
    """A ``Sam2Model`` from a local Hugging Face folder or a config dict (random weights).

    Args:
        pretrained: Folder in the Hugging Face layout (``config.json`` +
            ``model.safetensors``, e.g. ``facebook/sam2.1-hiera-large`` downloaded).
        sam2_config: Keyword arguments of ``transformers.Sam2Config``.

    Raises:
        ValueError: Both or neither given. FileNotFoundError: no ``config.json`` there.
    """
    if (pretrained is None) == (sam2_config is None):
        raise ValueError(
            'SAM 2 needs exactly one of `pretrained` (a local Hugging Face folder such as '
            'sam2.1-hiera-large) or `sam2_config` (a dict for transformers.Sam2Config); got '
            f'pretrained={pretrained!r}, sam2_config={"set" if sam2_config else None}.'
        )
    if pretrained is None:
        return Sam2Model(Sam2Config(**sam2_config))
    if not osp.isfile(osp.join(pretrained, 'config.json')):
        raise FileNotFoundError(
            f'{pretrained}/config.json not found: `pretrained` must be a local SAM 2 folder '
            'in the Hugging Face layout (config.json + model.safetensors).'
        )
    return Sam2Model.from_pretrained(pretrained)


@MODELS.register_module()
class SAM2ImageEncoder(CachedEncoderMixin, BaseModule):
    """SAM 2's frozen image encoder: (B, 3, S, S) -> a dict of three feature maps.

    Args:
        pretrained: Local Hugging Face SAM 2 folder; exclusive with ``sam2_config``.
        sam2_config: ``transformers.Sam2Config`` arguments for a random model (tests).
        frozen: Keep the encoder frozen (no gradients, eval mode), as LISA keeps SAM's.
        cache: Optional disk cache of the features (``SAMEmbeddingCache`` arguments);
            the three maps of an image are stored as one flat tensor.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        pretrained: Optional[str] = None,
        sam2_config: Optional[dict] = None,
        frozen: bool = True,
        cache: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.cache = build_embedding_cache(cache, frozen)  # raises before building
        sam2 = build_sam2_model(pretrained, sam2_config)
        vision = sam2.config.vision_config
        self.vision_encoder = sam2.vision_encoder
        # SAM 2 adds a learned "no memory" embedding to the coarsest map of a single image
        self.no_memory_embedding = sam2.no_memory_embedding
        self.out_channels = vision.fpn_hidden_size
        self.img_size = int(vision.backbone_config.image_size[0])
        self.feature_sizes = [tuple(s) for s in reversed(vision.backbone_feature_sizes)]
        self.embedding_size = self.feature_sizes[0][0]
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.vision_encoder.eval()
        self._identity = dict(type='SAM2ImageEncoder', config=sam2.config.to_dict())
        self._fingerprint: Optional[str] = None

    CACHE_LABEL = 'SAM 2 feature cache'

    def train(self, mode: bool = True) -> 'SAM2ImageEncoder':
        """Keep a frozen encoder in eval mode."""
        super().train(mode)
        if self.frozen:
            self.vision_encoder.eval()
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of SAM-normalized, padded images (B, 3, S, S).

        Returns:
            ``image_embeddings`` (B, C, h, w), ``feat_s0`` (B, C, 4h, 4w) and
            ``feat_s1`` (B, C, 2h, 2w), h = S / 16.
        """
        return self.unpack(self.cached_encode(images, self._encode))

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> the three maps flattened and concatenated, (B, K)."""
        dtype = self.no_memory_embedding.dtype
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            fpn = self.vision_encoder(images.to(dtype)).fpn_hidden_states  # fine -> coarse
            coarse = fpn[-1] + self.no_memory_embedding.reshape(1, -1, 1, 1)  # (B, C, h, w)
            return torch.cat([coarse.flatten(1), fpn[0].flatten(1), fpn[1].flatten(1)], 1)

    def unpack(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, K) -> the dict of :data:`SAM2_FEATURE_KEYS` maps."""
        sizes = [self.feature_sizes[0], self.feature_sizes[2], self.feature_sizes[1]]
        parts = flat.split([self.out_channels * h * w for h, w in sizes], dim=1)
        return {
            key: part.reshape(len(flat), self.out_channels, *size)
            for key, part, size in zip(SAM2_FEATURE_KEYS, parts, sizes)
        }

    def zeros(self, batch_size: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """All-zero features of ``batch_size`` images (samples without ``<SEG>``)."""
        total = sum(self.out_channels * h * w for h, w in self.feature_sizes)
        return self.unpack(like.new_zeros((batch_size, total)))
