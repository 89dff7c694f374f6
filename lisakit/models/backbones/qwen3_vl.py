"""Qwen3-VL backbone: :class:`~.qwen2_5_vl.Qwen2_5_VLBackbone` on transformers'
``Qwen3VLForConditionalGeneration``.

The input contract, ``<SEG>`` selection, quantization, LoRA, generation and export are
Qwen2.5-VL's (see :mod:`.qwen2_5_vl`); what changes is declared in class attributes:

- the Hugging Face classes (``Qwen3VLConfig`` / ``Qwen3VLForConditionalGeneration``; a
  Qwen3 LLM with q / k norms and interleaved M-RoPE, a ViT with learned, interpolated
  position embeddings, patch 16);
- the processor (:class:`~lisakit.models.processors.Qwen3VLProcessor`: no default system
  prompt, mean / std 0.5);
- the projector: the ViT's final ``merger`` and its DeepStack mergers
  (``deepstack_merger_list``: features of the ViT layers ``deepstack_visual_indexes``,
  added by the model to the first LLM layers' hidden states at the image tokens). Both
  live under ``model.visual``, which stays unquantized.
"""

from __future__ import annotations

from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

from lisakit.registry import MODELS

from ..processors.qwen3_vl_processor import Qwen3VLProcessor
from .qwen2_5_vl import Qwen2_5_VLBackbone

__all__ = ['Qwen3VLBackbone']


@MODELS.register_module()
class Qwen3VLBackbone(Qwen2_5_VLBackbone):
    """A Qwen3-VL vision-language model that emits ``<SEG>`` hidden states.

    Arguments as :class:`~.qwen2_5_vl.Qwen2_5_VLBackbone`: ``pretrained`` is a local
    Qwen3-VL folder (e.g. Qwen3-VL-8B-Instruct), ``qwen_config`` keyword arguments of
    ``transformers.Qwen3VLConfig``; ``processor.type`` defaults to ``'Qwen3VLProcessor'``;
    ``trainable.projector`` trains the final merger and the DeepStack mergers.
    """

    hf_config_cls = Qwen3VLConfig
    hf_model_cls = Qwen3VLForConditionalGeneration
    processor_cls = Qwen3VLProcessor
    projector_paths = ('model.visual.merger', 'model.visual.deepstack_merger_list')
