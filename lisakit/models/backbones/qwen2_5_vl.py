"""Qwen2.5-VL backbone: a Hugging Face ``Qwen2_5_VLForConditionalGeneration`` with ``<SEG>``.

The wrapper owns the tokenizer additions (``<SEG>``, and Qwen's vision tokens when a
tokenizer lacks them), the trainable parts (:mod:`.trainable`), optional 4/8-bit
quantization of the LLM only (bitsandbytes), LoRA on the LLM only and trainable
``<SEG>`` rows (peft), and the selection of the hidden states that *predict* each
``<SEG>`` (the state just before it, as :class:`LlavaBackbone`).

Input contract (what :class:`~lisakit.models.processors.Qwen2_5_VLProcessor` produces,
through the data preprocessor; the chat template and dynamic-resolution image preprocessing
live in that processor, which the backbone builds from its ``processor`` config):

- ``input_ids`` (N, L): the rendered chats, each image already expanded to
  ``<|vision_start|>`` + ``<|image_pad|>`` x n + ``<|vision_end|>`` with
  n = t * h * w / spatial_merge_size ** 2 for its ``image_grid_thw`` row; padding on the
  right for training, on the left for batched ``generate``.
- ``attention_mask`` (N, L), 1 for real tokens.
- ``vision``: ``pixel_values`` (sum over the N sequences of t * h * w,
  C * temporal_patch_size * patch_size ** 2), the flattened patches of
  ``Qwen2VLImageProcessor``, one image per sequence in sequence order, and
  ``image_grid_thw`` (N, 3) long, the (t, h, w) patch grid of each sequence's image.
- ``labels`` (N, L) or None, ``-100`` where ignored.

The 3D (M-RoPE) positions need ``mm_token_type_ids``; the backbone derives them from the
``<|image_pad|>`` positions (left padding is handled by the attention mask).
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from lisakit.registry import MODELS
from lisakit.utils.dtypes import resolve_dtype

from ..processors import build_processor, fill_facts, processor_config
from ..processors.qwen2_5_vl_processor import (
    QWEN_IMAGE_TOKEN,
    QWEN_VISION_END,
    QWEN_VISION_START,
    VISION_KEYS,
    Qwen2_5_VLProcessor,
)
from .llm_adapters import (
    build_bnb_config,
    prepare_for_training,
    quantize_random_model,
)
from .seg_states import generate_with_seg_states, lm_outputs
from .trainable import apply_trainable, build_trainable

__all__ = ['QWEN_IMAGE_TOKEN', 'QWEN_VISION_END', 'QWEN_VISION_START', 'Qwen2_5_VLBackbone']

#: Module-name prefixes kept unquantized: the vision encoder (with its merger) and LM head.
QWEN_SKIP_MODULES = ('model.visual', 'lm_head')
#: ``mm_token_type_ids`` value of image tokens (text 0, image 1, video 2).
IMAGE_TYPE_ID = 1


@MODELS.register_module()
class Qwen2_5_VLBackbone(BaseModule):  # noqa: N801 (the model family's name)
    """A Qwen2.5-VL vision-language model that emits ``<SEG>`` hidden states.

    Args:
        processor: Config of the processor (type ``'Qwen2_5_VLProcessor'`` by default, see
            :class:`~lisakit.models.processors.Qwen2_5_VLProcessor`): ``tokenizer``
            (default: ``pretrained``), ``max_length``, ``layout``, ``min_pixels`` /
            ``max_pixels``, ``system``, ``seg_token``, ``rej_token``. The backbone fills in
            ``pretrained`` (the folder's ``preprocessor_config.json``) or, for a random
            model, its vision config; it is exposed as :attr:`processor`.
        pretrained: Local folder of a Hugging Face Qwen2.5-VL checkpoint (e.g.
            Qwen2.5-VL-7B-Instruct): weights, tokenizer and image processor. Mutually
            exclusive with ``qwen_config``.
        qwen_config: Keyword arguments of ``transformers.Qwen2_5_VLConfig`` for a randomly
            initialised model (``vision_config`` / ``text_config`` dicts). The token ids
            (vocabulary, image, vision start / end, pad) come from the tokenizer.
        trainable: Which parts train (:mod:`.trainable`): ``vision_tower`` (the ViT),
            ``projector`` (its patch merger), ``language_model`` and ``embeddings``
            (``'seg_rows'``: the ``<SEG>`` rows, and ``[REJ]``'s when the processor has one).
        lora: LoRA settings for ``trainable.language_model='lora'`` (LLM only).
        quantization: ``None`` or a bitsandbytes dict (see
            :func:`.llm_adapters.build_bnb_config`); ``skip_modules`` defaults to
            :data:`QWEN_SKIP_MODULES` (only the LLM decoder is quantized).
        prepare_kbit: Run ``peft.prepare_model_for_kbit_training`` on a quantized model.
        gradient_checkpointing: Recompute activations in the backward pass.
        supervised_logits_only: With labels, compute the LM-head logits only where the
            next token is supervised, as (N, V) with ``logits_batch_index`` /
            ``logits_labels`` (N,) (as :class:`LlavaBackbone`).
        torch_dtype: Parameter dtype name.
        tokenizer: Deprecated: use ``processor.tokenizer`` (mapped there with a
            ``FutureWarning``).
        init_cfg: mmengine init config.
    """

    #: The Hugging Face config and model classes, the processor class (its name is the
    #: default ``processor.type``), the module-name prefixes kept unquantized and the
    #: paths of the vision tower and of the projector modules: what a Qwen-family
    #: subclass (e.g. :class:`~.qwen3_vl.Qwen3VLBackbone`) changes.
    hf_config_cls = Qwen2_5_VLConfig
    hf_model_cls = Qwen2_5_VLForConditionalGeneration
    processor_cls = Qwen2_5_VLProcessor
    skip_modules = QWEN_SKIP_MODULES
    vision_tower_path = 'model.visual'
    projector_paths = ('model.visual.merger',)

    def __init__(
        self,
        processor: Optional[dict] = None,
        pretrained: Optional[str] = None,
        qwen_config: Optional[dict] = None,
        trainable: Optional[dict] = None,
        lora: Optional[dict] = None,
        quantization: Optional[dict] = None,
        prepare_kbit: bool = True,
        gradient_checkpointing: bool = False,
        supervised_logits_only: bool = False,
        torch_dtype: str = 'float32',
        tokenizer: Union[str, dict, None] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if (pretrained is None) == (qwen_config is None):
            raise ValueError(
                f'{type(self).__name__} needs exactly one of `pretrained` (a local HF folder) '
                f'or `qwen_config` (a dict for transformers.{self.hf_config_cls.__name__}); got '
                f'pretrained={pretrained!r}, qwen_config={"set" if qwen_config else None}.'
            )
        self.trainable = build_trainable(trainable, lora, quantization)
        self.supervised_logits_only = supervised_logits_only
        self.processor = self._build_processor(processor, tokenizer, pretrained, qwen_config)
        self.seg_token_id = self.processor.seg_token_id
        self.image_token_id = self.processor.image_token_id
        bnb = None
        if quantization is not None:
            bnb = build_bnb_config({'skip_modules': self.skip_modules, **quantization})
        model = self._build_hf_model(
            pretrained, qwen_config, resolve_dtype(torch_dtype, 'model.backbone.torch_dtype'), bnb
        )
        rows = [self.seg_token_id] if self.trainable.seg_rows else []
        if rows and self.processor.rej_token_id is not None:
            rows.append(self.processor.rej_token_id)
        self.qwen, self.num_quantized_layers = prepare_for_training(
            model,
            quantized=bnb is not None,
            prepare_kbit=prepare_kbit,
            gradient_checkpointing=gradient_checkpointing,
            lora=(lora or {}) if self.trainable.lora else None,
            seg_token_rows=rows,
        )
        hf = self.hf_model
        apply_trainable(
            self.trainable,
            vision_tower=hf.get_submodule(self.vision_tower_path),
            projector=nn.ModuleList([hf.get_submodule(p) for p in self.projector_paths]),
            language_model=[hf.model.language_model, hf.lm_head],
            embeddings=[hf.get_input_embeddings(), hf.get_output_embeddings()],
        )

    # ------------------------------------------------------------------ build
    @classmethod
    def _build_processor(
        cls,
        processor: Optional[dict],
        tokenizer: Union[str, dict, None],
        pretrained: Optional[str],
        qwen_config: Optional[dict],
    ) -> Qwen2_5_VLProcessor:
        """The processor from its config, with the backbone's facts filled in: the
        ``pretrained`` folder (its ``preprocessor_config.json``) or the random model's
        vision config (patch, temporal patch and merge sizes)."""
        cfg = processor_config(processor, cls.processor_cls.__name__, tokenizer, pretrained)
        if pretrained is not None:
            return build_processor(fill_facts(cfg, pretrained=pretrained))
        vision = cls.hf_config_cls(vision_config=qwen_config.get('vision_config')).vision_config
        facts = {k: getattr(vision, k) for k in VISION_KEYS}
        return build_processor(fill_facts(cfg, vision_config=facts))

    @property
    def tokenizer(self):
        """The processor's tokenizer (with ``<SEG>`` and Qwen's tokens)."""
        return self.processor.tokenizer

    def _token_ids(self) -> dict:
        ids = self.tokenizer.convert_tokens_to_ids
        return dict(
            image_token_id=ids(QWEN_IMAGE_TOKEN),
            vision_start_token_id=ids(QWEN_VISION_START),
            vision_end_token_id=ids(QWEN_VISION_END),
        )

    def _build_hf_model(
        self,
        pretrained: Optional[str],
        qwen_config: Optional[dict],
        dtype: torch.dtype,
        bnb=None,
    ) -> Qwen2_5_VLForConditionalGeneration:
        """Load (or randomly build) the model, resized to the tokenizer, quantized if asked."""
        if pretrained is not None:
            model = self.hf_model_cls.from_pretrained(
                pretrained, dtype=dtype, quantization_config=bnb, local_files_only=True
            )
            # Qwen pads its vocabulary (152,064 rows for 151,665 tokens): <SEG> takes a
            # spare row; resize only when the tokenizer outgrows the matrix
            if len(self.tokenizer) > model.get_input_embeddings().num_embeddings:
                model.resize_token_embeddings(len(self.tokenizer))
            model.config.update(self._token_ids())
            return model
        cfg = dict(qwen_config)
        text_cfg = dict(cfg.pop('text_config'))
        text_cfg.setdefault('vocab_size', len(self.tokenizer))
        for key in ('pad_token_id', 'bos_token_id'):
            text_cfg.setdefault(key, getattr(self.tokenizer, key))
        text_cfg.setdefault('eos_token_id', self.processor.eos_token_id)
        config = self.hf_config_cls(text_config=text_cfg, **self._token_ids(), **cfg)
        model = self.hf_model_cls(config).to(dtype)
        return model if bnb is None else quantize_random_model(model, bnb, dtype)

    # ---------------------------------------------------------------- export
    #: Attribute holding the (peft-wrapped) Hugging Face model, and the config key of the
    #: random-weights alternative to ``pretrained`` (what exports name and clear).
    hf_attr = 'qwen'
    random_config_key = 'qwen_config'

    def save_pretrained_extras(self, folder: str) -> None:
        """Write what a merged Hugging Face folder needs beyond the model's own files: the
        image processor settings (``preprocessor_config.json``) the processor reads."""
        self.processor.image_processor.save_pretrained(folder)

    # --------------------------------------------------------------- helpers
    @property
    def hf_model(self) -> Qwen2_5_VLForConditionalGeneration:
        """The underlying ``Qwen2_5_VLForConditionalGeneration`` (inside peft if any)."""
        get_base = getattr(self.qwen, 'get_base_model', None)
        return get_base() if get_base is not None else self.qwen

    @property
    def hidden_size(self) -> int:
        """Hidden size D of the language model."""
        return self.hf_model.config.text_config.hidden_size

    def _mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(N, L) int: 1 at ``<|image_pad|>``, 0 elsewhere (drives the 3D positions)."""
        return (input_ids == self.image_token_id).int() * IMAGE_TYPE_ID

    def _vision_inputs(self, input_ids: torch.Tensor, vision: dict) -> dict:
        """The model's image keyword arguments from the processor's ``vision`` dict."""
        missing = {'pixel_values', 'image_grid_thw'} - set(vision)
        if missing:
            raise KeyError(
                f'{type(self).__name__}: vision inputs lack {sorted(missing)}; they come from '
                f'{self.processor_cls.__name__}.collate_vision (set model.backbone.processor).'
            )
        return dict(
            pixel_values=vision['pixel_values'].to(self.hf_model.dtype),
            image_grid_thw=vision['image_grid_thw'],
            mm_token_type_ids=self._mm_token_type_ids(input_ids),
        )

    # --------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        vision: dict,
        labels: Optional[torch.Tensor] = None,
    ) -> dict:
        """Run Qwen2.5-VL on a batch (inputs as in the module docstring).

        Returns:
            A dict with ``logits`` (N, L, V), ``hidden_states`` (N, L, D), ``input_ids``,
            ``labels`` (N, L) and ``seg_embeds`` (list of N tensors (n_i, D)); with
            ``supervised_logits_only`` and labels, ``logits`` (M, V) and
            ``logits_batch_index`` / ``logits_labels`` (M,).
        """
        hf = self.hf_model
        out = hf.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **self._vision_inputs(input_ids, vision),
        )
        hidden = out.last_hidden_state  # (N, L, D), after the final norm
        return lm_outputs(
            hf.lm_head, hidden, input_ids, labels, self.seg_token_id, self.supervised_logits_only
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        vision: dict,
        **generation_kwargs,
    ) -> dict:
        """Greedy-decode a batch of answers with Hugging Face ``generate`` (KV cache on),
        keeping the hidden states that predict each generated ``<SEG>`` (see
        :func:`.seg_states.generate_with_seg_states`: no second forward pass). Decoding
        stops at ``<|im_end|>`` unless ``eos_token_id`` is given.

        Args:
            input_ids: (N, L) prompt ids (images already expanded, see the module
                docstring), left-padded (padding first, ``attention_mask`` 0 there).
            attention_mask: (N, L).
            vision: ``pixel_values`` and ``image_grid_thw`` (N, 3) of the N prompts' images.
            **generation_kwargs: Passed to ``generate`` (``max_new_tokens``, ...).

        Returns:
            A dict with ``sequences`` (N, L + T) the prompts followed by the generated
            ids, ``new_tokens`` (N, T) the generated ids (padding after a row's EOS) and
            ``seg_embeds``, N tensors (k_n, D) of the states that predicted the row's
            generated ``<SEG>`` tokens, in order.
        """
        generation_kwargs = dict(
            dict(eos_token_id=self.processor.eos_token_id), **generation_kwargs
        )
        return generate_with_seg_states(
            self.hf_model,
            self.tokenizer,
            self.seg_token_id,
            self.image_token_id,  # a generated image token has no pixels
            generation_kwargs,
            input_ids=input_ids,
            attention_mask=attention_mask,
            **self._vision_inputs(input_ids, vision),
        )
