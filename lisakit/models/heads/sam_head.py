"""SAM prompt encoder + mask decoder head: ``<SEG>`` prompts -> mask logits."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

from lisakit.registry import MODELS
from lisakit.utils.checkpoint import load_sam_weights

from .base_mask_head import DEFAULT_LOSS_DECODE, BaseMaskHead


@MODELS.register_module()
class SAMHead(BaseMaskHead):
    """Decode one mask per ``<SEG>`` prompt over a frozen SAM image embedding.

    Each projected ``<SEG>`` embedding is one sparse prompt token; the dense prompt
    is SAM's ``no_mask_embed``; only mask token 0 is used (``multimask_output=False``),
    as in LISA. Defaults are SAM's sizes (same for vit_b/l/h).

    Args:
        embed_dim: Prompt / transformer dim C (256 in SAM).
        image_embedding_size: Side of the image embedding grid (64 in SAM).
        input_image_size: Side S of the padded SAM input (1024 in SAM).
        mask_in_chans: Hidden channels of the (unused) mask-prompt downscaler.
        decoder_depth: Two-way transformer depth.
        decoder_mlp_dim: Two-way transformer MLP dim.
        decoder_num_heads: Two-way transformer heads.
        num_multimask_outputs: Extra mask tokens (kept for checkpoint compatibility).
        iou_head_depth: IoU head depth.
        iou_head_hidden_dim: IoU head hidden dim.
        checkpoint: Optional local SAM checkpoint.
        freeze_prompt_encoder: Keep the prompt encoder frozen (LISA does).
        freeze_mask_decoder: Keep the mask decoder frozen (LISA trains it).
        loss_decode: The mask losses (see :class:`BaseMaskHead`); LISA's 2.0 BCE +
            0.5 Dice by default.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: int = 64,
        input_image_size: int = 1024,
        mask_in_chans: int = 16,
        decoder_depth: int = 2,
        decoder_mlp_dim: int = 2048,
        decoder_num_heads: int = 8,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        checkpoint: Optional[str] = None,
        freeze_prompt_encoder: bool = True,
        freeze_mask_decoder: bool = False,
        loss_decode: Union[dict, Sequence[dict]] = DEFAULT_LOSS_DECODE,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(loss_decode=loss_decode, init_cfg=init_cfg)
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.prompt_encoder = PromptEncoder(
            embed_dim=embed_dim,
            image_embedding_size=(image_embedding_size,) * 2,
            input_image_size=(input_image_size,) * 2,
            mask_in_chans=mask_in_chans,
        )
        self.mask_decoder = MaskDecoder(
            num_multimask_outputs=num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=decoder_depth,
                embedding_dim=embed_dim,
                mlp_dim=decoder_mlp_dim,
                num_heads=decoder_num_heads,
            ),
            transformer_dim=embed_dim,
            iou_head_depth=iou_head_depth,
            iou_head_hidden_dim=iou_head_hidden_dim,
        )
        if checkpoint is not None:
            load_sam_weights(self.prompt_encoder, checkpoint, prefix='prompt_encoder.')
            load_sam_weights(self.mask_decoder, checkpoint, prefix='mask_decoder.')
        self.prompt_encoder.requires_grad_(not freeze_prompt_encoder)
        self.mask_decoder.requires_grad_(not freeze_mask_decoder)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        prompts: Sequence[torch.Tensor],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Decode low-resolution mask logits.

        Args:
            image_embeddings: (B, C, h, w) SAM image embeddings.
            prompts: B tensors of shape (n_i, C), one row per ``<SEG>``.

        Returns:
            B tensors of shape (n_i, 4h, 4w) low-resolution mask logits, and B tensors
            of shape (n_i,) predicted IoUs (SAM's ``iou_predictions`` of mask token 0;
            LISA ignores them).
        """
        dtype = self.mask_decoder.iou_token.weight.dtype
        image_embeddings = image_embeddings.to(dtype)
        image_pe = self.prompt_encoder.get_dense_pe().to(dtype)  # (1, C, h, w)
        dense = self.prompt_encoder.no_mask_embed.weight.to(dtype).reshape(1, -1, 1, 1)

        def decode(i: int, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            low_res, iou = self.mask_decoder(
                image_embeddings=image_embeddings[i : i + 1],
                image_pe=image_pe,
                sparse_prompt_embeddings=prompt[:, None].to(dtype),  # (n, 1, C)
                dense_prompt_embeddings=dense.expand(len(prompt), -1, *image_embeddings.shape[-2:]),
                multimask_output=False,
            )  # (n, 1, 4h, 4w), (n, 1)
            return low_res[:, 0], iou[:, 0]

        return self.decode_each(image_embeddings, prompts, decode)
