"""Multimodal projectors of LLaVA variants, swapped into Hugging Face's LLaVA.

LLaVA-1.5 (``llava-hf`` folders) projects CLIP features with a 2-layer MLP
(``mlp2x_gelu``, Hugging Face's own ``LlavaMultiModalProjector``); LLaVA-v1, the base
of the released LISA models, uses one ``Linear(1024, D)`` (``linear``). The projector
type is stored in the Hugging Face config as ``projector_type`` so that a folder
saved with ``save_pretrained`` loads back with the right module.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import LlavaConfig, LlavaForConditionalGeneration

from lisakit.registry import MODELS

#: Hugging Face's 2-layer MLP projector (LLaVA-1.5).
MLP_PROJECTOR = 'mlp2x_gelu'
#: A single linear projector (LLaVA-v1 / LISA).
LINEAR_PROJECTOR = 'linear'
PROJECTOR_TYPES = (MLP_PROJECTOR, LINEAR_PROJECTOR)
#: Name of the attribute that records the projector type in a ``LlavaConfig``.
PROJECTOR_CONFIG_KEY = 'projector_type'


@MODELS.register_module()
class LinearMultiModalProjector(nn.Module):
    """LLaVA-v1's projector: one ``Linear`` from CLIP features to the LLM width.

    Same call signature as Hugging Face's ``LlavaMultiModalProjector``, so
    ``LlavaModel.get_image_features`` runs it unchanged.

    Args:
        config: The ``LlavaConfig``; input width is the vision hidden size times the
            number of selected vision feature layers, output width the text hidden size.
    """

    def __init__(self, config: LlavaConfig) -> None:
        super().__init__()
        layers = config.vision_feature_layer
        num_feature_layers = 1 if isinstance(layers, int) else len(layers)
        self.linear = nn.Linear(
            config.vision_config.hidden_size * num_feature_layers,
            config.text_config.hidden_size,
            bias=config.multimodal_projector_bias,
        )

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        """(B, N, C_vision) -> (B, N, D)."""
        return self.linear(image_features)


def projector_type_of(config: LlavaConfig) -> str:
    """The projector type recorded in ``config`` (``mlp2x_gelu`` when absent)."""
    return getattr(config, PROJECTOR_CONFIG_KEY, None) or MLP_PROJECTOR


def check_projector_type(projector_type: Optional[str]) -> None:
    """Raise a ``ValueError`` for an unknown projector type."""
    if projector_type is not None and projector_type not in PROJECTOR_TYPES:
        raise ValueError(
            f'model.backbone.projector_type={projector_type!r}; expected one of '
            f'{PROJECTOR_TYPES} (LLaVA-1.5: {MLP_PROJECTOR!r}, LLaVA-v1 / LISA: '
            f'{LINEAR_PROJECTOR!r}).'
        )


class LlavaLinearProjectorForConditionalGeneration(LlavaForConditionalGeneration):
    """Hugging Face's LLaVA with :class:`LinearMultiModalProjector` as its projector.

    The swap happens in ``__init__``, before ``from_pretrained`` loads weights, so the
    projector's keys (``model.multi_modal_projector.linear.*``) load, save and
    quantize like every other weight; the forward and ``generate`` paths are
    Hugging Face's.
    """

    def __init__(self, config: LlavaConfig) -> None:
        super().__init__(config)
        self.model.multi_modal_projector = LinearMultiModalProjector(config)


def llava_class(projector_type: str) -> type:
    """The Hugging Face model class that builds ``projector_type``."""
    check_projector_type(projector_type)
    if projector_type == LINEAR_PROJECTOR:
        return LlavaLinearProjectorForConditionalGeneration
    return LlavaForConditionalGeneration
