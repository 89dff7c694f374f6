"""SAM 2 prompt encoder + mask decoder head: ``<SEG>`` prompts -> mask logits.

Reads the three feature maps of :class:`~lisakit.models.backbones.SAM2ImageEncoder`:
the stride-16 image embedding goes through the two-way transformer; the stride-4 and
stride-8 maps pass the decoder's ``conv_s0`` / ``conv_s1`` and are added while the mask
is upsampled, as SAM 2 does.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from lisakit.registry import MODELS

from ..backbones.sam2_encoder import build_sam2_model
from .base_mask_head import DEFAULT_LOSS_DECODE, BaseMaskHead


@MODELS.register_module()
class SAM2Head(BaseMaskHead):
    """Decode one mask per ``<SEG>`` prompt with SAM 2's mask decoder.

    Each projected ``<SEG>`` is one sparse prompt token; the dense prompt is the prompt
    encoder's ``no_mask_embed``; only mask token 0 is used (``multimask_output=False``,
    without SAM 2's stability fallback to the multimask tokens), as LISA does with SAM.

    Args:
        pretrained: Local Hugging Face SAM 2 folder (the same as the encoder's);
            exclusive with ``sam2_config``.
        sam2_config: ``transformers.Sam2Config`` arguments for a random model (tests).
        freeze_prompt_encoder: Keep the prompt encoder frozen (LISA does with SAM).
        freeze_mask_decoder: Keep the mask decoder frozen (LISA trains it).
        loss_decode: The mask losses (see :class:`BaseMaskHead`).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        pretrained: Optional[str] = None,
        sam2_config: Optional[dict] = None,
        freeze_prompt_encoder: bool = True,
        freeze_mask_decoder: bool = False,
        loss_decode: Union[dict, Sequence[dict]] = DEFAULT_LOSS_DECODE,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(loss_decode=loss_decode, init_cfg=init_cfg)
        sam2 = build_sam2_model(pretrained, sam2_config)
        self.prompt_encoder = sam2.prompt_encoder
        self.shared_image_embedding = sam2.shared_image_embedding  # positional encoding
        self.mask_decoder = sam2.mask_decoder
        self.mask_decoder.dynamic_multimask_via_stability = False
        self.embed_dim = sam2.config.mask_decoder_config.hidden_size
        self.image_embedding_size = self.prompt_encoder.image_embedding_size[0]
        self.input_image_size = self.prompt_encoder.input_image_size
        self.prompt_encoder.requires_grad_(not freeze_prompt_encoder)
        self.shared_image_embedding.requires_grad_(not freeze_prompt_encoder)
        self.mask_decoder.requires_grad_(not freeze_mask_decoder)

    def image_pe(self) -> torch.Tensor:
        """Dense positional encoding of the embedding grid (1, C, h, w) (SAM 2's
        ``get_image_wide_positional_embeddings``)."""
        side = self.image_embedding_size
        grid = self.shared_image_embedding.positional_embedding.new_ones((side, side))
        y = (grid.cumsum(0) - 0.5) / side
        x = (grid.cumsum(1) - 0.5) / side
        return self.shared_image_embedding(torch.stack([x, y], -1)).permute(2, 0, 1)[None]

    def forward(
        self, image_feats: dict[str, torch.Tensor], prompts: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Decode low-resolution mask logits.

        Args:
            image_feats: ``image_embeddings`` (B, C, h, w), ``feat_s0`` (B, C, 4h, 4w),
                ``feat_s1`` (B, C, 2h, 2w) from ``SAM2ImageEncoder``.
            prompts: B tensors (n_i, C), one row per ``<SEG>``.

        Returns:
            B tensors (n_i, 4h, 4w) of low-res logits and B tensors (n_i,) of IoUs.
        """
        dtype = self.mask_decoder.iou_token.weight.dtype
        embeds = image_feats['image_embeddings'].to(dtype)
        s0 = self.mask_decoder.conv_s0(image_feats['feat_s0'].to(dtype))  # (B, C/8, 4h, 4w)
        s1 = self.mask_decoder.conv_s1(image_feats['feat_s1'].to(dtype))  # (B, C/4, 2h, 2w)
        image_pe = self.image_pe().to(dtype)  # (1, C, h, w)
        dense = self.prompt_encoder.no_mask_embed.weight.to(dtype).reshape(1, -1, 1, 1)

        def decode(i: int, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            low_res, iou, _, _ = self.mask_decoder(
                image_embeddings=embeds[i : i + 1],
                image_positional_embeddings=image_pe,
                sparse_prompt_embeddings=prompt[None, :, None].to(dtype),  # (1, n, 1, C)
                dense_prompt_embeddings=dense.expand(1, -1, *embeds.shape[-2:]),
                multimask_output=False,
                high_resolution_features=[s0[i : i + 1], s1[i : i + 1]],
            )  # (1, n, 1, 4h, 4w), (1, n, 1)
            return low_res[0, :, 0], iou[0, :, 0]

        return self.decode_each(embeds, prompts, decode)
