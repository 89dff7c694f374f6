"""LLaVA backbone: a Hugging Face ``LlavaForConditionalGeneration`` with ``<SEG>``.

The wrapper owns its processor (:class:`lisakit.models.processors.LlavaProcessor`: the
tokenizer with ``<image>`` and ``<SEG>``, the chat template, the CLIP preprocessing), the
freezing of its parts, optional 4/8-bit quantization of the LLM (bitsandbytes), LoRA and
trainable ``<SEG>`` rows (peft), the expansion of the single ``<image>`` placeholder
into one token per visual feature, and the selection of the hidden states that
*predict* each ``<SEG>`` (LISA uses the state at the position just before
``<SEG>``, i.e. the one whose logits emit it).
"""

from __future__ import annotations

import os
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from transformers import LlavaConfig, LlavaForConditionalGeneration, PreTrainedTokenizerBase

from lisakit.registry import MODELS
from lisakit.utils.constants import IMAGE_TOKEN, LM_IGNORE_INDEX
from lisakit.utils.dtypes import resolve_dtype

from ..processors import build_processor, fill_facts, processor_config
from ..processors.base import PREPROCESSOR_CONFIG
from ..processors.llava_processor import LlavaProcessor
from .hf_loading import load_pretrained_llava, read_llava_config, resolve_pretrained
from .llm_adapters import (
    build_bnb_config,
    prepare_for_training,
    quantize_random_model,
)
from .projectors import (
    MLP_PROJECTOR,
    PROJECTOR_CONFIG_KEY,
    check_projector_type,
    llava_class,
)
from .seg_states import generate_with_seg_states, lm_outputs
from .trainable import apply_trainable, build_trainable

#: CLIP feature selection: which hidden layer, and whether to keep the CLS token.
VISION_SELECT_STRATEGIES = ('default', 'full')


@MODELS.register_module()
class LlavaBackbone(BaseModule):
    """A LLaVA vision-language model that emits ``<SEG>`` hidden states.

    Args:
        processor: Config of the processor (``type`` defaults to ``'LlavaProcessor'``):
            ``tokenizer`` (defaults to ``pretrained``), ``template``, ``max_length``,
            ``layout``, ... (see :class:`~lisakit.models.processors.LlavaProcessor`). Its
            ``num_image_features``, ``image_size`` and ``image_processor`` (the
            ``pretrained`` folder when it holds ``preprocessor_config.json``) are filled
            from the model config.
        pretrained: Local folder of a Hugging Face LLaVA checkpoint. Mutually
            exclusive with ``llava_config``.
        llava_config: Keyword arguments of ``transformers.LlavaConfig`` for a randomly
            initialised model (``vision_config`` / ``text_config`` as dicts with
            ``model_type``). ``vocab_size``, ``image_token_id`` and ``pad_token_id``
            are filled in from the tokenizer.
        seg_token: Text of the segmentation token (``None``: the processor's, ``<SEG>``).
        image_token: Text of the image placeholder token (``None``: the processor's).
        trainable: Which parts train (:mod:`.trainable`): ``vision_tower`` /
            ``projector`` (bool, default False), ``language_model`` (``'frozen'``
            (default), ``'lora'``, ``'full'``: LLM layers, embeddings and LM head) and
            ``embeddings`` (``'none'`` (default), ``'seg_rows'``: only the ``<SEG>`` rows
            of the input embeddings and LM head (peft trainable tokens), ``'all'``: the
            whole matrices, LISA's choice). ``None``: everything frozen.
        lora: LoRA settings for ``trainable.language_model='lora'`` (``None``: peft
            defaults of lisakit): ``r``, ``alpha``, ``dropout``, ``target_modules``,
            ``bias``; LoRA goes on the language model only.
        quantization: ``None`` or a dict for bitsandbytes (``bits`` 4 or 8,
            ``quant_type``, ``double_quant``, ``compute_dtype``, ``skip_modules``); only
            the language model is quantized by default.
        prepare_kbit: Run ``peft.prepare_model_for_kbit_training`` on a quantized model.
        gradient_checkpointing: Recompute LLM activations in the backward pass.
        torch_dtype: Parameter dtype name (``'float32'``, ``'bfloat16'``, ...).
        projector_type: ``'mlp2x_gelu'`` (LLaVA-1.5, Hugging Face's projector) or
            ``'linear'`` (LLaVA-v1 / LISA: one ``Linear``). ``None``: the folder's
            ``config.json`` value (``mlp2x_gelu`` when absent), or ``mlp2x_gelu``.
        use_im_start_end: Surround the image features with ``<im_start>`` /
            ``<im_end>`` (LLaVA-v1 / LISA); the tokens are added to the tokenizer
            when missing. ``None``: the processor's (when its tokenizer holds them).
        supervised_logits_only: With labels, compute the LM-head logits only where the
            next token is supervised (what the LM loss reads) and return them as
            (N, V) with ``logits_batch_index`` / ``logits_labels`` (N,), instead of
            (B, L', V). LISA's answers are a few tokens of 1,000+: at 7B with LLaMA's
            vocabulary this saves ~1 GB of logits, their fp32 copy and gradients.
        vision_feature_layer: CLIP hidden layer fed to the projector (-2 in LLaVA and
            LISA); ``None`` keeps the HF config's value.
        vision_feature_select_strategy: ``'default'`` (patch tokens, CLS dropped) or
            ``'full'``; ``None`` keeps the HF config's value.
        init_cfg: mmengine init config.
        tokenizer: Deprecated: ``processor.tokenizer`` (mapped with a ``FutureWarning``).
        **legacy_flags: Deprecated ``freeze_vision_tower``, ``freeze_projector``,
            ``freeze_language_model``, ``train_seg_token_rows``, ``train_embeddings``:
            mapped onto ``trainable`` with a ``FutureWarning``.
    """

    def __init__(
        self,
        processor: Optional[dict] = None,
        pretrained: Optional[str] = None,
        llava_config: Optional[dict] = None,
        seg_token: Optional[str] = None,
        image_token: Optional[str] = None,
        trainable: Optional[dict] = None,
        lora: Optional[dict] = None,
        quantization: Optional[dict] = None,
        prepare_kbit: bool = True,
        gradient_checkpointing: bool = False,
        torch_dtype: str = 'float32',
        projector_type: Optional[str] = None,
        use_im_start_end: Optional[bool] = None,
        vision_feature_layer: Optional[int] = None,
        vision_feature_select_strategy: Optional[str] = None,
        supervised_logits_only: bool = False,
        init_cfg: Optional[dict] = None,
        tokenizer: Optional[Union[str, dict]] = None,
        **legacy_flags,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if (pretrained is None) == (llava_config is None):
            raise ValueError(
                'LlavaBackbone needs exactly one of `pretrained` (a local HF '
                'folder) or `llava_config` (a dict for transformers.LlavaConfig); '
                f'got pretrained={pretrained!r}, llava_config='
                f'{"set" if llava_config else None}.'
            )
        check_projector_type(projector_type)
        if vision_feature_select_strategy not in (None, *VISION_SELECT_STRATEGIES):
            raise ValueError(
                f'model.backbone.vision_feature_select_strategy='
                f'{vision_feature_select_strategy!r}; expected one of {VISION_SELECT_STRATEGIES}.'
            )
        self.supervised_logits_only = supervised_logits_only
        hf_overrides = {
            PROJECTOR_CONFIG_KEY: projector_type,
            'vision_feature_layer': vision_feature_layer,
            'vision_feature_select_strategy': vision_feature_select_strategy,
        }
        self._hf_overrides = {k: v for k, v in hf_overrides.items() if v is not None}
        self.processor = self._build_processor(
            processor, tokenizer, pretrained, llava_config, seg_token, image_token, use_im_start_end
        )
        self.seg_token_id = self.processor.seg_token_id
        self.image_token_id = self.processor.image_token_id
        self.use_im_start_end = self.processor.use_im_start_end
        if self.use_im_start_end:
            self.im_start_id, self.im_end_id = self.processor.im_start_end_ids
        self.trainable = build_trainable(trainable, lora, quantization, **legacy_flags)
        bnb = None if quantization is None else build_bnb_config(quantization)
        model = self._build_hf_model(
            pretrained, llava_config, resolve_dtype(torch_dtype, 'model.backbone.torch_dtype'), bnb
        )
        model.config.image_token_id = self.image_token_id
        self.num_image_tokens = self._count_image_tokens(model.config)
        assert self.num_image_tokens == self.processor.num_image_features, 'model config facts'
        self.llava, self.num_quantized_layers = prepare_for_training(
            model,
            quantized=bnb is not None,
            prepare_kbit=prepare_kbit,
            gradient_checkpointing=gradient_checkpointing,
            lora=(lora or {}) if self.trainable.lora else None,
            seg_token_rows=self._trainable_rows(),
        )
        hf = self.hf_model
        apply_trainable(
            self.trainable,
            vision_tower=hf.model.vision_tower,
            projector=hf.model.multi_modal_projector,
            language_model=[hf.model.language_model, hf.lm_head],
            embeddings=[hf.get_input_embeddings(), hf.get_output_embeddings()],
        )

    # ------------------------------------------------------------------ build
    def _build_processor(
        self,
        processor: Optional[dict],
        tokenizer: Optional[Union[str, dict]],
        pretrained: Optional[str],
        llava_config: Optional[dict],
        seg_token: Optional[str],
        image_token: Optional[str],
        use_im_start_end: Optional[bool],
    ) -> LlavaProcessor:
        """The processor, with the image facts of the model config (CLIP size, features)."""
        folder = None if pretrained is None else resolve_pretrained(pretrained)
        cfg = processor_config(processor, 'LlavaProcessor', tokenizer, folder)
        if folder is not None:
            config = read_llava_config(folder)
            for key, value in self._hf_overrides.items():
                setattr(config, key, value)
            if os.path.isfile(os.path.join(folder, PREPROCESSOR_CONFIG)):
                cfg.setdefault('image_processor', folder)
        else:
            config = LlavaConfig(**{**llava_config, **self._hf_overrides})
        fill_facts(
            cfg,
            seg_token=seg_token,
            image_token=image_token,
            use_im_start_end=use_im_start_end,
            num_image_features=self._count_image_tokens(config),
            image_size=config.vision_config.image_size,
        )
        return build_processor(cfg)

    def _trainable_rows(self) -> list[int]:
        """Embedding rows trained under ``trainable.embeddings='seg_rows'``: ``<SEG>`` and
        the processor's rejection token when it has one."""
        if not self.trainable.seg_rows:
            return []
        rej = self.processor.rej_token_id
        return [self.seg_token_id] + ([] if rej is None else [rej])

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The processor's tokenizer (with ``<image>`` and ``<SEG>``)."""
        return self.processor.tokenizer

    def _build_hf_model(
        self,
        pretrained: Optional[str],
        llava_config: Optional[dict],
        dtype: torch.dtype,
        bnb=None,
    ) -> LlavaForConditionalGeneration:
        """Load (or randomly build) the model, resized to the tokenizer, quantized if asked."""
        if pretrained is not None:
            model = load_pretrained_llava(pretrained, self._hf_overrides, dtype, bnb)
            model.resize_token_embeddings(len(self.tokenizer))
            return model
        cfg = {**llava_config, **self._hf_overrides}
        text_cfg = dict(cfg.pop('text_config'))
        text_cfg.setdefault('vocab_size', len(self.tokenizer))
        text_cfg.setdefault('pad_token_id', self.tokenizer.pad_token_id)
        config = LlavaConfig(text_config=text_cfg, image_token_id=self.image_token_id, **cfg)
        hf_class = llava_class(cfg.get(PROJECTOR_CONFIG_KEY, MLP_PROJECTOR))
        model = hf_class(config).to(dtype)
        model.resize_token_embeddings(len(self.tokenizer))
        return model if bnb is None else quantize_random_model(model, bnb, dtype)

    @property
    def num_expanded_tokens(self) -> int:
        """Tokens that replace the single ``<image>``: the visual features, plus
        ``<im_start>`` / ``<im_end>`` when ``use_im_start_end``."""
        return self.num_image_tokens + 2 * int(self.use_im_start_end)

    @staticmethod
    def _count_image_tokens(config: LlavaConfig) -> int:
        """Visual features per image: patches, plus CLS under the 'full' strategy."""
        vision = config.vision_config
        patches = (vision.image_size // vision.patch_size) ** 2
        return patches + int(config.vision_feature_select_strategy == 'full')

    # --------------------------------------------------------------- helpers
    @property
    def hf_model(self) -> LlavaForConditionalGeneration:
        """The underlying ``LlavaForConditionalGeneration`` (inside peft if LoRA)."""
        get_base = getattr(self.llava, 'get_base_model', None)
        return get_base() if get_base is not None else self.llava

    @property
    def hidden_size(self) -> int:
        """Hidden size D of the language model."""
        return self.hf_model.config.text_config.hidden_size

    def expand_image_tokens(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: Optional[torch.Tensor] = None,
    ) -> tuple:
        """Replace the single ``<image>`` of each row by one token per visual feature.

        Args:
            input_ids: (B, L) ids with exactly one ``<image>`` token per row.
            attention_mask: (B, L).
            labels: (B, L) or None.

        Returns:
            ``(input_ids, attention_mask, labels)`` of length L - 1 +
            :attr:`num_expanded_tokens` (with ``use_im_start_end`` the features sit
            between ``<im_start>`` and ``<im_end>``); the new label positions are ignored.
        """
        counts = (input_ids == self.image_token_id).sum(dim=1)
        if not bool((counts == 1).all()):
            raise ValueError(
                f'Each sample must contain exactly one {IMAGE_TOKEN!r} token '
                f'before expansion; got counts {counts.tolist()}. Put one '
                f'{IMAGE_TOKEN!r} in every question.'
            )
        pos = (input_ids == self.image_token_id).int().argmax(dim=1)  # (B,)
        n_extra = self.num_expanded_tokens - 1
        # index map into the original row: position j of the new row reads old[src[j]]
        new_len = input_ids.shape[1] + n_extra
        j = torch.arange(new_len, device=input_ids.device)[None]  # (1, L')
        src = torch.where(
            j <= pos[:, None], j, torch.clamp(j - n_extra, min=pos[:, None])
        )  # (B, L')
        is_img = (j >= pos[:, None]) & (j <= pos[:, None] + n_extra)
        ids = torch.where(is_img, self.image_token_id, input_ids.gather(1, src))
        if self.use_im_start_end:
            ids = torch.where(j == pos[:, None], self.im_start_id, ids)
            ids = torch.where(j == pos[:, None] + n_extra, self.im_end_id, ids)
        mask = attention_mask.gather(1, src)
        if labels is not None:
            labels = torch.where(is_img, LM_IGNORE_INDEX, labels.gather(1, src))
        return ids, mask, labels

    def _check_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Fail clearly when the CLIP images do not have the vision tower's size."""
        size = self.hf_model.config.vision_config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f'The CLIP images are {tuple(pixel_values.shape[-2:])} but the vision tower '
                f'takes {size}x{size}: model.backbone.processor.image_size (or its '
                f'image_processor folder) must give {size} (LLaVA-1.5: 336, LLaVA-v1 / LISA: '
                '224); leave them unset to read them from the model config.'
            )
        return pixel_values

    # --------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        vision: dict,
        labels: Optional[torch.Tensor] = None,
    ) -> dict:
        """Run LLaVA on a batch.

        Args:
            input_ids: (B, L) ids with one ``<image>`` per row.
            attention_mask: (B, L), 1 for real tokens.
            vision: The processor's ``collate_vision``: ``pixel_values`` (B, 3, S, S)
                CLIP-preprocessed images, one per row.
            labels: (B, L) LM labels (``-100`` = ignored) or None.

        Returns:
            A dict with ``logits`` (B, L', V), ``hidden_states`` (B, L', D),
            ``input_ids`` / ``labels`` (B, L') expanded, and ``seg_embeds``
            (list of (n_i, D)). With ``supervised_logits_only`` and labels: ``logits``
            (N, V) at the N supervised positions, ``logits_batch_index`` and
            ``logits_labels`` (N,) their sample and target token.
        """
        ids, mask, labels = self.expand_image_tokens(input_ids, attention_mask, labels)
        return self.forward_expanded(ids, mask, vision['pixel_values'], labels)

    def forward_expanded(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        pixel_values: torch.Tensor,
        labels: Optional[torch.Tensor] = None,
    ) -> dict:
        """:meth:`forward` on ids whose ``<image>`` is already expanded."""
        hf = self.hf_model
        pixel_values = self._check_pixels(pixel_values).to(hf.dtype)
        out = hf.model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values)
        hidden = out.last_hidden_state  # (B, L', D), after the final norm
        return lm_outputs(
            hf.lm_head, hidden, ids, labels, self.seg_token_id, self.supervised_logits_only
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
        :func:`.seg_states.generate_with_seg_states`: no second forward pass).

        Args:
            input_ids: (N, L) prompt ids ending with the assistant role, one ``<image>``
                each, left-padded (padding first, ``attention_mask`` 0 there).
            attention_mask: (N, L).
            vision: ``pixel_values`` (N, 3, S, S) (the processor's ``collate_vision``).
            **generation_kwargs: Passed to ``generate`` (``max_new_tokens``, ...).

        Returns:
            A dict with ``sequences`` (N, L' + T) the expanded prompts followed by the
            generated ids, ``new_tokens`` (N, T) the generated ids (padding after a
            row's EOS) and ``seg_embeds``, N tensors (k_n, D) of the states that
            predicted the row's generated ``<SEG>`` tokens, in order.
        """
        ids, mask, _ = self.expand_image_tokens(input_ids, attention_mask)
        pixel_values = self._check_pixels(vision['pixel_values'])
        hf = self.hf_model
        return generate_with_seg_states(
            hf,
            self.tokenizer,
            self.seg_token_id,
            self.image_token_id,  # a generated <image> has no features (HF LLaVA fails)
            generation_kwargs,
            input_ids=ids,
            attention_mask=mask,
            pixel_values=pixel_values.to(hf.dtype),
        )
