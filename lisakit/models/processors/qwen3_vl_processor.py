"""Qwen3-VL's processor: Qwen2.5-VL's, with Qwen3-VL's chat template and image settings.

What differs from :class:`~.qwen2_5_vl_processor.Qwen2_5_VLProcessor` for images:

- Chat template: Qwen3-VL-Instruct's ``chat_template.json`` writes no system block when a
  chat has none (Qwen2.5-VL's inserts "You are a helpful assistant."), so ``system``
  defaults to ``None``; the turns, ``<|im_start|>`` / ``<|im_end|>``, the image
  placeholder ``<|vision_start|>`` + ``<|image_pad|>`` x n + ``<|vision_end|>`` and the
  labels are Qwen2.5-VL's.
- Images: the same ``Qwen2VLImageProcessor`` (transformers maps ``qwen3_vl`` to it), with
  Qwen3-VL's patch 16 (read from the vision config or the folder's
  ``preprocessor_config.json``, as for Qwen2.5-VL) and mean = std = 0.5 instead of CLIP's
  statistics; a random model's processor (built from its vision config) gets those.
- Video: Qwen3-VL writes a ``<t seconds>`` timestamp before each frame's vision block;
  lisakit feeds single images (t = 1, no timestamps), so nothing changes.
- DeepStack (ViT features of intermediate layers added to the first LLM layers at the
  image tokens) happens inside the model: the processor's outputs are Qwen2.5-VL's.
"""

from __future__ import annotations

from typing import Optional, Union

from transformers import PreTrainedTokenizerBase

from lisakit.registry import PROCESSORS

from .qwen2_5_vl_processor import Qwen2_5_VLProcessor

#: Qwen3-VL's image normalisation (its ``preprocessor_config.json``), per RGB channel.
QWEN3_IMAGE_MEAN = (0.5, 0.5, 0.5)
QWEN3_IMAGE_STD = (0.5, 0.5, 0.5)


@PROCESSORS.register_module()
class Qwen3VLProcessor(Qwen2_5_VLProcessor):
    """Tokenizer, chat template and image preprocessing of a Qwen3-VL backbone.

    Args:
        tokenizer: As :class:`~.qwen2_5_vl_processor.Qwen2_5_VLProcessor`.
        pretrained: Local Qwen3-VL folder whose ``preprocessor_config.json`` sets the image
            processor (patch 16, mean / std 0.5), used when ``vision_config`` is None.
        vision_config: The model's vision config (random models: the backbone fills it);
            the image processor then normalises with :data:`QWEN3_IMAGE_MEAN` / ``_STD``.
        system: System prompt; ``None`` (default, as Qwen3-VL's template): no system block.
        **kwargs: The other arguments of ``Qwen2_5_VLProcessor`` (``min_pixels``,
            ``max_pixels``, ``max_length``, ``layout``, ``seg_token``, ...).
    """

    def __init__(
        self,
        tokenizer: Union[str, dict, PreTrainedTokenizerBase],
        pretrained: Optional[str] = None,
        vision_config: Optional[dict] = None,
        system: Optional[str] = None,
        **kwargs,
    ) -> None:
        super().__init__(tokenizer, pretrained, vision_config, system=system, **kwargs)
        if vision_config is not None:
            self.image_processor.image_mean = list(QWEN3_IMAGE_MEAN)
            self.image_processor.image_std = list(QWEN3_IMAGE_STD)
